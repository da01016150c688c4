"""Lab 14 — reference solution (spoilers): the spread and binpack scores and the port filter.

Compare with minidocker/cluster/strategies.py and filters.py, which keep indexes instead of
looking at each node.
"""

from minidocker.cluster.model import NodeView, TaskSpec


def spread_score(node: NodeView, task: TaskSpec) -> float:
    """Step 1: fewest tasks wins."""
    return node.tasks


def binpack_score(node: NodeView, task: TaskSpec) -> float:
    """Step 2: the share of memory and of CPUs used with the task, averaged; fullest wins."""
    memory = (node.reserved.memory + task.reservations.memory) / node.total.memory
    cpus = (node.reserved.nano_cpus + task.reservations.nano_cpus) / node.total.nano_cpus
    return (memory + cpus) / 2


def port_filter(task: TaskSpec, nodes: list[NodeView]) -> list[NodeView]:
    """Step 3: keep the nodes where none of the task's ports is taken."""
    return [node for node in nodes if not any(port in node.ports for port in task.ports)]
