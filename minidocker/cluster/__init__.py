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

Then the hosts, the store and the swarm that use it:

    lab.py         ``cluster up|down``: nodes as network namespaces on a lab bridge, a daemon each
    etcd.py        a 3-member etcd cluster in the lab, with TLS from the lab's own CA
    store.py       etcd's v3 JSON gateway over httpx: keys, transactions, leases, watches
    engine.py      a node's daemon, seen from a manager (the Engine API on its unix socket)
    swarm.py       the swarm's records in etcd and the verbs that write them
    agent.py       a node's heartbeat (its lease) and the manager's election and loop
    reconcile.py   the manager's pass: orphans, slots, scheduling, dispatch to the daemons
    update.py      rolling updates and rollbacks, a batch at a time
    stack.py       ``stack deploy``: a Compose file (stage 13's model) as services on overlays
    traffic.py     the manager's pass against a store that counts etcd's requests

And the network between the nodes (notebook 14b):

    overlay.py     overlay networks in etcd: VNI, subnet, every task's and node's address
    vxlan.py       a node's end, built by its agent: bridge, VXLAN device, FDB and ARP entries
    resolver.py    the node's name server: service names per network, round robin, from etcd
    mesh.py        the routing mesh: a published port on every node (iptables DNAT + SNAT)

Pods need no cluster: pods.py groups containers of one host around an infra container.
"""
