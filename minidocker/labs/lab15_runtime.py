"""Checker of lab 15 — the capstone: one ``run(spec, argv)`` that makes a whole container.

The student assembles labs 01-09 into one runtime: new namespaces with a hostname and PID 1, an
overlay root over the busybox image entered with pivot_root, a pids limit in a cgroup, a veth
with an address, a reduced capability set and a one-rule seccomp filter. Each step runs the
student's ``run`` with busybox's ``sh`` and a *probe* script that reports, from inside, what the
container sees: its hostname, ``$$``, its ``/`` in mountinfo, ``/proc/self/cgroup`` and how many
processes it could fork, its addresses and a ping, ``CapEff`` and ``CapBnd``, whether ``mkdir``
and ``chown`` are refused. The steps are cumulative, as rubber-docker's levels are: step N runs
the whole ``run``, and checks what step N adds.

The sandbox (sandbox.py) plays the host; each step also moves it into a network namespace of its
own first, so that the veth lives and dies there. The cgroup parent is the checker's, made once
per check in the pids hierarchy and removed with everything below it (as lab 03's).

Man pages: namespaces(7) pivot_root(2) overlayfs (kernel docs filesystems/overlayfs.rst)
cgroups(7) veth(4) ip-link(8) capabilities(7) seccomp(2) proc(5).
Used by: ``minidocker lab check 15``; the lab is labs/15-runtime/.
"""

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from minidocker import kernel
from minidocker.image.store import single_layer_dir
from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.given import ContainerSpec
from minidocker.labs.lab03_cgroups import enable_controller, find_hierarchies, remove_tree
from minidocker.labs.lab09_security import AUDIT_ARCH, BLOCKED, KEEP, mask, shown
from minidocker.labs.sandbox import (
    CheckFailed,
    CommandRun,
    HostView,
    capture_output,
    expect_host_unchanged,
    mount_scratch,
    write_file,
)
from minidocker.security import syscalls

HOSTNAME = "lab15"
EXIT_CODE = 7  # every probe that gets to its end exits with it
PIDS_LIMIT = 8
FORKS_TRIED = 16  # the probe's fork loop: more than PIDS_LIMIT allows
HOST_IF, CONTAINER_IF = "veth0", "eth0"
HOST_IP, CONTAINER_IP, PREFIX = "10.0.0.1", "10.0.0.2", 24
SH = "/bin/sh"
MARKER = "host-only-marker"  # a file beside the container's state, that only the host reaches

# One probe per step; each prints tagged lines ("pid 1") that the checker reads back.
PROBES = {
    1: 'echo "hostname $(hostname)"; echo "pid $$"; '
       'for ns in uts ipc mnt net pid; do echo "ns-$ns $(readlink /proc/self/ns/$ns)"; done',
    2: 'awk \'$5 == "/" { print "rootmount " $0 }\' /proc/self/mountinfo; '
       'echo "entries" $(ls -A /); '
       'if [ /proc/self -ef /proc/$$ ]; then echo "proc own"; else echo "proc other"; fi',
    3: 'sed "s/^/cgroup /" /proc/self/cgroup; '
       f'i=0; while [ $i -lt {FORKS_TRIED} ]; do sleep 5 & i=$((i+1)); echo "started $!"; '
       'done 2>/dev/null',
    4: 'ip -o -4 addr show | sed "s/^/addr /"; '
       f'if ping -c1 -W2 {HOST_IP} >/dev/null 2>&1; then echo "ping ok"; '
       'else echo "ping failed"; fi',
    5: 'grep -E "^Cap(Eff|Prm|Bnd):" /proc/self/status | sed "s/:[[:space:]]*/ /"; '
       'touch /lab15-file; if chown 1000 /lab15-file 2>/dev/null; then echo "chown ok"; '
       'else echo "chown refused"; fi',
    6: 'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status | sed "s/:[[:space:]]*/ /"; '
       'echo "mkdir $(mkdir /lab15-dir 2>&1 && echo ok)"; '
       'echo "touch $(touch /lab15-other 2>&1 && echo ok)"',
}


@dataclass
class Workspace:
    """Made on the host side, once per check: the image, a scratch directory, the cgroup
    parent (in the pids hierarchy), all removed when the check ends."""

    image: str
    scratch: str
    hierarchy: Path  # where the pids controller is mounted
    parent: Path  # the checker's cgroup, under which the container's goes


@contextmanager
def workspace() -> Iterator[Workspace]:
    image = str(single_layer_dir("busybox"))
    version, hierarchies = find_hierarchies()
    hierarchy = hierarchies["pids"]
    parent = hierarchy / f"minidocker-lab15-{os.getpid()}"
    scratch = tempfile.mkdtemp(prefix="minidocker-lab15-")
    try:
        if version == "v2":  # the root passes the controller down to our parent
            enable_controller(hierarchy, "pids")
        parent.mkdir(exist_ok=True)
        yield Workspace(image, scratch, hierarchy, parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        remove_tree(parent)


def spec_for(space: Workspace, step: int) -> ContainerSpec:
    """This step's container: its state in a tmpfs on the scratch directory (mounted in the
    sandbox, so gone with it), beside a marker that only the host can reach."""
    mount_scratch(space.scratch)
    write_file(os.path.join(space.scratch, MARKER), "only the host can read this\n")
    state = os.path.join(space.scratch, "container")
    os.mkdir(state)
    return ContainerSpec(
        hostname=HOSTNAME, image=space.image, state=state, cgroup_parent=str(space.parent),
        cgroup_name=f"step{step}", pids_limit=PIDS_LIMIT, host_if=HOST_IF,
        container_if=CONTAINER_IF, host_ip=HOST_IP, container_ip=CONTAINER_IP, prefix=PREFIX,
        keep=KEEP, blocked_nr=syscalls.number(syscalls.NATIVE, BLOCKED),
        arch=AUDIT_ARCH.get(syscalls.NATIVE, 0))


def run_probe(student, space: Workspace, step: int) -> tuple[CommandRun, HostView]:
    """Run the student's ``run`` on this step's probe, in a sandbox that has a network
    namespace of its own; the host must be unchanged afterwards. A stub reached in the
    container (its NotImplementedError, on stderr) makes the step a TODO."""
    kernel.unshare(kernel.CLONE_NEWNET)  # the veth is made here, and goes with the sandbox
    spec = spec_for(space, step)
    before = HostView.now()
    probe = f"{PROBES[step]}; exit {EXIT_CODE}"
    run = capture_output(function(student, "run"), spec, [SH, "-c", probe])
    stub = re.search(r"NotImplementedError: (Step \d+: .*?)(?: \(\S+ line \d+\))?"
                     r"(?:; the checker stopped it)?$", run.stderr, re.MULTILINE)
    if stub:
        raise NotImplementedError(stub.group(1))
    expect_host_unchanged(before)
    return run, before


def lines(run: CommandRun, tag: str) -> list[str]:
    """The values of every line the probe tagged ``tag``."""
    return [line.split(" ", 1)[1] if " " in line else "" for line in run.stdout.splitlines()
            if line.split(" ", 1)[0] == tag]


# --- step 1: namespaces, a hostname, PID 1 --------------------------------------------------------

def check_namespaces(student, space: Workspace) -> str:
    run, host = run_probe(student, space, 1)
    seen = run.said()
    if run.returned != EXIT_CODE and not seen:
        raise CheckFailed(f"run() returned {run.returned!r} and the command printed nothing: "
                          f"fork, and exec argv in the child{run.stderr_hint()}")
    if seen.get("hostname") != HOSTNAME:
        raise CheckFailed(f"the command says its hostname is {seen.get('hostname')!r}, not "
                          f"{HOSTNAME!r}: sethostname(spec.hostname) in the new UTS namespace"
                          f"{run.stderr_hint()}")
    if seen.get("pid") != "1":
        raise CheckFailed(f"the command says its PID ($$) is {seen.get('pid')}, not 1: "
                          "unshare(CLONE_NEWPID) affects the *next* child; fork once more")
    shared = [kind for kind in ("uts", "ipc", "mnt", "net", "pid")
              if seen.get(f"ns-{kind}") == host.namespaces[kind]]
    if shared:
        raise CheckFailed(f"the command still shares the host's {', '.join(shared)} namespace"
                          f"{'s' if len(shared) > 1 else ''}: unshare CLONE_NEW"
                          f"{' | CLONE_NEW'.join(k.upper() for k in shared)} too")
    if run.returned != EXIT_CODE:
        raise CheckFailed(f"run() returned {run.returned!r}, but the command exits with "
                          f"{EXIT_CODE}: return its exit code (wait_for(pid))")
    return (f"inside: hostname {HOSTNAME!r}, $$ = 1, and its own uts, ipc, mnt, net and pid "
            f"namespaces; run() returned the command's exit code {EXIT_CODE}")


# --- step 2: an overlay root, pivot_root, /proc --------------------------------------------------

def check_root(student, space: Workspace) -> str:
    run, _host = run_probe(student, space, 2)
    seen = run.said()
    root = (lines(run, "rootmount") or [""])[-1]  # the last mount on / is the one seen
    fstype, _, tail = root.partition(" - ")[2].partition(" ")
    if not root:
        raise CheckFailed(f"the command's mountinfo has no line for /{run.stderr_hint()}")
    if fstype != "overlay":
        raise CheckFailed(f"the command's / is a {fstype} mount, not an overlay: mount an "
                          "overlay (lowerdir=spec.image, upper and work in spec.state) and "
                          "pivot_root into it")
    upper = os.path.join(space.scratch, "container")
    if f"upperdir={upper}" not in tail:
        raise CheckFailed(f"the overlay on / has no upper dir in spec.state ({upper}): its "
                          f"options are {tail.split()[-1]}")
    entries = seen.get("entries", "").split()
    if MARKER in entries or "bin" not in entries:
        raise CheckFailed(f"/ holds {' '.join(entries[:10])}: it should hold the image's files "
                          "only")
    if seen.get("proc") != "own":
        raise CheckFailed("the command's /proc is not a procfs of its own PID namespace: mount "
                          "a fresh proc on /proc after pivot_root")
    return (f"/ is an overlay (lower: the image, upper in spec.state) holding {' '.join(entries)}"
            "; /proc is the container's own; the host's mount table is unchanged")


# --- step 3: a cgroup with a pids limit -----------------------------------------------------------

def pids_cgroup(proc_self_cgroup: list[str]) -> str | None:
    """The pids controller's cgroup in ``/proc/self/cgroup`` lines (cgroups(7)): the v1 line
    that names pids, else the v2 line ``0::PATH``."""
    fields = [line.split(":", 2) for line in proc_self_cgroup if line.count(":") >= 2]
    for _, controllers, path in fields:
        if "pids" in controllers.split(","):
            return path
    return next((path for hierarchy, _, path in fields if hierarchy == "0"), None)


def check_cgroup(student, space: Workspace) -> str:
    run, _host = run_probe(student, space, 3)
    wanted = "/" + str((space.parent / "step3").relative_to(space.hierarchy))
    pids_path = pids_cgroup(lines(run, "cgroup"))
    if pids_path != wanted:
        raise CheckFailed(f"the command is in the cgroup {pids_path!r} of the pids controller, "
                          f"not {wanted!r}: make spec.cgroup_parent/spec.cgroup_name, and "
                          "write the PID of a process of the container into its cgroup.procs "
                          "before the command starts (its children inherit it)"
                          f"{run.stderr_hint()}")
    # $! is the last background PID: a fork that failed leaves it as it was (ash goes on).
    started = len({pid for pid in lines(run, "started") if pid.isdigit()})
    if started >= FORKS_TRIED:
        raise CheckFailed(f"the command forked {started} sleeps, and none was refused: write "
                          f"spec.pids_limit ({PIDS_LIMIT}) into pids.max")
    return (f"inside, /proc/self/cgroup says {wanted}; a fork loop stopped after {started} "
            f"sleeps: fork() failed at pids.max = {PIDS_LIMIT}")


# --- step 4: a veth with an address ---------------------------------------------------------------

def check_network(student, space: Workspace) -> str:
    run, _host = run_probe(student, space, 4)
    addresses = lines(run, "addr")
    wanted = f"{CONTAINER_IP}/{PREFIX}"
    if not any(CONTAINER_IF in a.split()[1:2] and wanted in a.split() for a in addresses):
        shown_addresses = "; ".join(" ".join(a.split()[1:4]) for a in addresses) or "none"
        raise CheckFailed(f"inside, the IPv4 addresses are: {shown_addresses}; {CONTAINER_IF} "
                          f"should have {wanted}: make a veth pair, move {CONTAINER_IF} into the "
                          "container's network namespace, give it the address and bring it up"
                          f"{run.stderr_hint()}")
    if lines(run, "ping") != ["ok"]:
        raise CheckFailed(f"the container cannot ping the host end ({HOST_IP}): give "
                          f"{HOST_IF} {HOST_IP}/{PREFIX} and bring both ends up, before the "
                          "command starts")
    return (f"inside, {CONTAINER_IF} has {wanted}, and the container pings the host's end "
            f"({HOST_IP})")


# --- step 5: capabilities ------------------------------------------------------------------------

def check_capabilities(student, space: Workspace) -> str:
    run, _host = run_probe(student, space, 5)
    seen = run.said()
    try:
        sets = {name: int(seen[name], 16) for name in ("CapEff", "CapPrm", "CapBnd")}
    except (KeyError, ValueError):
        raise CheckFailed(f"the command could not read its capability sets"
                          f"{run.stderr_hint()}") from None
    if sets["CapBnd"] != mask(KEEP):
        raise CheckFailed(f"CapBnd is {sets['CapBnd']:016x}, not {mask(KEEP):016x}: drop every "
                          "capability not in spec.keep from the bounding set (else exec gives "
                          f"root them back); extra: {shown(sets['CapBnd'] & ~mask(KEEP))}")
    if sets["CapEff"] != mask(KEEP) or sets["CapPrm"] != mask(KEEP):
        raise CheckFailed(f"CapEff is {sets['CapEff']:016x} and CapPrm {sets['CapPrm']:016x}, "
                          f"not {mask(KEEP):016x}: capset effective = permitted = spec.keep")
    if lines(run, "chown") != ["refused"]:
        raise CheckFailed("chown worked inside: CAP_CHOWN is not in spec.keep")
    return (f"inside, CapEff = CapPrm = CapBnd = {mask(KEEP):016x} (Docker's set without "
            "CHOWN); chown is refused")


# --- step 6: seccomp ------------------------------------------------------------------------------

def check_seccomp(student, space: Workspace) -> str:
    run, _host = run_probe(student, space, 6)
    seen = run.said()
    if seen.get("Seccomp") != "2":
        raise CheckFailed(f"Seccomp is {seen.get('Seccomp')!r} inside, not 2: install your "
                          "filter (no_new_privs first) as the last step before exec"
                          f"{run.stderr_hint()}")
    if "Operation not permitted" not in seen.get("mkdir", ""):
        raise CheckFailed(f"mkdir inside said {seen.get('mkdir')!r}: the filter should refuse "
                          f"{BLOCKED} (nr {syscalls.number(syscalls.NATIVE, BLOCKED)}) with "
                          "EPERM")
    if seen.get("touch") != "ok":
        raise CheckFailed(f"creating a file inside said {seen.get('touch')!r}: only {BLOCKED} "
                          "should be refused")
    return (f"inside, NoNewPrivs {seen.get('NoNewPrivs')}, Seccomp 2; mkdir -> 'Operation not "
            "permitted', creating a file works")


LAB = Lab(
    directory="15-runtime",
    steps=(
        Step(1, "namespaces: a hostname, PID 1, its own uts, ipc, mnt, net, pid", check_namespaces),
        Step(2, "an overlay root over the image, pivot_root, a fresh /proc", check_root),
        Step(3, "a cgroup with a pids limit, joined before the command starts", check_cgroup),
        Step(4, "a veth: the container's eth0 with its address, pinging the host", check_network),
        Step(5, "capabilities: the bounding set and capset, chown refused", check_capabilities),
        Step(6, "seccomp: mkdir refused, the rest works", check_seccomp),
    ),
    cumulative=True,
    workspace=workspace,
)
