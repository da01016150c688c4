"""The labs: every checker says TODO for each step of its starter, passes its reference
solution, catches the classic mistakes, and answers a bad lab number or path in one line."""

from pathlib import Path

import pytest

from minidocker import labs
from minidocker.errors import MinidockerError
from tests.helpers import cli_check_passes, expect_first_failure, with_mistake

REPO = Path(__file__).resolve().parents[1]
STEPS = {"01": 3, "02": 4}
SOLUTIONS = {"01": REPO / "labs/solutions/01-namespaces.py",
             "02": REPO / "labs/solutions/02-root-filesystem.py"}


@pytest.mark.parametrize("number", STEPS)
def test_the_starter_is_a_todo_at_every_step(number, capsys):
    assert labs.check(number) == 1
    results = labs.run(number)
    assert [r.status for r in results] == ["TODO"] * STEPS[number]
    assert results[0].detail.startswith("Step 1: ")
    report = capsys.readouterr().out
    assert report.count("TODO") == 2 * STEPS[number] and "FAIL" not in report


def test_independent_steps_each_show_their_own_stub_message():
    assert [r.detail.split(":")[0] for r in labs.run("01")] == ["Step 1", "Step 2", "Step 3"]


@pytest.mark.parametrize("number", STEPS)
def test_the_solution_passes_every_step(number, capsys):
    assert labs.check(number, SOLUTIONS[number]) == 0
    report = capsys.readouterr().out
    assert report.count("PASS") == STEPS[number]
    assert f"{STEPS[number]} of {STEPS[number]} steps pass" in report


def test_the_cli_checks_a_file(md):
    cli_check_passes(md, "01", SOLUTIONS["01"], 3)


def test_the_cli_fails_on_the_starter(md):
    result = md("lab", "check", "2")
    assert result.returncode == 1
    assert result.stdout.count("TODO") == 4


def test_the_cli_lists_the_labs_with_titles(md):
    result = md("lab", "list")
    assert result.returncode == 0
    assert "01  Namespaces: a process that sees its own world" in result.stdout
    assert "02  The root filesystem" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["99"], "there is no lab '99'"),
    (["01", "/nonexistent/lab01.py"], "no such file: /nonexistent/lab01.py"),
])
def test_a_bad_lab_or_path_is_one_clear_line(md, args, message):
    result = md("lab", "check", *args)
    assert result.returncode != 0
    assert result.stderr.startswith(f"minidocker: {message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_syntax_error_names_the_line(tmp_path):
    broken = tmp_path / "lab01.py"
    broken.write_text("def run_with_hostname(:\n")
    with pytest.raises(MinidockerError, match="lab01.py line 1"):
        labs.run("01", broken)


# Each mistake: (lab, text of the solution, what the mistake makes of it, a piece of the FAIL).
MISTAKES = {
    "hostname set on the host": (
        "01", "        kernel.unshare(kernel.CLONE_NEWUTS)", "        pass",
        "the host's hostname changed"),
    "PID namespace unshared by the caller": (
        "01", "    pid = os.fork()\n    if pid == 0:\n        kernel.unshare(kernel.CLONE_NEWPID)",
        "    kernel.unshare(kernel.CLONE_NEWPID)\n    pid = os.fork()\n    if pid == 0:",
        "moved its caller"),
    "/proc mounted without making mounts private": (
        "01", '            kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)\n',
        "", "appeared in the host's mount table"),
    "a child that returns instead of exec'ing": (
        "01", "        kernel.sethostname(hostname)  #", "        return 7  #",
        "returned instead of exec'ing"),
    "old root still attached": (
        "02", '    kernel.umount2("/.oldroot", kernel.MNT_DETACH)', "    return",
        "the old root is still mounted"),
    "chroot instead of pivot_root": (
        "02", "    kernel.pivot_root(new_root, put_old)  #",
        '    os.rmdir(put_old)\n    os.chroot(new_root)\n    os.chdir("/")\n    return  #',
        "chroot escape"),
    "read-only for the host too": (
        "02", "kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY",
        "kernel.MS_REMOUNT | kernel.MS_RDONLY", "for the host too"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    number, right, wrong, complaint = MISTAKES[mistake]
    student = with_mistake(SOLUTIONS[number], right, wrong, tmp_path)
    expect_first_failure(labs.run(number, student), complaint)
