"""Lab 06, a monitor: the checker says TODO on the starter, passes the solution (through the
API and the CLI), and catches the classic mistakes, on real processes."""

from pathlib import Path

import pytest

from minidocker import labs
from minidocker.labs import lab06_lifecycle
from tests.helpers import cli_check_passes, with_mistake

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs/solutions/06-lifecycle.py"
STEPS = len(lab06_lifecycle.LAB.steps)


def test_the_starter_is_a_todo_at_every_step(capsys):
    assert labs.check("06") == 1
    results = labs.run("06")
    assert [r.status for r in results] == ["TODO"] * STEPS
    assert results[0].detail == "Step 1: spawn_detached() is not written yet"
    assert all("waits for step 1" in r.detail for r in results[1:])  # the steps build up
    assert "FAIL" not in capsys.readouterr().out


def test_the_solution_passes_every_step(capsys):
    assert labs.check("06", SOLUTION) == 0
    report = " ".join(capsys.readouterr().out.split())  # the details are wrapped
    assert report.count("PASS") == STEPS and f"{STEPS} of {STEPS} steps pass" in report
    assert "the caller has no child left" in report
    assert "exit code 7 in the state file; the command reaped; the monitor gone" in report


def test_the_cli_checks_the_solution(md):
    assert "Lab 06 — A monitor" in cli_check_passes(md, "06", SOLUTION, STEPS)


# Each mistake: (text of the solution, what the mistake makes of it, the step that fails, a
# piece of its FAIL).
MISTAKES = {
    "no setsid": ("        os.setsid()  #", "        pass  #", 1, "in the caller's session"),
    "the middle child not reaped": ("    os.waitpid(middle, 0)  #", "    pass  #", 1, "child"),
    "the last half line lost": ("                    if partial[fd]:",
                                "                    if False:", 2, "'four'"),
    "the exit status taken for the exit code": (
        "    return wait_for(pid)", "    return os.waitpid(pid, 0)[1] >> 8", 2, "137"),
    "the exited state without the exit code": (
        '"exit_code": code,', '"code": code,', 3, "exited with 3"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    right, wrong, step, complaint = MISTAKES[mistake]
    results = labs.run("06", with_mistake(SOLUTION, right, wrong, tmp_path))
    assert [r.status for r in results[:step - 1]] == ["PASS"] * (step - 1)
    assert results[step - 1].status == "FAIL", results[step - 1].detail
    assert complaint in results[step - 1].detail, results[step - 1].detail
