"""Helpers shared by several test modules: a lab student's file with one classic mistake, what
the checker says of it, of the starter and of the solution, a condition awaited, and a host
port that someone else holds."""

import dataclasses
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from minidocker import labs
from minidocker.labs import framework
from tests.conftest import TIMEOUT_SCALE


def eventually(condition, timeout: float = 10, what: str = "", every: float = 0.05):
    """Poll ``condition`` until it returns something true, and return that; after ``timeout``
    seconds (times the emulated VM's TIMEOUT_SCALE), fail saying ``what`` was awaited."""
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what or condition}")
        time.sleep(every)


def with_mistake(solution: Path, right: str, wrong: str, folder: Path,
                 source: str | None = None) -> Path:
    """A student's file in ``folder``: the solution (or ``source``, a changed copy of it) with
    its first ``right`` made ``wrong``."""
    source = solution.read_text() if source is None else source
    assert right in source
    student = folder / "student.py"
    student.write_text(source.replace(right, wrong, 1))
    return student


def expect_first_failure(results: list, complaint: str) -> None:
    """The first step that fails says ``complaint``."""
    failed = [r for r in results if r.status == "FAIL"]
    assert failed and complaint in failed[0].detail, [(r.status, r.detail) for r in failed]


def starter_report(capsys, number: str, steps: int, each_stub_speaks: bool = False) -> str:
    """``lab check NUMBER`` on the starter: it exits 1 and every one of the ``steps`` steps is a
    TODO, none a FAIL; returns what it printed. With ``each_stub_speaks`` (a lab whose steps do
    not wait for each other), the detail under each step begins with its own stub's "Step N"."""
    assert labs.check(number) == 1
    report = capsys.readouterr().out
    assert report.count("TODO") == steps and "FAIL" not in report
    if each_stub_speaks:
        details = [line.strip() for line in report.splitlines() if line.startswith(" " * 8)]
        assert [d.split(":")[0] for d in details] == [f"Step {n}" for n in range(1, steps + 1)]
    return report


def run_one_step(lab: framework.Lab, step: int, file: Path) -> framework.Result:
    """The verdict of step ``step`` of ``lab`` alone on ``file`` (not cumulative: the steps
    before it are not run), so that a mistake is seen at the step that makes it."""
    alone = dataclasses.replace(lab, steps=(lab.steps[step - 1],), cumulative=False)
    with alone.open_workspace() as workspace:
        return framework.run_steps(alone, file, workspace)[0]


def expect_step_failure(lab: framework.Lab, step: int, file: Path,
                        complaint: str) -> framework.Result:
    """Step ``step`` of ``lab``, checked alone on ``file``, FAILs and says ``complaint``."""
    result = run_one_step(lab, step, file)
    assert result.status == "FAIL" and complaint in result.detail, (result.status, result.detail)
    return result


def cli_check_passes(md, number: str, solution: Path, steps: int) -> str:
    """``minidocker lab check NUMBER SOLUTION`` passes every step; returns what it printed."""
    result = md("lab", "check", number, str(solution))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASS") == steps
    return result.stdout


@contextmanager
def port_taken(port: int) -> Iterator[socket.socket]:
    """A socket of this process listening on ``port`` of every host address."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("0.0.0.0", port))
        squatter.listen()
        yield squatter


@contextmanager
def attached(*args: str) -> Iterator[subprocess.Popen]:
    """``minidocker attach ARGS`` with pipes; the test types into it and detaches: the client
    must then end with 0 and say "read escape sequence". Killed at the end in any case."""
    from tests.conftest import MINIDOCKER

    client = subprocess.Popen([*MINIDOCKER, "attach", *args], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield client
        assert client.wait(timeout=5 * TIMEOUT_SCALE) == 0
        assert b"read escape sequence" in client.stderr.read()
    finally:
        client.kill()
        client.wait()


RUNTIMES = ("minidocker", "runc")  # --runtime: minidocker's own spawn, or runc's (an OCI bundle)


def cli_on_runtime(runtime: str):
    """The ``md`` fixture's command, with every ``run`` and ``create`` on ``runtime``: a test
    module parametrized by it checks that both runtimes give a container the same world."""
    from .conftest import minidocker

    def md(*args: str, **kwargs):
        if args and args[0] in ("run", "create"):
            args = (args[0], "--runtime", runtime, *args[1:])
        return minidocker(*args, **kwargs)

    return md
