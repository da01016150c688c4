"""Lab 15 — the capstone: a container runtime of your own, from the pieces of labs 01-09.

``run(spec, argv)`` makes one whole container and runs ``argv`` in it, the way ``minidocker
run`` (and runc) do: new namespaces, an overlay root entered with pivot_root, a cgroup with a
pids limit, a veth with an address, fewer capabilities, a seccomp filter. Bring your own code
from the earlier labs; this file only says where each piece goes.

  Step 1  run(spec, argv)              fork, unshare, PID 1, hostname, exec, wait  (lab 01)
  Step 2  enter_root(spec)             overlay of the image, pivot_root, /proc     (labs 02, 04)
  Step 3  join_cgroup(spec, pid)       mkdir, pids.max, cgroup.procs               (lab 03)
  Step 4  connect_network(spec, pid)   a veth pair, addresses, up                  (lab 08)
  Step 5  drop_capabilities(spec)      the bounding set, then capset               (lab 09)
  Step 6  install_seccomp(spec)        no_new_privs, then a one-rule filter        (lab 09)

The checker runs your ``run`` with busybox's ``sh`` and a probe script, which reports from inside
what the container sees (its hostname, ``$$``, its ``/`` in mountinfo, its cgroup, its
addresses, CapEff, whether mkdir is refused). Write run() first, then add one call to it per
step: the checker checks the steps in order, each on the whole of run().

    sudo minidocker lab check 15                # this file
    sudo minidocker lab check 15 PATH           # a copy of it

Steps and hints: labs/15-runtime/README.md. Man pages: namespaces(7) pivot_root(2) cgroups(7)
veth(4) capabilities(7) seccomp(2).
"""

import ctypes
import errno  # noqa: F401  (errno.EPERM, for step 6)
import os  # noqa: F401  (os.fork, os.pipe, os.read, os.write, ...)
import struct  # noqa: F401  (struct.pack, for step 6)
import subprocess

from minidocker import kernel  # noqa: F401  (kernel.unshare, mount, pivot_root, prctl, ...)
from minidocker.labs.given import ContainerSpec, exec_command, wait_for  # noqa: F401

libc = ctypes.CDLL(None, use_errno=True)  # libc.capset(header_pointer, data_array)


# --- given: run a command on the host, or inside the container's network namespace -----------

def sh(*argv: str) -> str:
    """Run a command on the host, e.g. ``sh("ip", "link", "show")``, and return what it
    printed. If it fails, raise an error that says what the command said."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_netns(pid: int, *argv: str) -> str:
    """Run a command inside the network namespace of process ``pid`` (and only that one of
    its namespaces): ``in_netns(pid, "ip", "addr")``. nsenter(1) does the setns(2)."""
    return sh("nsenter", f"--net=/proc/{pid}/ns/net", *argv)


# --- yours ------------------------------------------------------------------------------------

def run(spec: ContainerSpec, argv: list[str]) -> int:
    """Step 1 (and the order of every step after it): run ``argv`` in a container made to
    ``spec``; return the command's exit code."""
    # TODO Step 1: fork a child. The child unshares the UTS, PID, mount, IPC and network
    #              namespaces, then forks the container's PID 1, which sets spec.hostname and
    #              execs argv (exec_command); the child hands PID 1's exit code up
    #              (os._exit(wait_for(...))), and run() returns the child's (wait_for).
    #      Steps 3 and 4 happen in *this* process, between the child's unshare and the fork
    #              of PID 1: two pipes make the handshake ("my namespaces exist" up, "your
    #              cgroup and network are ready" down).
    #      Steps 2, 5 and 6 happen in PID 1, in that order, just before exec.
    raise NotImplementedError("Step 1: run() is not written yet")


def enter_root(spec: ContainerSpec) -> None:
    """Step 2: in PID 1: mounts private; an overlay whose lower layer is spec.image, with
    upper/, work/ and merged/ in spec.state; pivot_root into merged; the old root detached
    and removed; a fresh /proc."""
    # TODO Step 2: your lab 02 enter_rootfs, on an overlay (lab 04's mount_overlay) instead of
    #              a bind mount.
    raise NotImplementedError("Step 2: enter_root() is not written yet")


def join_cgroup(spec: ContainerSpec, pid: int) -> None:
    """Step 3: in the parent: the cgroup spec.cgroup_parent/spec.cgroup_name, its pids.max =
    spec.pids_limit, and process ``pid`` in it (before it forks PID 1, which inherits it)."""
    # TODO Step 3: lab 03: on v2, "+pids" into the parent's cgroup.subtree_control; mkdir;
    #              write pids.max; write pid into cgroup.procs.
    raise NotImplementedError("Step 3: join_cgroup() is not written yet")


def connect_network(spec: ContainerSpec, pid: int) -> None:
    """Step 4: in the parent: a veth pair, spec.host_if here with spec.host_ip/spec.prefix,
    spec.container_if in the network namespace of ``pid`` with spec.container_ip/spec.prefix;
    both ends up, and the container's lo too."""
    # TODO Step 4: lab 08's step 1, without the bridge: the host's end gets the address.
    raise NotImplementedError("Step 4: connect_network() is not written yet")


def drop_capabilities(spec: ContainerSpec) -> None:
    """Step 5: in PID 1, after the mounts: every capability not in spec.keep out of the
    bounding set; then effective = permitted = spec.keep, inheritable empty (capset(2))."""
    # TODO Step 5: your lab 09 drop_bounding_set and set_capabilities.
    raise NotImplementedError("Step 5: drop_capabilities() is not written yet")


def install_seccomp(spec: ContainerSpec) -> None:
    """Step 6: in PID 1, the very last step before exec: no_new_privs, then a filter that
    kills a call from another architecture than spec.arch, refuses system call
    spec.blocked_nr with EPERM, and allows the rest."""
    # TODO Step 6: your lab 09 build_filter and install_filter.
    raise NotImplementedError("Step 6: install_seccomp() is not written yet")
