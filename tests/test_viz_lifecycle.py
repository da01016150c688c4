"""The lifecycle helpers of notebook 06: the state machine drawn from the engine's own
TRANSITIONS (its nodes and edges), and the /proc readers on real processes."""

import os
import subprocess
import time

import pytest

from minidocker.container import lifecycle, records
from minidocker.viz import lifecycle as lcviz


def test_the_graph_is_the_engines_transition_table():
    graph = lcviz.state_graph()
    assert graph.edges == [tuple(t) for t in lifecycle.TRANSITIONS]
    assert graph.nodes[:2] == ["created", "running"]  # in the order the table names them
    assert set(graph.nodes) == {s for t in lifecycle.TRANSITIONS for s in (t[0], t[2])}
    assert len(graph.nodes) == len(set(graph.nodes))


def test_every_status_a_record_can_hold_is_drawn():
    # "dead" is a status Docker has and minidocker never sets
    assert set(records.STATUSES) - {"dead"} <= set(lcviz.state_graph().nodes)


def test_the_moves_out_of_a_state():
    graph = lcviz.state_graph()
    assert ("pause", "paused") in graph.moves_from("running")
    assert ("PID 1 exits", "exited") in graph.moves_from("running")
    assert graph.moves_from("paused") == [("unpause", "running"), ("stop / kill", "exited")]
    assert graph.moves_from("removed") == []


def test_a_graph_of_other_transitions():
    graph = lcviz.state_graph([("a", "go", "b"), ("b", "back", "a"), ("b", "end", "c")])
    assert graph.nodes == ["a", "b", "c"]
    assert graph.edges == [("a", "go", "b"), ("b", "back", "a"), ("b", "end", "c")]


def test_the_drawing_has_one_node_per_state_and_one_edge_per_transition():
    pytest.importorskip("graphviz")
    source = lcviz.draw_lifecycle(current="paused").source
    for state in lcviz.state_graph().nodes:
        assert f"\t{state} [" in source
    assert source.count(" -> ") == len(lifecycle.TRANSITIONS)
    assert "\tcreated -> running [label=start" in source
    paused = next(line for line in source.splitlines() if line.startswith("\tpaused ["))
    assert "penwidth=3" in paused and "lightblue" in paused
    running = next(line for line in source.splitlines() if line.startswith("\trunning ["))
    assert "penwidth=1" in running and "fillcolor=white" in running
    events = [line for line in source.splitlines() if "style=dashed" in line]
    assert len(events) == sum(lcviz.is_event(t[1]) for t in lifecycle.TRANSITIONS) == 3


# --- /proc ---------------------------------------------------------------------------------------


@pytest.fixture
def family():
    """sh (its own session) -> sleep, and a zombie: a child that exited and is not reaped yet
    (sh is blocked in 'read', which does not reap)."""
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & true & read x"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, start_new_session=True)
    assert lcviz.wait_until(lambda: len(lcviz.children(parent.pid)) == 2, timeout=5)
    yield parent
    for child in lcviz.children(parent.pid):
        try:
            os.kill(child, 9)
        except ProcessLookupError:
            pass
    parent.kill()
    parent.wait()


def test_the_process_tree_shows_names_roles_states_and_zombies(family):
    def settled():  # the zombie has exited, and the other child has exec'd sleep
        kids = lcviz.children(family.pid)
        return (any(not lcviz.alive(c) for c in kids)
                and any(lcviz.status(c).get("Name") == "sleep"
                        and lcviz.status(c).get("State", "").startswith("S") for c in kids))

    assert lcviz.wait_until(settled, timeout=5)
    table = lcviz.process_tree(family.pid, {family.pid: "parent"})
    assert table.header == ("process", "role", "State", "PID inside")
    assert table.rows[0][:2] == ("sh", "parent")
    below = sorted(row[0] for row in table.rows[1:])
    assert below == ["└─ sh", "└─ sleep"]  # the zombie still has its name; true forked sh
    states = {row[0]: row[2] for row in table.rows[1:]}
    assert states["└─ sh"].startswith("Z") and states["└─ sleep"].startswith("S")
    assert {row[3] for row in table.rows} == {"-"}  # all in the host's PID namespace
    assert "PID" not in table.text().replace("PID inside", "")


def test_session_facts_of_a_detached_process(family):
    rows = dict(lcviz.session_facts(family.pid, launcher=os.getpid()).rows)
    assert rows == {"in a session of its own, not this notebook's (setsid)": True,
                    "leads that session (could take a terminal)": True,
                    "has a controlling terminal": False,
                    "its parent is the command that started it": True}
    mine = dict(lcviz.session_facts(os.getpid()).rows)
    assert mine["in a session of its own, not this notebook's (setsid)"] is False
    assert mine["leads that session (could take a terminal)"] is (os.getsid(0) == os.getpid())


def test_caught_signals_and_shared_stdio():
    trapper = subprocess.Popen(["sh", "-c", "trap 'exit 0' TERM; read x"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    try:
        assert lcviz.wait_until(lambda: "SIGTERM" in lcviz.caught_signals(trapper.pid), 5)
        table = lcviz.shared_stdio(trapper.pid, os.getpid())
        assert table.rows[0] == ("0 (stdin)", "pipe", "yes")  # we hold the other end
        assert table.rows[1] == ("1 (stdout)", "pipe", "yes")
    finally:
        trapper.terminate()
        trapper.wait()
    assert not lcviz.alive(trapper.pid) and lcviz.status(trapper.pid) == {}


def test_wait_until_gives_up():
    began = time.monotonic()
    assert lcviz.wait_until(lambda: False, timeout=0.2) is False
    assert time.monotonic() - began < 1
    assert lcviz.wait_until(lambda: True, timeout=0) is True
