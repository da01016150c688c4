"""Lab 03, cgroups: the checker says TODO for each step of the starter, passes the solution
(through the API and the CLI), catches the classic mistakes, and leaves no cgroup behind.

Each test's ID names the cgroup path that ran: [v1] on this Debian machine's hybrid layout
(the controllers are in v1 trees), [v2] on a v2-only machine such as the Ubuntu 24.04
classroom VM. The checker only ever works on the controllers the machine has.
"""

import time
from pathlib import Path

import pytest

from minidocker import cgroups, labs
from minidocker.labs import lab03_cgroups
from tests.helpers import cli_check_passes, expect_first_failure, starter_report, with_mistake

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs/solutions/03-cgroups.py"
STEPS = len(lab03_cgroups.LAB.steps)
VERSION = lab03_cgroups.find_hierarchies()[0]  # "v1" or "v2": the path the checker takes


@pytest.fixture(params=[VERSION])
def version(request):
    """The cgroup version the lab runs on here, in every test's ID; and afterwards, proof
    that nothing is left in any cgroup tree of this machine."""
    before = set(all_cgroups())
    yield request.param
    assert left_behind(before) == []


def all_cgroups() -> list[Path]:
    """Every container cgroup, and every ``minidocker-lab03*`` directory in any tree."""
    root = cgroups.CGROUP_ROOT
    return (cgroups.leftover_cgroups() + sorted(root.glob("minidocker-lab03*"))
            + sorted(root.glob("*/minidocker-lab03*")))


def left_behind(before: set[Path], patience: float = 3.0) -> list[Path]:
    """The cgroups that appeared since ``before`` and stay, empty. Cgroups are the machine's,
    not the test session's: another run of minidocker on this machine may have a container
    running (it has processes) or just starting or ending (its cgroup soon goes)."""
    deadline = time.monotonic() + patience
    while True:
        new = [path for path in all_cgroups() if path not in before and is_empty(path)]
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.1)


def test_the_starter_is_a_todo_at_every_step(version, capsys):
    starter_report(capsys, "03", STEPS, each_stub_speaks=True)


def test_the_solution_passes_every_step(version, capsys):
    assert labs.check("03", SOLUTION) == 0
    report = capsys.readouterr().out
    assert report.count("PASS") == STEPS and f"{STEPS} of {STEPS} steps pass" in report
    assert f"this machine is cgroup {version}" in report
    assert "OOM-killed (exit 137" in report and "pids.events: max" in report
    print(f"lab 03 ran on the cgroup {version} path:\n{report}")


def test_the_cli_checks_the_solution(md, version):
    printed = cli_check_passes(md, "03", SOLUTION, STEPS)
    assert "Lab 03 — Cgroups: a process with limits the kernel enforces" in printed


def is_empty(cgroup: Path) -> bool:
    try:
        return not (cgroup / "cgroup.procs").read_text().split()
    except FileNotFoundError:
        return False  # gone meanwhile


# Each mistake: (text of the solution, what the mistake makes of it, a piece of the FAIL).
# Some mistakes exist on one cgroup version only.
MISTAKES = {
    "v1 and v2 told apart by a hard-coded path": (
        # on a hybrid or v1 host the fake v2 tree catches it; on a v2 host, this machine does
        'if (root / "cgroup.controllers").exists():', "if False:", "v2"),
    "memory limit without the swap limit": (
        '        (memory / "memory.memsw.limit_in_bytes").write_text(str(limit))',
        "        pass", "cannot swap its way past the limit"),
    "swap limit written before the memory limit (v1)": (
        '    (memory / "memory.limit_in_bytes").write_text(str(limit))\n'
        '    if (memory / "memory.memsw.limit_in_bytes").exists():  # only with swap accounting\n'
        '        (memory / "memory.memsw.limit_in_bytes").write_text(str(limit))',
        '    (memory / "memory.memsw.limit_in_bytes").write_text(str(limit))\n'
        '    (memory / "memory.limit_in_bytes").write_text(str(limit))',
        "write the memory limit first"),
    "the caller joins the cgroup instead of the child": (
        "    pid = os.fork()\n    if pid == 0:\n",
        '    for directory in cgroup.values():\n'
        '        (directory / "cgroup.procs").write_text(str(os.getpid()))\n'
        "    pid = os.fork()\n    if pid == 0:\n",
        "moved its caller"),
    "rmdir without killing what is left": (
        "        while pids := procs.read_text().split():", "        while False:",
        "EBUSY"),
    "the parent removed too": (
        "        directory.rmdir()  #", "        directory.rmdir()\n        directory.parent.rmdir()  #",
        "its parent is not yours"),
}
ON_V1_ONLY = {"memory limit without the swap limit", "swap limit written before the memory limit (v1)"}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, version, tmp_path):
    if version != "v1" and mistake in ON_V1_ONLY:
        pytest.skip("a cgroup v1 mistake")
    right, wrong, complaint = MISTAKES[mistake]
    student = with_mistake(SOLUTION, right, wrong, tmp_path)
    expect_first_failure(labs.run("03", student), complaint)
