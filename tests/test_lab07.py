"""Lab 07 (a host directory into a running container): the checker says TODO for each step of
the starter, passes the solution (through the API and the CLI), catches the classic mistakes
with a sentence that says what to do, and leaves nothing behind."""

import os
from pathlib import Path

import pytest

from minidocker import labs
from minidocker.labs import lab07_volumes
from tests.helpers import expect_step_failure, run_one_step, starter_report, with_mistake
from tests.traces import lab_traces

REPO = Path(__file__).resolve().parents[1]
LAB = lab07_volumes.LAB
SOLUTION = REPO / "labs/solutions/07-volumes.py"


pytestmark = pytest.mark.usefixtures("nothing_left_behind")  # conftest.py: traces() below


def traces() -> dict:
    return lab_traces("07", top=os.path.lexists(lab07_volumes.TOP))


def test_the_starter_is_a_todo_at_every_step(capsys):
    report = starter_report(capsys, "07", 4)
    assert "Step 1: run_in_mount_namespace() is not written yet" in report


def test_each_stub_says_its_own_step(tmp_path):
    """Steps 2-4 of the starter, each checked with the steps before it solved."""
    source = (REPO / "labs/07-volumes/starter.py").read_text()
    solution = SOLUTION.read_text()
    names = ["run_in_mount_namespace", "make_mount_point", "hot_mount", "make_readonly"]
    for step in (2, 3, 4):
        student = tmp_path / f"step{step}.py"
        solved = "".join(function_source(solution, name) for name in names[:step - 1])
        student.write_text(source + "\n\n" + solved)
        result = run_one_step(LAB, step, student)
        assert result.status == "TODO" and result.detail.startswith(f"Step {step}: "), \
            (step, result.detail)


def function_source(source: str, name: str) -> str:
    """The text of one top-level function of ``source``."""
    start = source.index(f"\ndef {name}(")
    end = source.find("\ndef ", start + 1)
    return source[start:end if end != -1 else len(source)]


def test_the_solution_passes_every_step(capsys):
    assert labs.check("07", SOLUTION) == 0
    report = capsys.readouterr().out
    assert report.count("PASS") == 4 and "4 of 4 steps pass" in report
    words = " ".join(report.split())
    assert "a write fails with EROFS (mountinfo: ro)" in words
    assert "the host's mount table did not change" in words


def test_the_cli_checks_the_solution(md):
    result = md("lab", "check", "07", str(SOLUTION))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lab 07 — Volumes: a host directory into a running container" in result.stdout
    assert "07  Volumes: a host directory into a running container" in md("lab", "list").stdout


# Each mistake: (step, text of the solution, what the mistake makes of it, a piece of the FAIL).
MISTAKES = {
    "a new mount namespace instead of the container's": (
        1, "            kernel.setns(namespace, kernel.CLONE_NEWNS)",
        "            kernel.unshare(kernel.CLONE_NEWNS)", "unshare(2) makes a new one"),
    "chroot into /proc/<pid>/root instead of setns": (
        1, "            kernel.setns(namespace, kernel.CLONE_NEWNS)",
        '            os.chroot(f"/proc/{pid}/root")\n            os.chdir("/")',
        "you changed only its root (chroot?)"),
    "setns in the caller, no fork": (
        1, "    child = os.fork()\n    if child == 0:",
        "    namespace = os.open(f\"/proc/{pid}/ns/mnt\", os.O_RDONLY)\n"
        "    kernel.setns(namespace, kernel.CLONE_NEWNS)\n    function()\n    return\n"
        "    child = os.fork()\n    if child == 0:",
        "moved its caller"),
    "the child's failure swallowed": (
        1, "    if code != 0:\n        raise", "    if code == 1234:\n        raise",
        "returned as if all went well"),
    "a file mount point made as a directory": (
        2, "    if is_dir:\n        os.makedirs(target, exist_ok=True)\n        return",
        "    os.makedirs(target, exist_ok=True)\n    return", "makes an empty file"),
    "a bind mount from /proc/self/fd": (
        3, "    tree = open_tree(host_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)",
        "    tree = os.open(host_path, os.O_RDONLY)", "open_tree(2)"),
    "mount(2) from the host path after setns": (
        3, "            move_mount(tree, target)",
        "            kernel.mount(host_path, target, None, kernel.MS_BIND)",
        "before setns"),
    "the mount made on the host's side": (
        3, "        run_in_mount_namespace(pid, attach)",
        "        kernel.mount(host_path, '/tmp', None, kernel.MS_BIND)",
        "appeared in the host's mount table"),
    "a clone left shared with the host": (
        3, "        mount_setattr(tree, propagation=kernel.MS_PRIVATE)\n", "",
        "Make it private"),
    "read-only asked for but not made": (
        4, "    mount_setattr(tree, attr_set=MOUNT_ATTR_RDONLY)", "    pass",
        "worked: with readonly"),
    "the whole filesystem remounted read-only": (
        4, "            move_mount(tree, target)",
        "            move_mount(tree, target)\n            if readonly:\n"
        "                kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_RDONLY)",
        "the host's own directory became read-only too"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    step, right, wrong, complaint = MISTAKES[mistake]
    source = SOLUTION.read_text()
    if mistake == "a bind mount from /proc/self/fd":  # the whole classic attempt
        source = source.replace("            move_mount(tree, target)",
                                "            kernel.mount(f'/proc/self/fd/{tree}', target, "
                                "None, kernel.MS_BIND)")
        source = source.replace("        mount_setattr(tree, propagation=kernel.MS_PRIVATE)\n", "")
    if mistake == "the whole filesystem remounted read-only":
        source = source.replace("    mount_setattr(tree, attr_set=MOUNT_ATTR_RDONLY)", "    pass")
    expect_step_failure(LAB, step, with_mistake(SOLUTION, right, wrong, tmp_path, source),
                        complaint)
