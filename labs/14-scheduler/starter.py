"""Lab 14 — the scheduler: where does a task go?

You write the two scores of the seeds' strategies and one filter. The checker plugs them into
minidocker's own scheduler (minidocker/cluster/scheduler.py) in place of its own and places
tasks on a small in-memory cluster: each of your choices must be the one the reference makes.

A node (``NodeView``, minidocker/cluster/model.py) has: ``hostname``, ``tasks`` (how many it
runs), ``total`` and ``reserved`` (``Resources``: ``memory`` in bytes, ``nano_cpus``, 1 CPU =
1,000,000,000), ``free`` (total - reserved) and ``ports`` (the ``Port``s its tasks publish on
the host). A task (``TaskSpec``) has ``reservations`` (``Resources``) and ``ports``.

Check your work (no root needed for the code; the checker runs it in a sandbox):

    sudo minidocker lab check 14                # this file
    sudo minidocker lab check 14 PATH           # a copy of it

Steps and hints: labs/14-scheduler/README.md. Docs: docs.docker.com "Swarm strategies".
"""

from minidocker.cluster.model import NodeView, TaskSpec  # noqa: F401


def spread_score(node: NodeView, task: TaskSpec) -> float:
    """Step 1: the score of ``node`` for ``task`` under spread; the LOWEST score wins."""
    # TODO Step 1: the node running the fewest tasks should win.
    raise NotImplementedError("Step 1: spread_score() is not written yet")


def binpack_score(node: NodeView, task: TaskSpec) -> float:
    """Step 2: the score of ``node`` for ``task`` under binpack; the HIGHEST score wins. The
    nodes where the task does not fit are already gone (the resources filter)."""
    # TODO Step 2: how full would the node be with the task? Count memory and CPUs alike.
    raise NotImplementedError("Step 2: binpack_score() is not written yet")


def port_filter(task: TaskSpec, nodes: list[NodeView]) -> list[NodeView]:
    """Step 3: the nodes of ``nodes`` that may run ``task``, as far as its published host
    ports go."""
    # TODO Step 3: a port published on a node's host can be held by one task only.
    raise NotImplementedError("Step 3: port_filter() is not written yet")
