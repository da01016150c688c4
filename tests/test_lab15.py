"""Lab 15, the capstone runtime: the checker says TODO on the starter, passes the solution
(through the API and the CLI), fails a solution that misses one property, and leaves no cgroup,
mount or link behind."""

import glob
import subprocess
from pathlib import Path

import pytest

from minidocker import labs
from minidocker.labs import lab15_runtime
from tests.helpers import cli_check_passes, expect_first_failure, starter_report, with_mistake
from tests.traces import lab_traces

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs/solutions/15-runtime.py"
STEPS = len(lab15_runtime.LAB.steps)


pytestmark = pytest.mark.usefixtures("nothing_left_behind")  # conftest.py: traces() below


def traces() -> dict:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return lab_traces("15", links=[line.split(":")[1] for line in links.splitlines()],
                      cgroups=sorted(glob.glob("/sys/fs/cgroup/**/minidocker-lab15-*",
                                               recursive=True)))


def test_the_starter_is_a_todo_at_every_step(capsys):
    report = starter_report(capsys, "15", STEPS)
    assert "Step 1: run() is not written yet" in report


def test_the_solution_passes_every_step(capsys):
    assert labs.check("15", SOLUTION) == 0
    report = capsys.readouterr().out
    assert report.count("PASS") == STEPS and f"{STEPS} of {STEPS} steps pass" in report
    print(report)


def test_the_cli_checks_the_solution(md):
    printed = cli_check_passes(md, "15", SOLUTION, STEPS)
    assert "Lab 15 — " in printed
    assert "15  " in md("lab", "list").stdout


def test_a_stub_reached_inside_the_container_is_a_todo(tmp_path):
    """A run() that already calls a step's function the student has not written: the
    container's NotImplementedError (on stderr) makes that step a TODO, not a FAIL."""
    source = SOLUTION.read_text()
    student = with_mistake(SOLUTION, '    """Step 2: an overlay of the image in spec.state, '
                           'pivot_root into it, a fresh /proc."""\n',
                           '    """Step 2"""\n    raise NotImplementedError("Step 2: enter_root() '
                           'is not written yet")\n', tmp_path, source)
    results = labs.run("15", student)
    assert [r.status for r in results][:2] == ["TODO", "TODO"], [r.detail for r in results]
    assert results[0].detail == "Step 2: enter_root() is not written yet"


# Each mistake: (text of the solution, what the mistake makes of it, a piece of the FAIL).
MISTAKES = {
    "no PID namespace": ("| kernel.CLONE_NEWPID ", "", "not 1"),
    "no network namespace": ("\n              | kernel.CLONE_NEWIPC | kernel.CLONE_NEWNET)",
                             "\n              | kernel.CLONE_NEWIPC)", "net namespace"),
    "chroot into the image, no overlay": (
        '    kernel.mount("overlay", merged, "overlay", 0,',
        '    kernel.mount(spec.image, merged, None, kernel.MS_BIND)\n    (0,', "not an overlay"),
    "the cgroup joined after the command started": (
        "        join_cgroup(spec, child)  #", "        pass  #", "of the pids controller"),
    "no pids.max": ("        f.write(str(spec.pids_limit))", "        pass", "none was refused"),
    "the host's end without an address": (
        '    sh("ip", "addr", "add", f"{spec.host_ip}/{spec.prefix}", "dev", spec.host_if)',
        "    pass", "cannot ping"),
    "the bounding set kept": ("            kernel.prctl(kernel.PR_CAPBSET_DROP, number)",
                              "            pass", "CapBnd"),
    "the filter installed before the capabilities are dropped": (
        "    drop_capabilities(spec)  # Step 5", "    pass  # Step 5", "CapBnd"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    right, wrong, complaint = MISTAKES[mistake]
    expect_first_failure(labs.run("15", with_mistake(SOLUTION, right, wrong, tmp_path)),
                         complaint)
