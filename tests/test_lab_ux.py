"""The student's side of the labs: ``lab reset`` makes a working copy of the starter, ``lab check``
finds it by default, ``lab list`` shows the last check of every lab, ``lab hint`` opens the
README's hints one at a time, and a notebook gets the verdicts as a table.

Each test has a state root and a lab work dir of its own (``MINIDOCKER_ROOT``,
``MINIDOCKER_LAB_WORKDIR``), so progress and copies never leak from one test to the next."""

import filecmp
import os
from pathlib import Path

import pytest
from rich.console import Console

from minidocker import labs
from minidocker.labs import framework, student
from tests.helpers import with_mistake

REPO = Path(__file__).resolve().parents[1]
SOLUTION_01 = REPO / "labs/solutions/01-namespaces.py"
STARTER_01 = REPO / "labs/01-namespaces/starter.py"


@pytest.fixture
def own(tmp_path, monkeypatch):
    """A fresh state root and lab work dir, for this process and for the CLI it runs."""
    env = {"MINIDOCKER_ROOT": str(tmp_path / "root"),
           "MINIDOCKER_LAB_WORKDIR": str(tmp_path / "work")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def mine(tmp_path: Path, lab: str = "01-namespaces") -> Path:
    return tmp_path / "work" / lab / "mine.py"


# --- hints ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("lab", labs.LABS, ids=lambda lab: lab.number)
def test_every_step_of_every_lab_has_three_hints_in_its_readme(lab):
    hints = student.hints(lab)
    assert sorted(hints) == [step.number for step in lab.steps]
    for step, texts in hints.items():
        assert len(texts) == 3, f"lab {lab.number} step {step}"
        assert all(text and "<details>" not in text and "</summary>" not in text
                   for text in texts)


def test_a_hint_is_the_readme_text():
    first = student.hints(labs.LABS[0])[1][0]
    assert first.startswith("If you change the hostname in the process that calls your function")


def test_hints_open_one_at_a_time_and_are_remembered(md, own):
    first = md("lab", "hint", "01")
    assert first.returncode == 0, first.stderr
    assert "step 1" in first.stdout and "Hint 1 of 3:" in first.stdout
    assert "Hint 2" not in first.stdout and "--next" in first.stdout
    assert "Hint 1 of 3:" in md("lab", "hint", "01").stdout  # again: nothing new opened
    second = md("lab", "hint", "01", "--next")
    assert "Hint 1 of 3:" in second.stdout and "Hint 2 of 3:" in second.stdout
    assert "Hint 3" not in second.stdout
    third = md("lab", "hint", "1", "--next").stdout
    assert "Hint 3 of 3:" in third and "last hint for step 1" in third
    assert md("lab", "hint", "01", "--next").stdout.count("Hint 3 of 3:") == 1
    other = md("lab", "hint", "01", "--step", "2").stdout
    assert "step 2" in other and "Hint 2" not in other  # each step has its own count


def test_next_opens_the_first_hint_first(md, own):
    result = md("lab", "hint", "03", "--next")
    assert "Hint 1 of 3:" in result.stdout and "Hint 2" not in result.stdout


def test_a_step_without_hints_is_one_clear_line(md, own):
    result = md("lab", "hint", "01", "--step", "9")
    assert result.returncode != 0
    assert result.stderr.startswith("minidocker: lab 01 has no hints for step 9; its steps: 1, 2, 3")


# --- the working copy, the default file, the status -------------------------------------------------

def test_reset_copies_the_starter_and_keeps_the_previous_copy(md, own):
    result = md("lab", "reset", "01")
    assert result.returncode == 0, result.stderr
    copy = mine(own)
    assert filecmp.cmp(copy, STARTER_01, shallow=False)
    assert str(copy) in result.stdout
    copy.write_text("my work\n")
    again = md("lab", "reset", "01")
    assert "mine.py.bak" in again.stdout
    assert (copy.parent / "mine.py.bak").read_text() == "my work\n"
    assert filecmp.cmp(copy, STARTER_01, shallow=False)


def test_reset_under_sudo_gives_the_copy_to_the_student(md, own):
    assert md("lab", "reset", "04", env={"SUDO_UID": "1234", "SUDO_GID": "1234"}).returncode == 0
    assert os.stat(mine(own, "04-overlay")).st_uid == 1234


def test_the_copy_lives_beside_the_starter_by_default(monkeypatch):
    monkeypatch.delenv("MINIDOCKER_LAB_WORKDIR", raising=False)
    assert student.working_copy(labs.LABS[0]) == REPO / "labs/01-namespaces/mine.py"


def test_check_finds_the_starter_then_the_working_copy_and_list_shows_the_verdicts(md, own):
    listed = md("lab", "list").stdout
    assert listed.count("not checked yet") == len(labs.LABS)

    on_starter = md("lab", "check", "01")
    assert on_starter.returncode == 1
    assert "checking labs/01-namespaces/starter.py" in on_starter.stdout  # cwd: the checkout
    assert "lab hint 01" in on_starter.stdout
    line = next(x for x in md("lab", "list").stdout.splitlines() if x.startswith("01 "))
    assert "0 of 3 steps pass" in line

    md("lab", "reset", "01")
    # the student's copy: the solution with step 2's mistake (the caller unshares CLONE_NEWPID)
    broken = with_mistake(
        SOLUTION_01, "    pid = os.fork()\n    if pid == 0:\n        kernel.unshare(kernel.CLONE_NEWPID)",
        "    kernel.unshare(kernel.CLONE_NEWPID)\n    pid = os.fork()\n    if pid == 0:", own)
    mine(own).write_text(broken.read_text())
    on_copy = md("lab", "check", "01")
    assert on_copy.returncode == 1
    assert "checking " + str(mine(own)) in on_copy.stdout
    line = next(x for x in md("lab", "list").stdout.splitlines() if x.startswith("01 "))
    assert "1 of 3 steps pass" in line or "2 of 3 steps pass" in line
    assert "step 2" in md("lab", "hint", "01").stdout  # where the check stopped

    mine(own).write_text(SOLUTION_01.read_text())
    assert md("lab", "check", "01").returncode == 0
    listed = md("lab", "list").stdout.splitlines()
    assert "done" in next(x for x in listed if x.startswith("01 "))
    assert "not checked yet" in next(x for x in listed if x.startswith("02 "))


# --- the table for a notebook ----------------------------------------------------------------------

def test_a_check_as_a_table_for_a_notebook(own, capsys):
    table = labs.table("01", SOLUTION_01)
    assert capsys.readouterr().out == ""  # the table is the output, not a printed report
    html = table._repr_html_()
    assert html.startswith("<table") and html.count("<tr>") == 4  # a header and three steps
    assert html.count(">PASS<") == 3 and "3 of 3 steps pass (done)" in html
    assert "Step 1: " in str(table) and str(SOLUTION_01) in str(table)
    console = Console(record=True, width=120)
    console.print(table.rich())
    assert console.export_text().count("PASS") == 3
    assert student.status(framework.find_lab(labs.LABS, "01")) == "done"


def test_the_table_of_the_starter_shows_what_is_missing(own):
    table = labs.table("01")
    assert [status for status, _, _ in table.rows()] == ["TODO"] * 3
    assert ">TODO<" in table._repr_html_() and "0 of 3 steps pass." in table.summary
