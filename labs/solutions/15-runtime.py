"""Lab 15 — the capstone: a reference solution (spoilers: try the lab first).

One ``run(spec, argv)`` made of the pieces of labs 01-09, in the order runc's parent and child
do them. The parent forks a child that unshares its namespaces and says "ready"; the parent
puts that child in the cgroup and wires its network namespace, then says "go"; the child forks
the container's PID 1, which builds its root, drops its privileges and execs the command.

Check it: sudo minidocker lab check 15 labs/solutions/15-runtime.py
"""

import ctypes
import errno
import os
import struct
import subprocess
import time

from minidocker import kernel
from minidocker.labs.given import ContainerSpec, exec_command, wait_for

NAMESPACES = (kernel.CLONE_NEWUTS | kernel.CLONE_NEWPID | kernel.CLONE_NEWNS
              | kernel.CLONE_NEWIPC | kernel.CLONE_NEWNET)
libc = ctypes.CDLL(None, use_errno=True)


# --- given: run a command on the host, or inside the container's network namespace -----------

def sh(*argv: str) -> None:
    """Run a command (``ip``, ``nsenter``) on the host; raise if it fails."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def in_netns(pid: int, *argv: str) -> None:
    """Run a command inside the network namespace of process ``pid`` (nsenter does setns)."""
    sh("nsenter", f"--net=/proc/{pid}/ns/net", *argv)


# --- the runtime ----------------------------------------------------------------------------------

def run(spec: ContainerSpec, argv: list[str]) -> int:
    """Run ``argv`` in a container made to ``spec``; return its exit code."""
    ready_r, ready_w = os.pipe()  # child -> parent: my namespaces exist
    go_r, go_w = os.pipe()  # parent -> child: your cgroup and network are ready
    child = os.fork()
    if child == 0:
        os.close(ready_r)
        os.close(go_w)
        kernel.unshare(NAMESPACES)  # Step 1: we are in the new ones; our next child is PID 1
        os.write(ready_w, b"x")
        if os.read(go_r, 1) != b"x":  # the parent failed: do not start the container
            os._exit(125)
        init = os.fork()
        if init == 0:
            container_init(spec, argv)
        os._exit(wait_for(init))
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"x":  # the child died before it had its namespaces
            return wait_for(child)
        join_cgroup(spec, child)  # Step 3: the child's children (PID 1) inherit it
        connect_network(spec, child)  # Step 4
        os.write(go_w, b"x")
    finally:
        os.close(ready_r)
        os.close(go_w)
    code = wait_for(child)
    remove_cgroup(spec)
    return code


def container_init(spec: ContainerSpec, argv: list[str]) -> None:
    """The container's PID 1, before exec: the story of labs 01, 02 and 09."""
    kernel.sethostname(spec.hostname)  # Step 1
    enter_root(spec)  # Step 2
    drop_capabilities(spec)  # Step 5: after the mounts, which need CAP_SYS_ADMIN
    install_seccomp(spec)  # Step 6: the very last, so that nothing above is filtered
    exec_command(argv)


# --- step 2: the root (labs 01, 02, 04) -----------------------------------------------------------

def enter_root(spec: ContainerSpec) -> None:
    """Step 2: an overlay of the image in spec.state, pivot_root into it, a fresh /proc."""
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)  # nothing back to the host
    upper, work, merged = (os.path.join(spec.state, name) for name in ("upper", "work", "merged"))
    for directory in (upper, work, merged):
        os.makedirs(directory, exist_ok=True)
    kernel.mount("overlay", merged, "overlay", 0,
                 f"lowerdir={spec.image},upperdir={upper},workdir={work}")
    put_old = os.path.join(merged, ".oldroot")
    os.makedirs(put_old, exist_ok=True)
    kernel.pivot_root(merged, put_old)  # merged is a mount point: the overlay
    os.chdir("/")
    kernel.umount2("/.oldroot", kernel.MNT_DETACH)
    os.rmdir("/.oldroot")
    kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)


# --- step 3: the cgroup (lab 03) ----------------------------------------------------------------

def join_cgroup(spec: ContainerSpec, pid: int) -> None:
    """Step 3: the cgroup spec.cgroup_name under spec.cgroup_parent, with pids.max, and the
    process ``pid`` in it."""
    parent = spec.cgroup_parent
    subtree_control = os.path.join(parent, "cgroup.subtree_control")
    if os.path.exists(subtree_control):  # v2: a child gets only what its parent passes down
        with open(subtree_control, "w") as f:
            f.write("+pids")
    cgroup = os.path.join(parent, spec.cgroup_name)
    os.makedirs(cgroup, exist_ok=True)
    with open(os.path.join(cgroup, "pids.max"), "w") as f:
        f.write(str(spec.pids_limit))
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(pid))


def remove_cgroup(spec: ContainerSpec) -> None:
    """After the container: its processes are gone once PID 1 is; rmdir the cgroup (EBUSY
    while the last of them is still exiting)."""
    cgroup = os.path.join(spec.cgroup_parent, spec.cgroup_name)
    for _ in range(100):
        try:
            os.rmdir(cgroup)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.01)


# --- step 4: the network (lab 08) -----------------------------------------------------------------

def connect_network(spec: ContainerSpec, pid: int) -> None:
    """Step 4: a veth pair, spec.host_if here and spec.container_if in the network namespace
    of ``pid``, each with its address, all up."""
    sh("ip", "link", "add", spec.host_if, "type", "veth", "peer", "name", spec.container_if,
       "netns", str(pid))
    sh("ip", "addr", "add", f"{spec.host_ip}/{spec.prefix}", "dev", spec.host_if)
    sh("ip", "link", "set", spec.host_if, "up")
    in_netns(pid, "ip", "addr", "add", f"{spec.container_ip}/{spec.prefix}", "dev",
             spec.container_if)
    in_netns(pid, "ip", "link", "set", spec.container_if, "up")
    in_netns(pid, "ip", "link", "set", "lo", "up")


# --- step 5: capabilities (lab 09) ----------------------------------------------------------------

LINUX_CAPABILITY_VERSION_3 = 0x20080522


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities(spec: ContainerSpec) -> None:
    """Step 5: the bounding set, then effective = permitted = spec.keep."""
    with open("/proc/sys/kernel/cap_last_cap") as f:  # the container's /proc, mounted above
        last = int(f.read())
    for number in range(last + 1):
        if number not in spec.keep:
            kernel.prctl(kernel.PR_CAPBSET_DROP, number)
    mask = sum(1 << number for number in spec.keep)
    data = (CapData * 2)()
    for word in (0, 1):
        data[word].effective = data[word].permitted = (mask >> (32 * word)) & 0xFFFFFFFF
    if libc.capset(ctypes.byref(CapHeader(LINUX_CAPABILITY_VERSION_3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


# --- step 6: seccomp (lab 09) ---------------------------------------------------------------------

class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def install_seccomp(spec: ContainerSpec) -> None:
    """Step 6: no_new_privs, then a filter: EPERM for spec.blocked_nr, ALLOW the rest, KILL a
    call from another architecture."""
    program = b"".join([
        instruction(0x20, 0, 0, 4),                                     # A = arch
        instruction(0x15, 1, 0, spec.arch),
        instruction(0x06, 0, 0, kernel.SECCOMP_RET_KILL_PROCESS),
        instruction(0x20, 0, 0, 0),                                     # A = nr
        instruction(0x15, 0, 1, spec.blocked_nr),
        instruction(0x06, 0, 0, kernel.SECCOMP_RET_ERRNO | errno.EPERM),
        instruction(0x06, 0, 0, kernel.SECCOMP_RET_ALLOW),
    ])
    kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
    code = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(code))
    kernel.prctl(kernel.PR_SET_SECCOMP, kernel.SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
