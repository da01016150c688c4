"""minidocker — a container engine you can read, built stage by stage on the real Linux kernel.

The stages (see docs/stages.md) each add one idea and import only from earlier ones:

    0 kernel/      the syscalls themselves, through ctypes
    1 namespaces   a process that sees its own world
    2 rootfs       a process that has its own /
    4 unionfs      copy-on-write: the container's layer on top of the image
    5 image/       images by name (a plain root directory until the OCI store lands)
    6 container/   the lifecycle: a spec, the start story, the shim, the state
    top cli, viz, labs, doctor
"""

__version__ = "0.1.0"
