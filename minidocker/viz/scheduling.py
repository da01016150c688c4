"""The scheduler on a simulated cluster, as tables and plots: who runs what, balance, utilisation.

The data come from minidocker/cluster/simulate.py (nodes and tasks in memory, placed by the real
scheduler); the functions here only shape them: a table of the nodes, the histogram of tasks
per node, the memory use of every node in decreasing order, the timeline of a failure. The
plots are matplotlib figures shown as PNG (``Chart``), whose text form is their title.
Used by: notebook 15-scheduling; tests/test_viz_scheduling.py.
"""

from collections import Counter

from minidocker.cluster import simulate
from minidocker.cluster.model import NANO
from minidocker.cluster.view import ClusterView
from minidocker.viz.cgroups import Chart
from minidocker.viz.cgroups import _axes as chart_axes
from minidocker.viz.table import Table

GiB = 2**30
COLOURS = {"spread": "tab:blue", "binpack": "tab:orange", "random": "tab:green"}


def node_table(view: ClusterView, title: str = "") -> Table:
    """Every node: its zone, state, tasks, reservations and published ports."""
    rows = []
    for node in sorted(view.nodes.values(), key=lambda n: n.hostname):
        state = node.state if node.availability == "active" else node.availability
        ports = ", ".join(sorted(str(p) for p in node.ports)) or "-"
        rows.append((node.hostname, node.labels.get("zone", "-"), state, node.tasks,
                     f"{node.reserved.memory / GiB:g}/{node.total.memory / GiB:g} GiB",
                     f"{node.reserved.nano_cpus / NANO:g}/{node.total.nano_cpus / NANO:g}",
                     ports))
    return Table(("NODE", "ZONE", "STATE", "TASKS", "MEMORY", "CPUS", "PORTS"), rows, title)


def placements(spec: simulate.ClusterSpec,
               strategies: tuple[str, ...] = ("spread", "binpack", "random")
               ) -> dict[str, simulate.Placement]:
    """The same workload placed with each strategy, each on a fresh cluster."""
    services = simulate.make_services(spec)
    return {name: simulate.place(ClusterView(simulate.make_nodes(spec)), name, services)
            for name in strategies}


def balance_histogram(placement: simulate.Placement) -> dict[int, int]:
    """Tasks per node -> how many nodes run that many, in increasing order of tasks."""
    return dict(sorted(Counter(placement.tasks_per_node).items()))


def utilisation_curve(placement: simulate.Placement) -> list[float]:
    """Every node's reserved memory share, fullest first (the x axis of the plot: nodes)."""
    return sorted(placement.used_share, reverse=True)


def quality_table(runs: dict[str, simulate.Placement], bound: int) -> Table:
    """Per strategy: nodes used (and over the lower bound), tasks per node min/max."""
    rows = [(name, p.placed, p.nodes_used, f"{p.nodes_used / bound:.2f}",
             min(p.tasks_per_node), max(p.tasks_per_node), p.spread)
            for name, p in runs.items()]
    return Table(("STRATEGY", "TASKS", "NODES USED", "/ LOWER BOUND", "MIN TASKS", "MAX TASKS",
                  "MAX - MIN"), rows, f"lower bound: {bound} nodes")


def timeline_table(recovery: simulate.Recovery) -> Table:
    rows = [(step, f"{seconds:.2f}") for step, seconds in recovery.timeline.items()]
    rows.append(("total", f"{recovery.seconds:.2f}"))
    return Table(("STEP", "SECONDS"), rows,
                 f"{recovery.failed} nodes fail at t = 0: {recovery.orphans} tasks to place again")


def plot_balance(runs: dict[str, simulate.Placement]) -> Chart:
    """How many nodes run how many tasks, one bar series per strategy."""
    title = "tasks per node: " + ", ".join(runs)
    figure, axes = _axes(title, "tasks on the node", "nodes")
    for name, placement in runs.items():
        histogram = balance_histogram(placement)
        axes.bar(list(histogram), list(histogram.values()), width=1.0, alpha=0.6,
                 label=name, color=COLOURS.get(name))
    axes.legend(fontsize=8)
    return Chart(figure, title)


def plot_utilisation(runs: dict[str, simulate.Placement]) -> Chart:
    """Each node's reserved memory, fullest first: binpack fills few nodes to the top."""
    title = "memory reserved per node, fullest first: " + ", ".join(runs)
    figure, axes = _axes(title, "nodes, fullest first", "share of memory reserved")
    for name, placement in runs.items():
        axes.plot(utilisation_curve(placement), label=name, color=COLOURS.get(name))
    axes.set_ylim(0, 1.05)
    axes.legend(fontsize=8)
    return Chart(figure, title)



def _axes(title: str, xlabel: str, ylabel: str):
    figure, axes = chart_axes(title, ylabel)
    axes.set_xlabel(xlabel)
    return figure, axes
