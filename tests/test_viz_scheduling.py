"""The data behind notebook 15's tables and plots (the plots themselves are not compared)."""

from minidocker.cluster import simulate
from minidocker.cluster.model import Port
from minidocker.cluster.scheduler import Scheduler
from minidocker.cluster.strategies import BINPACK
from minidocker.cluster.view import ClusterView
from minidocker.viz import scheduling

SPEC = simulate.ClusterSpec(nodes=12, tasks=600, replicas=20)


def test_each_strategy_places_the_same_workload():
    runs = scheduling.placements(SPEC)
    assert list(runs) == ["spread", "binpack", "random"]
    assert all(p.placed == 600 and len(p.tasks_per_node) == 12 for p in runs.values())
    assert scheduling.balance_histogram(runs["spread"]) == {50: 12}
    binpack = scheduling.balance_histogram(runs["binpack"])
    assert sum(binpack.values()) == 12 and binpack.get(0, 0) > 0  # idle nodes left
    curve = scheduling.utilisation_curve(runs["binpack"])
    assert curve == sorted(curve, reverse=True) and curve[0] > 0.9 and curve[-1] == 0


def test_the_quality_and_timeline_tables():
    runs = scheduling.placements(SPEC, ("spread", "binpack"))
    bound = simulate.lower_bound(simulate.make_services(SPEC), SPEC.capacity)
    table = scheduling.quality_table(runs, bound)
    assert table.rows[0][0] == "spread" and table.rows[0][-1] == 0
    assert table.rows[1][2] == runs["binpack"].nodes_used
    view = ClusterView(simulate.make_nodes(SPEC))
    simulate.place(view, "spread", simulate.make_services(SPEC))
    recovery = simulate.fail_and_reschedule(view, "spread", 0.25)
    rows = scheduling.timeline_table(recovery).rows
    assert rows[0] == ("lease expires", "10.00") and rows[-1][0] == "total"


def test_the_node_table_shows_state_reservations_and_ports():
    view = ClusterView(simulate.make_nodes(simulate.ClusterSpec(nodes=3)))
    from minidocker.cluster.model import Resources, TaskSpec
    Scheduler(view, BINPACK).place(TaskSpec("t", reservations=Resources(2**30, 10**9),
                                            ports=(Port(80),)))
    view.set_availability("node-2", "drain")
    rows = scheduling.node_table(view).rows
    assert rows[0] == ("node-0", "a", "ready", 1, "1/128 GiB", "1/64", "80/tcp")
    assert rows[2][2] == "drain"


def test_the_plots_have_their_titles():
    runs = scheduling.placements(SPEC, ("spread", "binpack"))
    assert repr(scheduling.plot_balance(runs)) == "<chart: tasks per node: spread, binpack>"
    assert scheduling.plot_utilisation(runs)._repr_png_().startswith(b"\x89PNG")
