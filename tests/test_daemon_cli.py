"""Stage 12: the real docker CLI (28.2, API 1.50) drives minidocker's daemon.

Each test runs ``docker ...`` with ``DOCKER_HOST=unix://<tmp>/md.sock`` against a daemon
started for this module, and checks what the CLI prints and what the engine shows (minidocker's
own ``ps``, the kernel's processes).
"""

import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import minidocker
from tests.daemon_helpers import DOCKER, running_daemon

pytestmark = pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")

PREFIX = "dmncli-"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), PREFIX) as running:
        yield running


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_version_and_info(daemon):
    out = ok(daemon.docker("version"))
    assert "Server: minidocker" in out and "API version:      1.50 (minimum version 1.24)" in out
    info = ok(daemon.docker("info", "--format", "{{.OSType}} {{.Driver}} {{.LoggingDriver}}"))
    assert info.strip() == "linux overlay2 json-file"


def test_run_rm_echo_hi(daemon):
    result = daemon.docker("run", "--rm", "busybox", "echo", "hi")
    assert ok(result) == "hi\n"
    assert "hi" not in result.stderr


def test_run_with_runtime_runc(daemon):
    """The Docker CLI's ``--runtime runc`` is HostConfig.Runtime: runc spawns the container."""
    result = daemon.docker("run", "--rm", "--runtime", "runc", "busybox", "sh", "-c",
                           "echo hi from $(hostname)")
    assert ok(result).startswith("hi from ")
    refused = daemon.docker("run", "--rm", "--runtime", "kata", "busybox", "true")
    assert refused.returncode == 125 and "unknown or invalid runtime name: kata" in refused.stderr


def test_run_with_cgroup_parent(daemon):
    """``--cgroup-parent`` is HostConfig.CgroupParent: the container's cgroup goes below it,
    ``rm -f`` takes the cgroup and leaves the parent (as dockerd does); a path out of the
    hierarchy is the engine's own refusal, a 400 in the CLI's words."""
    from minidocker.container.records import find

    parent, name = f"{PREFIX}parent-{os.getpid()}", f"{PREFIX}cgparent"
    ok(daemon.docker("run", "-d", "--name", name, "--cgroup-parent", f"/{parent}", "busybox",
                     "sleep", "30"))
    record = find(name)
    cgroup = record.cgroup()
    try:
        assert f"/{parent}/{record.Id}" in Path(f"/proc/{record.State['Pid']}/cgroup").read_text()
        assert all(d.parent.name == parent and d.is_dir() for d in cgroup.directories())
        shown = ok(daemon.docker("inspect", "-f", "{{.HostConfig.CgroupParent}}", name))
        assert shown.strip() == f"/{parent}"
        ok(daemon.docker("rm", "-f", name))
        assert not any(d.exists() for d in cgroup.directories())
    finally:
        daemon.docker("rm", "-f", name)
        for directory in {d.parent for d in cgroup.directories()}:
            directory.rmdir()
    refused = daemon.docker("run", "--rm", "--cgroup-parent", "../x", "busybox", "true")
    assert refused.returncode == 125 and "invalid --cgroup-parent '../x'" in refused.stderr
    with daemon.http() as http:
        answer = http.post("/containers/create", json={
            "Image": "busybox", "HostConfig": {"CgroupParent": "a/../../x"}})
    assert answer.status_code == 400 and answer.json()["message"].startswith(
        "invalid --cgroup-parent 'a/../../x': give a path of names below the cgroup root")


def test_run_rm_passes_the_exit_code_and_removes(daemon):
    name = f"{PREFIX}exit3"
    result = daemon.docker("run", "--rm", "--name", name, "busybox", "sh", "-c",
                           "echo out; echo err >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == "out\n" and "err\n" in result.stderr  # demultiplexed frames
    assert name not in minidocker("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_run_without_rm_waits_for_next_exit(daemon):
    name = f"{PREFIX}keep"
    result = daemon.docker("run", "--name", name, "busybox", "sh", "-c", "exit 5")
    assert result.returncode == 5
    out = ok(daemon.docker("ps", "-a", "--filter", f"name={name}", "--format",
                           "{{.Names}} {{.Status}}"))
    assert out.startswith(f"{name} Exited (5)")
    ok(daemon.docker("rm", name))


def test_detached_container_ps_logs_exec_stop_rm(daemon):
    name = f"{PREFIX}web"
    cid = ok(daemon.docker("run", "-d", "--name", name, "--label", "tier=web", "busybox", "sh",
                           "-c", "echo started; echo oops >&2; sleep 300")).strip()
    assert len(cid) == 64
    ps = ok(daemon.docker("ps", "--filter", "label=tier=web", "--format",
                          "{{.ID}} {{.Names}} {{.Status}}"))
    assert ps.startswith(f"{cid[:12]} {name} Up")
    assert name in minidocker("ps", "--format", "{{.Names}}").stdout  # the engine's own view
    deadline = time.monotonic() + 10
    while "started" not in daemon.docker("logs", name).stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = daemon.docker("logs", name)
    assert logs.stdout == "started\n" and logs.stderr == "oops\n"
    assert ok(daemon.docker("logs", "--tail", "1", "-t", name)) == ""  # the last is stderr
    result = daemon.docker("exec", name, "sh", "-c", "echo in-exec; cat /proc/1/cmdline; exit 4")
    assert result.returncode == 4 and result.stdout == "in-exec\nsleep\x00300\x00"  # its PID 1
    assert ok(daemon.docker("inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}}",
                            name)) == f"running /{name} busybox:latest\n"
    top = ok(daemon.docker("top", name))
    assert "sleep 300" in top
    ok(daemon.docker("stop", "-t", "1", name))
    assert ok(daemon.docker("inspect", "-f", "{{.State.Status}}", name)) == "exited\n"
    assert ok(daemon.docker("rm", name)).strip() == name
    assert daemon.docker("inspect", name).returncode == 1


def test_start_a_and_attach(daemon):
    late = f"{PREFIX}late"
    ok(daemon.docker("run", "-d", "--name", late, "busybox", "sh", "-c",
                     "sleep 3; echo late; exit 6"))  # time for the CLI to attach
    attached = daemon.docker("attach", "--no-stdin", late, timeout=20)
    assert (attached.returncode, attached.stdout) == (6, "late\n")
    once = f"{PREFIX}once"
    ok(daemon.docker("create", "--name", once, "busybox", "sh", "-c", "echo from-start; exit 2"))
    started = daemon.docker("start", "-a", once, timeout=20)
    assert (started.returncode, started.stdout) == (2, "from-start\n")
    ok(daemon.docker("rm", "-f", late, once))


def test_attach_after_logs_follow_and_start_a(daemon):
    """A hijacked stream that waits quietly must stay alive: asyncio keeps only weak
    references to tasks, and a collected one closed a socket number reused by the next."""
    counter, once, late = f"{PREFIX}x-counter", f"{PREFIX}x-once", f"{PREFIX}x-late"
    try:
        ok(daemon.docker("run", "-d", "--name", counter, "busybox", "sh", "-c", "echo 1"))
        daemon.docker("logs", "-f", counter, timeout=20)
        ok(daemon.docker("create", "--name", once, "busybox", "echo", "x"))
        daemon.docker("start", "-a", once, timeout=20)
        ok(daemon.docker("run", "-d", "--name", late, "busybox", "sh", "-c",
                         "sleep 3; echo late; exit 6"))
        attached = daemon.docker("attach", "--no-stdin", late, timeout=20)
        assert (attached.returncode, attached.stdout) == (6, "late\n")
    finally:
        daemon.docker("rm", "-f", counter, once, late)


def test_logs_follow_and_diff(daemon):
    name = f"{PREFIX}counter"
    ok(daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                     "for i in 1 2 3; do echo $i; sleep 0.3; done"))
    assert ok(daemon.docker("logs", "-f", name, timeout=20)) == "1\n2\n3\n"  # until it ends
    box = f"{PREFIX}diff"
    ok(daemon.docker("run", "-d", "--name", box, "busybox", "sleep", "300"))
    ok(daemon.docker("exec", "-d", box, "touch", "/tmp/made-by-exec"))
    deadline = time.monotonic() + 10
    while "made-by-exec" not in daemon.docker("diff", box).stdout:
        assert time.monotonic() < deadline, "exec -d did not run"
        time.sleep(0.1)
    assert ok(daemon.docker("diff", box)) == "C /tmp\nA /tmp/made-by-exec\n"
    ok(daemon.docker("rm", "-f", name, box))


def test_pause_restart_rename_kill(daemon):
    name = f"{PREFIX}moves"
    ok(daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    ok(daemon.docker("pause", name))
    assert ok(daemon.docker("inspect", "-f", "{{.State.Status}}", name)) == "paused\n"
    ok(daemon.docker("unpause", name))
    ok(daemon.docker("restart", "-t", "1", name))
    ok(daemon.docker("rename", name, f"{name}2"))
    ok(daemon.docker("kill", f"{name}2"))
    assert ok(daemon.docker("inspect", "-f", "{{.State.ExitCode}}", f"{name}2")) == "137\n"
    ok(daemon.docker("rm", "-f", f"{name}2"))


def test_images_tag_history_rmi(daemon):
    images = ok(daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}"))
    assert "busybox:latest" in images.split()
    ok(daemon.docker("tag", "busybox", f"{PREFIX}box:1"))
    assert f"{PREFIX}box:1" in ok(daemon.docker("images", "--format",
                                                "{{.Repository}}:{{.Tag}}"))
    assert "minidocker setup" in ok(daemon.docker("history", "--no-trunc", "busybox"))
    assert ok(daemon.docker("rmi", f"{PREFIX}box:1")) == f"Untagged: {PREFIX}box:1\n"
    missing = daemon.docker("image", "inspect", f"{PREFIX}box:1")
    assert missing.returncode == 1 and "No such image" in missing.stderr


def test_networks_and_volumes(daemon):
    net, vol = f"{PREFIX}net", f"{PREFIX}vol"
    net_id = ok(daemon.docker("network", "create", "--subnet", "10.77.0.0/24", net)).strip()
    assert net in ok(daemon.docker("network", "ls", "--format", "{{.Name}}")).split()
    assert ok(daemon.docker("network", "inspect", "-f",
                            "{{.Id}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", net)) \
        == f"{net_id} 10.77.0.0/24\n"
    more = f"{PREFIX}more"  # API 1.44+: a container created on two networks, a fixed address
    ok(daemon.docker("network", "create", "--subnet", "10.78.0.0/24", more))
    seen = ok(daemon.docker("run", "--rm", "--network", net, "--network",
                            f"name={more},ip=10.78.0.9", "busybox", "ip", "-o", "-4", "addr"))
    assert "eth1    inet 10.78.0.9/24" in seen, seen
    ok(daemon.docker("create", "--name", f"{PREFIX}joiner", "--network", net, "busybox"))
    refused = daemon.docker("network", "connect", "--ip", "10.79.0.9", more, f"{PREFIX}joiner")
    assert refused.returncode == 1 and "does not belong to any of this network's subnets" \
        in refused.stderr, refused.stderr
    ok(daemon.docker("rm", f"{PREFIX}joiner"))
    ok(daemon.docker("network", "rm", net, more))
    assert ok(daemon.docker("volume", "create", vol)) == f"{vol}\n"
    assert vol in ok(daemon.docker("volume", "ls", "--format", "{{.Name}}")).split()
    ok(daemon.docker("volume", "rm", vol))
    assert vol not in ok(daemon.docker("volume", "ls", "-q")).split()
    ok(daemon.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "--opt",
                     "o=size=1m", vol))  # DriverOpts: kept, shown as Options
    assert ok(daemon.docker("volume", "inspect", "-f", "{{json .Options}}", vol)) \
        == '{"device":"tmpfs","o":"size=1m","type":"tmpfs"}\n'
    ok(daemon.docker("volume", "rm", vol))
    refused = daemon.docker("volume", "create", "-o", "size=1m", vol)
    assert refused.returncode == 1 and 'invalid option: "size"' in refused.stderr


def test_errors_as_docker_prints_them(daemon):
    missing = daemon.docker("run", "--rm", "nosuchimage", "true")
    assert missing.returncode == 125 and "Unable to find image" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert "No such container" in daemon.docker("stop", f"{PREFIX}ghost").stderr
    name = f"{PREFIX}taken"
    ok(daemon.docker("create", "--name", name, "busybox", "true"))
    again = daemon.docker("create", "--name", name, "busybox", "true")
    assert again.returncode == 1 and "already in use" in again.stderr  # 409
    ok(daemon.docker("rm", name))


def test_run_it_through_a_real_pty(daemon):
    """``docker run -it``: the CLI puts the terminal in raw mode; the hijacked stream is raw
    (no frames); what we type reaches the shell and its exit code comes back."""
    pid, master = pty.fork()
    if pid == 0:
        os.execve(DOCKER, [DOCKER, "run", "--rm", "-it", "--name", f"{PREFIX}tty", "busybox",
                           "sh"], daemon.env)
    seen = b""

    def read_until(marker: bytes, timeout: float = 20) -> bytes:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        return seen

    try:
        assert b"# " in read_until(b"# ")  # the shell's prompt, through the container's pty
        os.write(master, b"echo hi-$((40+2)); exit 3\r")
        assert b"hi-42" in read_until(b"hi-42")
        read_until(b"\x00", timeout=5)  # drain until the CLI closes the terminal
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:  # a failure above: the CLI still waits; end its container
            daemon.docker("rm", "-f", f"{PREFIX}tty")
            _, status = os.waitpid(pid, 0)
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 3


def test_exec_it_through_a_real_pty(daemon):
    """``docker exec -it``: a second process with its own pty, raw over the hijacked stream."""
    name = f"{PREFIX}exec-tty"
    ok(daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    pid, master = pty.fork()
    if pid == 0:
        os.execve(DOCKER, [DOCKER, "exec", "-it", name, "sh"], daemon.env)
    seen = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
            if b"# " in seen and b"tty-is" not in seen:
                os.write(master, b"echo tty-is-$(tty); exit 5\r")
                seen += b"tty-is"  # typed once
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
        os.close(master)
        daemon.docker("rm", "-f", name)
    assert b"tty-is-/dev/pts/" in seen
    assert os.waitstatus_to_exitcode(status) == 5


def test_container_prune(daemon):
    name = f"{PREFIX}pruned"
    ok(daemon.docker("run", "--name", name, "--label", "pruned-here", "busybox", "sh", "-c",
                     "head -c 100000 /dev/zero > /written"))
    pruned = ok(daemon.docker("container", "prune", "-f", "--filter", "label=pruned-here"))
    assert name not in pruned  # IDs are listed
    assert pruned.endswith("Total reclaimed space: 100kB\n")  # its writable layer
    assert daemon.docker("inspect", name).returncode == 1


def test_stopping_the_daemon_loses_nothing(tmp_path):
    """Containers run under their own monitors: the daemon stops, they go on, a new daemon
    serves them again."""
    name = f"{PREFIX}survivor"
    with running_daemon(tmp_path, PREFIX) as first:
        ok(first.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
        first.stop()
        assert not first.socket.exists()  # removed on the way out
        assert name in minidocker("ps", "--format", "{{.Names}}").stdout
        second = first.start()
        assert ok(second.docker("ps", "--format", "{{.Names}} {{.State}}")) \
            == f"{name} running\n"
        ok(second.docker("rm", "-f", name))


def test_socket_is_root_only_and_tcp_is_refused(daemon, tmp_path):
    mode = daemon.socket.stat()
    assert oct(mode.st_mode & 0o777) == "0o600" and mode.st_uid == 0
    tcp = subprocess.run([*daemon.argv[:4], "--host", "tcp://127.0.0.1:2375"],
                         capture_output=True, text=True, timeout=30)
    assert tcp.returncode != 0 and "refusing to listen on TCP" in tcp.stderr
    assert "Traceback" not in tcp.stderr


def test_group_socket_mode(tmp_path):
    with running_daemon(tmp_path, PREFIX, "--group", "adm") as daemon:
        st = daemon.socket.stat()
        assert oct(st.st_mode & 0o777) == "0o660" and st.st_gid == 4
