"""Checker of lab 01 — namespaces: a command that sees its own hostname, PIDs and /proc.

The student writes three functions that each run a command in new namespaces and return its
exit code. The checker hands each one a small shell script (a *probe*) as the command. The probe
prints what it sees from inside, one tagged line each (``hostname box``, ``pid 1``), and exits
with 7. The checker then compares with the host, which is the sandbox here (sandbox.py):
its hostname, its namespaces and its mount table must be what they were before.

Man pages: namespaces(7) uts_namespaces(7) pid_namespaces(7) mount_namespaces(7) proc(5)
unshare(2) sethostname(2) mount(2) fork(2) wait(2).
Used by: ``minidocker lab check 01``; the lab is labs/01-namespaces/.
"""

from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.sandbox import (
    CheckFailed,
    CommandRun,
    HostView,
    capture_output,
    expect_host_unchanged,
)

HOSTNAME = "lab01-box"
EXIT_CODE = 7  # every probe exits with it: the function must hand it back
SH = "/bin/sh"
PROBE_HOSTNAME = [SH, "-c", 'echo "hostname $(uname -n)"; '
                            'echo "uts $(readlink /proc/self/ns/uts)"; exit 7']
PROBE_PID = [SH, "-c", 'echo "pid $$"; exit 7']
# "[ A -ef B ]" is true when A and B are the same file: /proc/self is the reader's own entry,
# /proc/$$ the entry of the process whose PID (in its own namespace) is $$. They are the same
# only if this /proc counts PIDs the way the command's PID namespace does.
PROBE_PROC = [SH, "-c", 'echo "pid $$"; echo "processes" /proc/[0-9]*; '
                        'if [ /proc/self -ef /proc/$$ ]; then echo "proc own"; '
                        'else echo "proc other"; fi; exit 7']


def run_probe(student, name: str, *args) -> tuple[CommandRun, HostView]:
    """Call the student's function ``name`` with the probe, then make sure that it returned
    the probe's exit code and that the host did not change. Returns what the probe printed."""
    run_command = function(student, name)
    before = HostView.now()
    run = capture_output(run_command, *args)
    expect_host_unchanged(before)
    if run.returned != EXIT_CODE:
        raise CheckFailed(_wrong_exit_code(name, run))
    return run, before


def _wrong_exit_code(name: str, run: CommandRun) -> str:
    if run.returned is None:
        return (f"{name}() returned None: return the command's exit code ({EXIT_CODE} here), "
                "as wait_for(pid) gives it")
    if run.returned == EXIT_CODE << 8:
        return (f"{name}() returned {run.returned}, a raw wait status: turn it into an exit "
                "code with os.waitstatus_to_exitcode() (or use wait_for(pid))")
    return f"{name}() returned {run.returned!r}, but the command exits with {EXIT_CODE}" \
           f"{run.stderr_hint()}"


def check_hostname(student, _workspace) -> str:
    run, host = run_probe(student, "run_with_hostname", HOSTNAME, PROBE_HOSTNAME)
    seen = run.said()
    if seen.get("hostname") != HOSTNAME:
        raise CheckFailed(f"the command says its hostname is {seen.get('hostname')!r}, not "
                          f"{HOSTNAME!r}: set it in the child, after unshare and before exec"
                          f"{run.stderr_hint()}")
    if seen.get("uts") == host.namespaces["uts"]:
        raise CheckFailed(f"the command is still in the host's UTS namespace ({seen['uts']})")
    return (f"inside: hostname {HOSTNAME!r} in {seen['uts']}; the host kept "
            f"{host.hostname!r} in {host.namespaces['uts']}")


def check_pid_one(student, _workspace) -> str:
    run, host = run_probe(student, "run_as_pid1", PROBE_PID)
    pid = run.said().get("pid")
    if pid != "1":
        raise CheckFailed(f"the command says its PID ($$) is {pid}, not 1: unshare("
                          "CLONE_NEWPID) moves only the caller's *next children* into the new "
                          "namespace, so fork once more after it and exec in that child"
                          f"{run.stderr_hint()}")
    return (f"the command says $$ = 1: it is PID 1 of a new PID namespace; the host stays "
            f"in {host.namespaces['pid']}")


def check_own_proc(student, _workspace) -> str:
    run, _host = run_probe(student, "run_with_own_proc", PROBE_PROC)
    seen = run.said()
    if seen.get("pid") != "1":
        raise CheckFailed(f"the command says its PID is {seen.get('pid')}, not 1: as in step "
                          "2, the command must be PID 1 of a new PID namespace"
                          f"{run.stderr_hint()}")
    if seen.get("proc") != "own":
        shown = " ".join(seen.get("processes", "").split()[:6])
        raise CheckFailed(f"the command's /proc is not its own (it lists {shown} ...): mount a "
                          "fresh proc on /proc from *inside* the new PID namespace (a procfs "
                          "shows the PID namespace of the process that mounts it)")
    return (f"/proc inside lists {seen['processes']}: ps would show the command alone; the "
            "host's mount table is unchanged")


LAB = Lab(
    directory="01-namespaces",
    steps=(
        Step(1, "a command in a new UTS namespace, with its own hostname", check_hostname),
        Step(2, "a command that is PID 1 of a new PID namespace", check_pid_one),
        Step(3, "a new mount namespace with its own /proc", check_own_proc),
    ),
)
