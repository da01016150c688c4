"""Lab 14 (the scheduler's spread and binpack scores and the port filter): the checker says TODO
for each step of the starter, passes the solution, and names the first task placed elsewhere
for the classic mistakes."""

from pathlib import Path

import pytest

from minidocker import labs
from tests.helpers import starter_report, with_mistake

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs/solutions/14-scheduler.py"


def test_the_starter_is_a_todo_at_every_step(capsys):
    starter_report(capsys, "14", 3)
    assert [r.detail.split(":")[0] for r in labs.run("14")] == ["Step 1", "Step 2", "Step 3"]


def test_the_solution_passes_every_step(capsys):
    assert labs.check("14", SOLUTION) == 0
    report = capsys.readouterr().out
    assert "3 of 3 steps pass" in report
    assert "[4, 4, 4, 4] tasks per node" in report


@pytest.mark.parametrize("step, right, wrong, message", [
    (1, "    return node.tasks", "    return -node.tasks",
     "should win; the nodes were"),
    (2, "    return (memory + cpus) / 2", "    return memory",
     "binpack's score is how full the node would be *with* the task"),
    (2, "    return (memory + cpus) / 2", "    return str(memory)",
     "binpack_score(node, task) returned '"),
    (3, "if not any(port in node.ports for port in task.ports)", "",
     "three tasks publishing 80/tcp went to"),
])
def test_a_mistake_fails_its_step_with_a_sentence(tmp_path, step, right, wrong, message):
    student = with_mistake(SOLUTION, right, wrong, tmp_path)
    result = labs.run("14", student)[step - 1]
    assert result.status == "FAIL" and message in result.detail, result.detail
