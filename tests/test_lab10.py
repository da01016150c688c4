"""Lab 10 (the build cache): the checker says TODO for each step of the starter, passes the
solution (its builds run with the solution's key and matcher in the real builder), and
catches the classic mistakes with a sentence."""

from pathlib import Path

import pytest

from minidocker import labs
from tests.helpers import cli_check_passes, expect_first_failure, starter_report, with_mistake

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs/solutions/10-build.py"


def test_the_starter_is_a_todo_at_every_step(capsys):
    report = starter_report(capsys, "10", 4)
    assert "Step 1: match() is not written yet" in report


def test_the_solution_passes_through_the_cli(md):
    printed = cli_check_passes(md, "10", SOLUTION, 4)
    assert "cache, cache, run, run" in printed


MISTAKES = {
    "an exception that cannot put a path back": (
        "            decision = not exception", "            decision = decision or not exception",
        "excluded(['*.md', '!README.md'], 'README.md') is True"),
    "the mtime in the checksum": (
        "                          stat.S_IMODE(info.st_mode), what])",
        "                          stat.S_IMODE(info.st_mode), what, info.st_mtime])",
        "files_checksum() changed after a new mtime"),
    "the files left out of the key": (
        '"args": args, "files": files}', '"args": args}',
        "step_key() is the same for another files checksum"),
    "the build args left out of the key": (
        '"args": args, "files": files}', '"files": files}',
        "step_key() is the same for another build args"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_classic_mistake_is_named(mistake, tmp_path):
    right, wrong, complaint = MISTAKES[mistake]
    expect_first_failure(labs.run("10", with_mistake(SOLUTION, right, wrong, tmp_path)),
                         complaint)
