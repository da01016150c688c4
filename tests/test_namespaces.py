"""Stage 1: processes in any combination of namespaces, observed from inside and outside."""

import os
import signal

import pytest

from minidocker import namespaces
from minidocker.errors import MinidockerError


def captured(argv, kinds, **kw):
    """Run argv in new namespaces, return (exit code, stdout)."""
    read_fd, write_fd = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    process = namespaces.spawn(argv, kinds, stdio=namespaces.Stdio(null, write_fd, 2), **kw)
    os.close(write_fd)
    os.close(null)
    out = namespaces.read_all(read_fd).decode()
    return process.wait(), out


@pytest.mark.parametrize("kinds", [{"uts"}, {"pid"}, {"mnt", "ipc"}, {"net", "cgroup"},
                                   {"uts", "pid", "mnt", "ipc", "net", "cgroup"},
                                   {"user", "uts"}])
def test_a_process_gets_exactly_the_namespaces_asked_for(kinds):
    code, out = captured(["sh", "-c", "ls -l /proc/self/ns/ | awk '{print $9, $11}'"], kinds)
    assert code == 0
    inside = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    host = {k: f"{k}:[{v}]" for k, v in namespaces.namespaces_of("self").items()}
    for kind in namespaces.NAMESPACES:
        name = kind  # the type names are the /proc/<pid>/ns file names
        if kind == "pid":
            continue  # /proc/self is the host's /proc here (no new mount of proc): see below
        assert (inside[name] != host[kind]) == (kind in kinds), kind


def test_pid_namespace_makes_the_command_pid_1():
    assert captured(["sh", "-c", "echo $$"], {"pid"}) == (0, "1\n")


def test_uts_namespace_hostname_is_private():
    code, out = captured(["sh", "-c", "hostname inside && hostname"], {"uts"})
    assert (code, out) == (0, "inside\n")
    assert os.uname().nodename != "inside"


def test_user_namespace_maps_root_to_an_unprivileged_host_uid():
    code, out = captured(["sh", "-c", "id -u; cat /proc/self/uid_map"], {"user"})
    assert code == 0
    uid, mapping = out.splitlines()
    assert uid == "0"
    assert mapping.split() == ["0", "100000", "65536"]


def test_compare_and_join_a_running_process():
    process = namespaces.spawn(["sleep", "10"], {"uts", "ipc", "pid"},
                               setup=lambda: __import__("socket").sethostname("joined"))
    try:
        shared = namespaces.compare(process.pid, "self")
        assert shared == {"uts": False, "pid": False, "mnt": True, "ipc": False,
                          "net": True, "user": True, "cgroup": True}
        # the shim unshared the PID namespace and forked: the sleeper is PID 1 of a new one
        result = namespaces.enter(process.pid, ["hostname"], ["uts", "ipc"])
        assert (result.returncode, result.stdout) == (0, "joined\n")
    finally:
        process.signal(signal.SIGKILL)
        assert process.wait() == 128 + signal.SIGKILL


def test_signals_reach_pid_1_through_the_shim():
    read_fd, write_fd = os.pipe()
    script = "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done"
    process = namespaces.spawn(["sh", "-c", script], {"pid"},
                               stdio=namespaces.Stdio(0, write_fd, 2))
    os.close(write_fd)
    assert os.read(read_fd, 6) == b"ready\n"  # the trap is set: PID 1 now has a handler
    os.close(read_fd)
    os.kill(process.shim_pid, signal.SIGTERM)  # the shim passes it on to PID 1
    assert process.wait() == 42


def test_pid_1_without_a_handler_ignores_sigterm_but_not_sigkill():
    process = namespaces.spawn(["sleep", "5"], {"pid"})
    process.signal(signal.SIGTERM)  # no handler in PID 1: the kernel drops it
    with pytest.raises(ChildProcessError):
        pass_if_still_running(process)
    process.signal(signal.SIGKILL)
    assert process.wait() == 137


def pass_if_still_running(process):
    pid, _ = os.waitpid(process.shim_pid, os.WNOHANG)
    if pid == 0:
        raise ChildProcessError("still running, as expected")


def test_unknown_namespace_is_a_clear_error():
    with pytest.raises(MinidockerError, match="unknown namespace type 'time'"):
        namespaces.spawn(["true"], {"time"})


def test_exec_failure_reports_docker_exit_codes():
    with pytest.raises(namespaces.ExecFailed, match='"nosuch": executable file not found') as e:
        namespaces.spawn(["nosuch"], {"uts"})
    assert e.value.exit_code == 127
    with pytest.raises(namespaces.ExecFailed, match="permission denied") as e:
        namespaces.spawn(["/etc/passwd"], {"uts"})
    assert e.value.exit_code == 126
