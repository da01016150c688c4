"""Stage 1 — one parent/child sync protocol: fork, do a step, report.

Every "fork, join a namespace, do X" in minidocker (the shim, ``enter``, ``exec``, ``export``,
sharing /dev/shm) talks back the same way, as runc's sync pipe between ``parentProcess`` and
its child: a close-on-exec pipe carries JSON lines from the child to the parent.
``{"step": name}`` says which step of the story runs now, ``{"ok": value}`` ends it well,
``{"error": reason, "step": name, "exit_code": n}`` ends it badly. EOF with no "ok" means the
child exec'd (the pipe closed at execve) or died; the parent tells which. Either way the parent
raises one ``StepFailed`` naming the step that failed.

Man pages: fork(2), pipe(2) (``O_CLOEXEC``), wait(2). Used by: the shim (shim.py), ``enter``
(entering.py), ``exec``, ``commit``/``export``, ``minidocker doctor``.
"""

import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from minidocker.errors import MinidockerError

T = TypeVar("T")


class StepFailed(MinidockerError):
    """A step that a forked child did for us failed; ``step`` names it (e.g. ``"open_tree"``)."""

    def __init__(self, message: str, step: str, exit_code: int | None = None):
        super().__init__(message, exit_code)
        self.step = step


class ExecFailed(StepFailed):
    """The step that failed was execve(2): the command could not be executed (Docker's 126
    when it is not executable, 127 when it is not found)."""


class Report:
    """The child's end of the report pipe."""

    def __init__(self, fd: int):
        self.fd = fd
        self.current = "fork"

    def send(self, **message) -> None:
        os.write(self.fd, (json.dumps(message) + "\n").encode())

    def step(self, name: str) -> None:
        """Name the step that runs now: a failure, or a death, is reported with this name."""
        self.current = name
        self.send(step=name)

    def error(self, reason: str, exit_code: int = 125) -> None:
        self.send(error=reason, step=self.current, exit_code=exit_code)

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Child:
    """A forked child seen from its parent: its pid and the read end of its report pipe."""

    pid: int
    task: str  # what the child does for us: "cannot {task}: {step}: {reason}"
    reports: BinaryIO
    step: str = "fork"

    def read(self) -> dict | None:
        """The next report, or None at EOF: no write end is left (exec'd, exited or died)."""
        line = self.reports.readline()
        if not line:
            return None
        report = json.loads(line)
        self.step = report.get("step", self.step)
        return report

    def gather(self, keys: set[str]) -> dict:
        """Read reports until every key has arrived; an error report (or EOF) raises it."""
        found: dict = {}
        while not keys <= found.keys():
            report = self.read()
            if report is None or "error" in report:
                raise self.failed(report)
            found.update(report)
        return found

    def wait_exec(self) -> None:
        """Read until EOF, which means the command was exec'd (execve closed the close-on-exec
        pipe); an error report raises it."""
        while (report := self.read()) is not None:
            if "error" in report:
                raise self.failed(report)

    def result(self):
        """The value the child's work returned, once the child has exited."""
        value = self.gather({"ok"})["ok"]
        os.waitpid(self.pid, 0)
        return value

    def failed(self, report: dict | None) -> StepFailed:
        """Reap the child; its error report (None: it died without one) as the error to raise."""
        status = os.waitpid(self.pid, 0)[1]
        if report is None:
            report = {"error": f"the child process {_how_it_ended(status)} before it reported",
                      "step": self.step, "exit_code": 125}
        return failure(report, self.task)


def failure(report: dict, task: str = "") -> StepFailed:
    """The one error a failed step becomes: "cannot TASK: STEP: reason". A command that could
    not be exec'd keeps Docker's own words ('exec: "x": executable file not found ...'), and so
    does ``spawn`` (no task): its reasons are whole sentences already."""
    code, step = report["exit_code"], report.get("step", "")
    if step == "execve":
        return ExecFailed(report["error"], step, code)
    message = f"cannot {task}: {step}: {report['error']}" if task else report["error"]
    return StepFailed(message, step, code)


def fork_child(task: str, work: Callable[..., object], *args, failure_code: int = 125) -> Child:
    """fork(2) a child that runs ``work(report, *args)`` and reports how it went; the caller
    reads the reports (``result``, ``gather``, ``wait_exec``). An exception in ``work``
    reports ``failure_code`` (125: the engine failed; exec uses 126: the command could not
    start)."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)  # close-on-exec: no command inherits it
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _run_and_report(Report(write_fd), work, args, failure_code)
    os.close(write_fd)
    return Child(pid, task, os.fdopen(read_fd, "rb"))


def in_child(task: str, work: Callable[..., T], *args) -> T:
    """Run ``work(report, *args)`` in a forked child and return what it returns (JSON-able).
    The child may join namespaces, chroot or unshare: none of it touches this process. A
    failure raises ``StepFailed`` naming the step: "cannot TASK: STEP: reason"."""
    child = fork_child(task, work, *args)
    with child.reports:
        return child.result()


def _run_and_report(report: Report, work: Callable, args: tuple, failure_code: int) -> None:
    """The child's side: run the work, report its value or its error, exit. Never returns."""
    code = failure_code
    try:
        report.send(ok=work(report, *args))
        code = 0
    except MinidockerError as exc:
        code = exc.exit_code
        report.error(str(exc), code)
    except BaseException as exc:
        report.error(str(exc) or type(exc).__name__, code)
    finally:
        os._exit(code)


def _how_it_ended(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        return f"was killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(wait_status)}"


def exit_code_of(wait_status: int) -> int:
    """A wait status as a shell sees it: the exit code, or 128+N when signal N killed it."""
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code
