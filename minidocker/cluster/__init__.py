"""Stage 14 — beyond one host: nodes on a real etcd, an overlay network, a scheduler, pods.

Swarm turns "a group of Docker hosts into a single virtual host": each node is a network
namespace with its own minidocker daemon (stage 12); the cluster's state lives in etcd.
"""
