"""Stage 14 — beyond one host: nodes on a real etcd, an overlay network, a scheduler, pods.

Swarm turns "a group of Docker hosts into a single virtual host": each node is a network
namespace with its own minidocker daemon (stage 12); the cluster's state lives in etcd.

The scheduler comes first; it needs no container:

    model.py       NodeView, TaskSpec, Resources, Port: what the scheduler sees
    view.py        ClusterView: the nodes and their tasks, with the indexes the filters read
    filters.py     health, constraint, affinity, dependency, port, resources, placement-pref
    strategies.py  spread, binpack, random
    scheduler.py   filters then a strategy; a Decision that explains itself
    simulate.py    1,000 nodes and 100,000 tasks in memory (bench/cluster.py, notebook 15)

Pods need no cluster: pods.py groups containers of one host around an infra container.
"""
