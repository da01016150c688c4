"""Lab 09 (capabilities and a seccomp filter by hand): the checker says TODO for each step of
the starter, passes the solution, and catches the classic mistakes with a sentence."""

from pathlib import Path

import pytest

from minidocker import labs
from minidocker.labs import lab09_security
from tests.helpers import expect_step_failure, run_one_step, starter_report, with_mistake

REPO = Path(__file__).resolve().parents[1]
LAB = lab09_security.LAB
STARTER = REPO / "labs/09-security/starter.py"
SOLUTION = REPO / "labs/solutions/09-security.py"
NAMES = ["drop_bounding_set", "set_capabilities", "build_filter", "install_filter"]


def test_the_starter_is_a_todo_at_every_step(capsys):
    report = starter_report(capsys, "09", 4)
    assert "Step 1: drop_bounding_set() is not written yet" in report


def function_source(source: str, name: str) -> str:
    start = source.index(f"def {name}(")
    end = source.find("\ndef ", start + 1)
    return source[start:end if end != -1 else None] + "\n"


def test_each_stub_says_its_own_step(tmp_path):
    """Each step of the starter, checked with the steps before it solved."""
    source, solution = STARTER.read_text(), SOLUTION.read_text()
    helpers = solution[solution.index("class CapHeader"):solution.index("def drop_bounding_set")]
    for step in (1, 2, 3, 4):
        student = tmp_path / f"step{step}.py"
        solved = "".join(function_source(solution, name) for name in NAMES[:step - 1])
        extra = helpers + solution[solution.index("def instruction("):
                                   solution.index("def build_filter(")]
        student.write_text(source + "\n\n" + extra + solved)
        result = run_one_step(LAB, step, student)
        assert result.status == "TODO" and result.detail.startswith(f"Step {step}: "), \
            (step, result.detail)


def test_the_solution_passes_every_step(capsys):
    assert labs.check("09", SOLUTION) == 0
    report = capsys.readouterr().out
    assert report.count("PASS") == 4 and "4 of 4 steps pass" in report
    assert "chown -> EPERM" in report and "mkdir -> EPERM" in report


def test_the_cli_lists_and_checks_the_lab(md):
    assert "09  Least privilege" in md("lab", "list").stdout
    result = md("lab", "check", "09", str(SOLUTION))
    assert result.returncode == 0, result.stdout + result.stderr


# (what the solution says, what the mistake makes of it, the step, a piece of the FAIL)
MISTAKES = {
    "bounding set left whole": (
        "            kernel.prctl(kernel.PR_CAPBSET_DROP, number)", "            pass",
        1, "the bounding set still holds"),
    "effective outside permitted": (
        "data[word].effective = data[word].permitted = part", "data[word].effective = part",
        2, "effective must be inside permitted"),
    "inheritable kept": (
        "        data[word].inheritable = 0", "        data[word].inheritable = part",
        2, "leave the inheritable set empty"),
    "no architecture check": (
        "        instruction(BPF_JMP_JEQ_K, 1, 0, arch),",
        "        instruction(BPF_JMP_JEQ_K, 1, 1, arch),", 3, "another architecture"),
    "jump to the wrong verdict": (
        "        instruction(BPF_JMP_JEQ_K, 0, 1, blocked_nr),",
        "        instruction(BPF_JMP_JEQ_K, 1, 0, blocked_nr),", 3, "not ERRNO(1)"),
    "no no_new_privs": (
        "    kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)", "    pass", 4, "must set PR_SET_NO_NEW_PRIVS first"),
    "length in bytes": (
        "SockFprog(len(program) // 8,", "SockFprog(len(program),", 4, "counts instructions"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    right, wrong, step, complaint = MISTAKES[mistake]
    expect_step_failure(LAB, step, with_mistake(SOLUTION, right, wrong, tmp_path), complaint)
