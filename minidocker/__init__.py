"""minidocker — a container engine you can read, built stage by stage on the real Linux kernel.

Each stage adds one idea, has one notebook (notebooks/NN-*.ipynb) and one lab (labs/NN-*/),
and imports only from the stages below it (an import-linter ``layers`` contract in
pyproject.toml; docs/stages.md records the decisions):

    0 kernel/      the syscalls themselves, through ctypes         unshare(2) mount(2) pivot_root(2)
    1 namespaces   a process that sees its own world               namespaces(7)
    2 rootfs       a process that has its own /                    pivot_root(2) mount_namespaces(7)
    3 cgroups/     a process with limits: v1 and v2 drivers        cgroups(7)
    4 unionfs      copy-on-write: overlay, the upper dir as diff   overlayfs kernel docs
    5 image/       content-addressed images in an OCI layout       OCI image-spec
    6 container/   the lifecycle: Config/HostConfig, create, the start
                   story, one teardown, monitor, state             the Engine API
    7 volumes      data outside the union fs                       mount(2) (bind, tmpfs)
    8 network/     bridge, veth, IPAM, NAT, published ports, hosts veth(4) iptables(8)
    9 security/    capabilities, no_new_privs, seccomp, userns     capabilities(7) seccomp(2)
    top            cli/ (commands, tables, Go templates), viz/ (notebook pictures),
                   labs/ (checkers), doctor

Stages 7-9 are mechanisms that know nothing of containers: they sit *below* stage 6 in the
layers, and container/ composes them through its start hooks. ``errors`` and ``state`` (the
state root, atomic writes) sit under stage 0, for every stage to use.

Coming next, as front ends of one engine API (the typed container configuration in Docker's
``Config``/``HostConfig`` vocabulary) rather than new engines: 10 build/ (Dockerfile builds,
a container per RUN step), 11 registry/ (an OCI distribution server and client), 12 daemon/
(the Docker Engine API on a unix socket), 13 compose/ and 14 cluster/. None re-implements
create, start or teardown; docs/stages.md records each as it lands.
"""

__version__ = "0.1.0"
