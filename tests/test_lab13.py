"""Lab 13, compose: the checker says TODO on the starter, passes the solution (also through the
CLI), fails the classic mistakes, and leaves no container, mount or cgroup behind."""

import glob
import os
from pathlib import Path

import pytest

from minidocker import labs
from tests.helpers import cli_check_passes, expect_first_failure, starter_report, with_mistake
from tests.traces import lab_traces

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs/solutions/13-compose.py"
PARENT = os.environ.get("MINIDOCKER_CGROUP_PARENT", "minidocker")  # this session's containers


pytestmark = pytest.mark.usefixtures("nothing_left_behind")  # conftest.py: traces() below


def traces() -> dict:
    return lab_traces("13", cgroups=sorted(glob.glob(f"/sys/fs/cgroup/**/{PARENT}/*/",
                                                     recursive=True)))


def test_the_starter_is_a_todo_at_every_step(capsys):
    starter_report(capsys, "13", 3)


def test_the_solution_passes_every_step(md):
    printed = cli_check_passes(md, "13", SOLUTION, 3)
    assert "the engine started db, app, web, cache" in printed


@pytest.mark.parametrize("right, wrong, complaint", [
    ("        for dependency in depends.get(service, []):\n            place(dependency)\n"
     "        placed.append(service)",
     "        placed.append(service)\n        for dependency in depends.get(service, []):\n"
     "            place(dependency)", "web comes before app, which it depends on"),
    ("            return path[path.index(service):] + [service]",
     "            return path[path.index(service):]", "give the path round the cycle"),
    ("    return list(reversed(start_order(depends)))", "    return start_order(depends)",
     "comes after"),
])
def test_mistakes_fail_with_a_reason(right, wrong, complaint, tmp_path):
    student = with_mistake(SOLUTION, right, wrong, tmp_path)
    expect_first_failure(labs.run("13", student), complaint)
