"""Helpers shared by several test modules: a lab student's file with one classic mistake, what
the checker says of it, of the starter and of the solution, what a lab's check could leave on
the host, and a host port that someone else holds."""

import dataclasses
import glob
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from minidocker import labs
from minidocker.labs import framework


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


def starter_report(capsys, number: str, steps: int) -> str:
    """``lab check NUMBER`` on the starter: it exits 1 and every one of the ``steps`` steps is a
    TODO, none a FAIL; returns what it printed."""
    assert labs.check(number) == 1
    report = capsys.readouterr().out
    assert report.count("TODO") == steps and "FAIL" not in report
    return report


def each_detail_names_its_step(report: str, steps: int) -> bool:
    """Whether, in the printed ``report`` of a starter, the detail under the verdict of each of
    the ``steps`` steps starts with its own "Step N" (the stub's NotImplementedError)."""
    details = [line.strip() for line in report.splitlines() if line.startswith(" " * 8)]
    return [d.split(":")[0] for d in details] == [f"Step {n}" for n in range(1, steps + 1)]


def run_one_step(lab: framework.Lab, step: int, file: Path) -> framework.Result:
    """The verdict of step ``step`` of ``lab`` alone on ``file`` (not cumulative: the steps
    before it are not run), so that a mistake is seen at the step that makes it."""
    alone = dataclasses.replace(lab, steps=(lab.steps[step - 1],), cumulative=False)
    with alone.open_workspace() as workspace:
        return framework.run_steps(alone, file, workspace)[0]


def lab_traces(number: str, **more) -> dict:
    """What the checks of lab ``number`` could leave on this host: the mount points and the
    lab's scratch directories (/tmp/minidocker-labNN-*), with ``more`` (what else the lab
    touches: cgroups, links, images). Equal before and after a test, or something leaked."""
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    return {"mounts": mounts, "scratch": sorted(glob.glob(f"/tmp/minidocker-lab{number}-*")),
            **more}


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
        assert client.wait(timeout=5) == 0
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
