"""Lab 12, the Engine API by hand: the checker says TODO on the starter, passes the solution
(through the API and the CLI), catches the classic mistakes (a frame split across reads lost, a
204 read to the end of the connection, a start before the attach, a container left behind, an
HTTP library), and leaves nothing behind."""

import glob

import pytest

from minidocker.labs import lab12_engine_api
from tests.helpers import cli_check_passes, expect_step_failure, starter_report, with_mistake
from tests.test_labs import REPO

SOLUTION = REPO / "labs/solutions/12-engine-api.py"
LAB = lab12_engine_api.LAB
STEPS = len(LAB.steps)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    assert not glob.glob("/tmp/minidocker-lab12-*")


def test_the_starter_is_a_todo_at_every_step(capsys):
    report = starter_report(capsys, "12", STEPS)
    assert "Step 1: demultiplex() is not written yet" in report


def test_the_solution_passes_every_step_and_says_what_the_daemon_heard(md):
    printed = cli_check_passes(md, "12", SOLUTION, STEPS)
    assert "Lab 12 — The Engine API by hand" in printed
    assert "create → 201, attach → 101, start → 204, wait → 200, DELETE → 204" in printed
    assert "the stream cut short refused (ValueError" in printed


# Each mistake: (the step, the solution's text, what the mistake makes of it, a piece of the
# FAIL).
MISTAKES = {
    "a frame split across reads is lost": (
        1, "                break  # the rest of this frame is in a later piece",
        "                buffer = b\"\"\n                break", "a frame may span several"),
    "a 204 read to the end of the connection": (
        2, "    if status in (204, 304) or status < 200:", "    if False:",
        "a 204 answer has no body"),
    "a container left behind": (
        3, "        call(socket_path, \"DELETE\", f\"/containers/{container}?force=1\", "
           "expected=204)", "        pass", "heard no DELETE"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    step, right, wrong, complaint = MISTAKES[mistake]
    student = with_mistake(SOLUTION, right, wrong, tmp_path)
    expect_step_failure(LAB, step, student, complaint)


def test_a_start_before_the_attach_is_caught(tmp_path):
    start = "            call(socket_path, \"POST\", f\"/containers/{container}/start\", " \
            "expected=204)\n"
    source = SOLUTION.read_text().replace(start, "").replace(
        "    try:\n        with socket.socket(", start[8:] + "    try:\n        with socket.socket(")
    student = with_mistake(SOLUTION, "import json\n", "import json\n", tmp_path, source)
    expect_step_failure(LAB, 3, student, "started before it was attached")


def test_an_http_library_is_refused(tmp_path):
    student = with_mistake(SOLUTION, "import json\n", "import json\n\nimport httpx  # noqa\n",
                           tmp_path)
    expect_step_failure(LAB, 2, student, "your file imports httpx")
