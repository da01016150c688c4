"""Stage 6, the lifecycle, on the real kernel: the states of a container and the commands that
move it (run -d, create, start, stop, kill, restart, pause, rm, prune), its log, attach and
exec, and how ``run`` combines its flags with the image's config. Each test asks the container
itself, or the kernel (cgroup files, /proc), rather than trusting the record."""

import json
import os
import pty
import re
import select
import subprocess
import threading
import time
from pathlib import Path

import pytest

from minidocker import cgroups, events
from minidocker.container import records
from minidocker.image.store import ImageStore

from .conftest import MINIDOCKER, TIMEOUT_SCALE
from .helpers import attached, eventually

LOOP = "while true; do sleep 0.1; done"  # a PID 1 that exits only when asked by a signal


def inspect(md, name: str, template: str) -> str:
    result = md("inspect", "-f", template, name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def container_id(name: str) -> str:
    return records.find(name).Id


def image_with(containers, tag: str, **config) -> str:
    """A copy of busybox whose image config has ``config`` (Entrypoint, Volumes, ...): for
    what ``commit --change`` cannot say. Removed at the end of the test."""
    store = ImageStore()
    base = store.get("busybox")
    image_config = json.loads(json.dumps(base.config))
    image_config["config"] = {**image_config.get("config", {}), **config}
    raw = json.dumps(image_config, sort_keys=True).encode()
    digest = store.blobs.put_bytes(raw)
    manifest = {**base.manifest, "config": {**base.manifest["config"], "digest": digest,
                                            "size": len(raw)}}
    store.add_manifest(manifest, tag)
    containers.images.append(tag)
    return tag


# --- states, ps ----------------------------------------------------------------------------------

AGO = r"(Less than a second|\d+ seconds?|About a minute|\d+ minutes)"  # an emulated VM is slow
STATUS_TEXT = {
    "created": r"Created",
    "running": rf"Up {AGO}",
    "paused": rf"Up {AGO} \(Paused\)",
    "restarting": rf"Restarting \(1\) {AGO} ago",
    "exited": rf"Exited \(3\) {AGO} ago",
}


def ps_rows(md, *flags: str) -> dict[str, dict[str, str]]:
    """``ps`` parsed by its header's column positions: {name: {column: value}}."""
    lines = md("ps", *flags).stdout.splitlines()
    header = lines[0]
    columns = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    starts = [header.index(c) for c in columns]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[-1]] = dict(zip(columns, cells, strict=True))
    return rows


def test_ps_shows_every_state_with_dockers_status_texts(md, containers):
    created = containers.name("created")
    assert md("create", "--name", created, "busybox", "true").returncode == 0
    running = containers.run_d("busybox", "sh", "-c", LOOP, label="running")
    paused = containers.run_d("busybox", "sh", "-c", LOOP, label="paused")
    assert md("pause", paused).stdout == f"{paused}\n"
    exited = containers.run_d("busybox", "sh", "-c", "exit 3", label="exited")
    restarting = containers.run_d("--restart", "always", "busybox", "sh", "-c", "exit 1",
                                  label="restarting")
    assert md("wait", exited).stdout == "3\n"
    names = {"created": created, "running": running, "paused": paused, "exited": exited,
             "restarting": restarting}

    # the back-off doubles, so the restarting one is soon "Restarting" most of the time
    rows = eventually(lambda: (r := ps_rows(md, "-a"))[restarting]["STATUS"].startswith(
        "Restarting") and r)
    for state, name in names.items():
        assert re.fullmatch(STATUS_TEXT[state], rows[name]["STATUS"]), (state, rows[name])
        assert rows[name]["IMAGE"] == "busybox:latest"
        assert rows[name]["CONTAINER ID"] == container_id(name)[:12]
        assert inspect(md, name, "{{.State.Status}}") in (state, "running")
    assert rows[running]["COMMAND"] == f'"sh -c {LOOP}"'[:20] + '…"'
    assert rows[created]["COMMAND"] == '"true"'
    assert re.fullmatch(rf"{AGO} ago", rows[running]["CREATED"])

    active = ps_rows(md)
    assert {running, paused} <= set(active) and not {created, exited} & set(active)
    quiet = md("ps", "-a", "-q").stdout.split()
    assert {container_id(n)[:12] for n in names.values()} <= set(quiet)
    assert all(re.fullmatch(r"[0-9a-f]{12}", line) for line in quiet)


def test_create_then_start_runs_the_command_once_started(md, containers):
    name = containers.name()
    assert md("create", "--name", name, "busybox", "sh", "-c", "echo started; exit 5"
              ).returncode == 0
    assert inspect(md, name, "{{.State.Status}}") == "created"
    assert md("logs", name).stdout == ""
    assert md("start", name).stdout == f"{name}\n"
    assert md("wait", name).stdout == "5\n"
    assert md("logs", name).stdout == "started\n"
    attached = md("start", "-a", name)  # -a: the output, and its exit code
    assert (attached.returncode, attached.stdout) == (5, "started\n")


def test_start_interactive_types_to_stdin(md, containers):
    name = containers.name()
    md("create", "-i", "--name", name, "busybox", "sh", "-c", "read line; echo got:$line")
    result = md("start", "-a", "-i", name, input="hello\n")
    assert (result.returncode, result.stdout) == (0, "got:hello\n")


# --- stop, kill, restart -------------------------------------------------------------------------

def timed(md, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    result = md(*args)
    return result, time.monotonic() - began


def stop_with_grace(md, name: str, *flags: str) -> tuple[subprocess.CompletedProcess, float]:
    """``stop`` the container; and the seconds from its signal (``stop``'s "kill" event) to
    PID 1's end, seen in /proc: the grace it was given, without the CLI's own start-up or the
    monitor's bookkeeping after (an emulated VM takes seconds over each)."""
    pid1 = records.find(name).State["Pid"]
    born, ended = records.start_time(pid1), []

    def watch() -> None:
        while records.start_time(pid1) == born:  # 0 once it is a zombie or gone
            time.sleep(0.005)
        ended.append(time.time_ns())
    watcher = threading.Thread(target=watch)
    watcher.start()
    result = md("stop", *flags, name)
    watcher.join()
    kill = next(e["timeNano"] for e in events.read()
                if e["Actor"]["ID"] == container_id(name) and e["Action"] == "kill")
    return result, (ended[0] - kill) / 1e9


def test_stop_a_container_that_traps_sigterm_is_quick(md, containers):
    name = containers.run_d("busybox", "sh", "-c", f"trap 'echo bye; exit 0' TERM; {LOOP}")
    time.sleep(0.3)  # let the shell install its trap
    result, grace = stop_with_grace(md, name, "-t", "10")
    assert result.stdout == f"{name}\n" and grace < 3  # it left on its SIGTERM, before 10 s
    assert inspect(md, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert md("logs", name).stdout == "bye\n"


def test_stop_a_container_that_ignores_sigterm_kills_it_after_the_timeout(md, containers):
    # PID 1 without a handler never gets SIGTERM (pid_namespaces(7)): 'sleep' ignores it too
    ignoring = containers.run_d("busybox", "sh", "-c", f"trap '' TERM; {LOOP}")
    result, grace = stop_with_grace(md, ignoring, "-t", "1")
    assert result.returncode == 0 and 1 <= grace < 10  # killed once its 1 s was over
    assert inspect(md, ignoring, "{{.State.ExitCode}}") == "137"
    assert not cgroups.for_container(container_id(ignoring)).exists()


def test_stop_timeout_flag_is_the_default_of_stop(md, containers):
    name = containers.run_d("--stop-timeout", "1", "busybox", "sleep", "100")
    assert inspect(md, name, "{{.Config.StopTimeout}}") == "1"
    result, grace = stop_with_grace(md, name)
    assert result.returncode == 0 and 1 <= grace < 10  # its own 1 s, not the default 10 s


def test_stop_signal_from_the_flag_and_from_the_image(md, containers):
    handler = f"trap 'exit 10' USR1; trap 'exit 15' TERM; {LOOP}"
    by_flag = containers.run_d("--stop-signal", "SIGUSR1", "busybox", "sh", "-c", handler)
    image = image_with(containers, "stopsignal:1", StopSignal="SIGUSR1")
    by_image = containers.run_d(image, "sh", "-c", handler)
    overridden = containers.run_d("--stop-signal", "TERM", image, "sh", "-c", handler)
    time.sleep(0.3)
    assert md("stop", by_flag, by_image, overridden).returncode == 0
    assert inspect(md, by_image, "{{.Config.StopSignal}}") == "SIGUSR1"
    assert inspect(md, by_flag, "{{.State.ExitCode}}") == "10"
    assert inspect(md, by_image, "{{.State.ExitCode}}") == "10"
    assert inspect(md, overridden, "{{.State.ExitCode}}") == "15"


def test_kill_sends_one_signal_and_restart_starts_again(md, containers):
    name = containers.run_d("busybox", "sh", "-c", f"trap 'echo usr1' USR1; {LOOP}")
    time.sleep(0.3)
    assert md("kill", "-s", "USR1", name).returncode == 0
    eventually(lambda: md("logs", name).stdout == "usr1\n")
    assert inspect(md, name, "{{.State.Status}}") == "running"
    first_pid = inspect(md, name, "{{.State.Pid}}")
    assert md("restart", "-t", "0", name).stdout == f"{name}\n"
    assert inspect(md, name, "{{.State.Status}}") == "running"
    assert inspect(md, name, "{{.State.Pid}}") != first_pid
    assert md("kill", name).stdout == f"{name}\n"
    assert inspect(md, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


# --- restart policies ----------------------------------------------------------------------------

def settled(md, name: str) -> str:
    """Status and restart count once the container has stayed exited for a while."""
    def quiet():
        first = inspect(md, name, "{{.State.Status}} {{.RestartCount}}")
        time.sleep(0.8)  # longer than the back-off of the first restarts
        second = inspect(md, name, "{{.State.Status}} {{.RestartCount}}")
        return first == second and first.startswith("exited") and first
    return eventually(quiet, timeout=15)


def test_restart_on_failure_with_a_maximum_restarts_exactly_that_often(md, containers):
    name = containers.run_d("--restart", "on-failure:2", "busybox", "sh", "-c",
                            "echo run; exit 3")
    assert settled(md, name) == "exited 2"
    assert md("logs", name).stdout == "run\n" * 3
    assert inspect(md, name, "{{.State.ExitCode}}") == "3"
    assert md("start", name).returncode == 0  # by hand: the count begins again
    assert settled(md, name) == "exited 2"
    assert md("logs", name).stdout == "run\n" * 6
    zero = containers.run_d("--restart", "on-failure:2", "busybox", "true")
    assert settled(md, zero) == "exited 0"  # success is not a failure


def test_restart_always_restarts_after_success_but_not_after_stop(md, containers):
    name = containers.run_d("--restart", "always", "busybox", "sh", "-c", "echo run; sleep 0.2")
    eventually(lambda: int(inspect(md, name, "{{.RestartCount}}")) >= 2)
    assert md("stop", "-t", "1", name).returncode == 0
    status, count = settled(md, name).split()
    assert status == "exited"
    time.sleep(1)
    assert inspect(md, name, "{{.RestartCount}}") == count
    assert "Exited" in ps_rows(md, "-a")[name]["STATUS"]


def test_restart_unless_stopped(md, containers):
    name = containers.run_d("--restart", "unless-stopped", "busybox", "sh", "-c", "sleep 0.2")
    eventually(lambda: int(inspect(md, name, "{{.RestartCount}}")) >= 1)
    assert inspect(md, name, "{{.HostConfig.RestartPolicy.Name}}") == "unless-stopped"
    md("stop", "-t", "0", name)
    assert settled(md, name).startswith("exited")
    assert md("start", name).returncode == 0  # started again by hand: the policy is back
    count = int(inspect(md, name, "{{.RestartCount}}"))
    eventually(lambda: int(inspect(md, name, "{{.RestartCount}}")) > count)
    md("stop", "-t", "0", name)


# --- exec and attach -----------------------------------------------------------------------------

def test_exec_sees_pid_1_and_the_hostname_and_joins_the_cgroup(md, containers):
    name = containers.run_d("-h", "box", "busybox", "sh", "-c", LOOP)
    inside = md("exec", name, "sh", "-c", "hostname; ps -o pid,comm")
    lines = inside.stdout.split("\n")
    assert lines[0] == "box"
    assert "1 sh" in [" ".join(line.split()) for line in lines]  # the container's PID 1

    sleeper = subprocess.Popen([*MINIDOCKER, "exec", name, "sleep", "3"])
    try:
        cgroup = cgroups.for_container(container_id(name))

        def cmdline(pid: int) -> bytes:
            try:
                return Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:  # a process that ended since the cgroup was read
                return b""

        def sleeping_in_cgroup():
            return [pid for pid in cgroup.pids() if cmdline(pid) == b"sleep\x003\x00"]
        assert eventually(sleeping_in_cgroup)  # the exec'd process counts in its cgroup
    finally:
        sleeper.wait(timeout=10 * TIMEOUT_SCALE)
    view = md("exec", name, "sh", "-c", "cat /proc/self/cgroup; echo; cat /proc/1/cgroup")
    mine, pid1s = view.stdout.split("\n\n")
    assert mine.strip() == pid1s.strip()


def test_exec_env_workdir_user_and_exit_code(md, containers):
    name = containers.run_d("-e", "FROM_RUN=1", "busybox", "sh", "-c", LOOP)
    result = md("exec", "-e", "EXTRA=2", "-w", "/tmp", "-u", "1000:1000", name, "sh", "-c",
                "echo $FROM_RUN $EXTRA $(pwd) $(id -u):$(id -g)")
    assert result.stdout == "1 2 /tmp 1000:1000\n"
    assert md("exec", name, "sh", "-c", "exit 7").returncode == 7
    assert md("exec", "-i", name, "cat", input="piped\n").stdout == "piped\n"


def test_attach_talks_to_pid_1_and_detaches_with_ctrl_p_ctrl_q(md, containers):
    name = containers.run_d("-i", "busybox", "sh", "-c",
                            'while read line; do echo "got $line from $$"; done')
    with attached(name) as client:
        time.sleep(0.5)  # connected
        client.stdin.write(b"hello\n")
        client.stdin.flush()
        assert client.stdout.readline() == b"got hello from 1\n"  # PID 1 answered
        for typed in (b"ctrl-p alone \x10", b" goes in\n"):  # held until the next key
            client.stdin.write(typed)
            client.stdin.flush()
            time.sleep(0.2)
        assert client.stdout.readline() == b"got ctrl-p alone \x10 goes in from 1\n"
        client.stdin.write(b"\x10\x11")  # Ctrl-P Ctrl-Q
        client.stdin.flush()
    assert inspect(md, name, "{{.State.Status}}") == "running"
    # exec starts a new process beside PID 1: its $$ is not 1, and PID 1 never hears of it
    beside = md("exec", name, "sh", "-c", "echo $$")
    assert beside.stdout.strip() not in ("", "1")
    assert md("logs", name).stdout.startswith("got hello from 1\n")


def test_attach_without_stdin_sees_output_and_ends_with_the_container(md, containers,
                                                                      tmp_path):
    # the container speaks only once the test says so (a file in a bind mount): attach, as
    # Docker's, shows what is written after it connected, and a busy machine is slow to connect
    name = containers.run_d("-v", f"{tmp_path}:/flag", "busybox", "sh", "-c",
                            "until [ -e /flag/go ]; do sleep 0.1; done; "
                            "for i in 1 2 3; do echo tick $i; sleep 0.1; done; exit 4")
    client = subprocess.Popen([*MINIDOCKER, "attach", "--no-stdin", name],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(3)  # connected
    (tmp_path / "go").touch()
    output, _ = client.communicate(timeout=60)
    assert (client.returncode, output) == (4, "tick 1\ntick 2\ntick 3\n")


def test_attach_with_a_terminal(md, containers):
    name = containers.run_d("-i", "-t", "busybox", "sh")
    master, slave = pty.openpty()
    client = subprocess.Popen([*MINIDOCKER, "attach", name], stdin=slave, stdout=slave,
                              stderr=slave, start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(text: bytes) -> bool:
        nonlocal seen
        deadline = time.monotonic() + 10
        while text not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
        return text in seen

    try:
        time.sleep(0.5)
        os.write(master, b"echo $((6*7))\r")
        assert read_until(b"42"), seen
        os.write(master, b"\x10\x11")
        assert client.wait(timeout=5 * TIMEOUT_SCALE) == 0
        assert read_until(b"read escape sequence")
    finally:
        client.kill()
        client.wait()
        os.close(master)
    assert inspect(md, name, "{{.State.Status}}") == "running"


# --- logs ----------------------------------------------------------------------------------------

def test_logs_follow_ends_when_the_container_stops(md, containers):
    name = containers.run_d("busybox", "sh", "-c",
                            "for i in 1 2 3 4; do echo out $i; echo err $i >&2; sleep 0.3; "
                            "done")
    result, took = timed(md, "logs", "-f", name)
    assert took > 0.5  # it followed: the container was still writing when it began
    assert result.stdout == "".join(f"out {i}\n" for i in range(1, 5))
    assert result.stderr == "".join(f"err {i}\n" for i in range(1, 5))


def test_logs_tail_and_timestamps(md, containers):
    name = containers.run_d("busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done")
    md("wait", name)
    assert md("logs", "--tail", "2", name).stdout == "4\n5\n"
    assert md("logs", "-n", "0", name).stdout == ""
    stamped = md("logs", "-t", "--tail", "1", name).stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00) 5\n", stamped)
    assert md("logs", "--tail", "x", name).stdout == "1\n2\n3\n4\n5\n"  # dockerd: all


def test_log_rotation_caps_the_size(md, containers):
    name = containers.run_d("--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox",
                            "sh", "-c", "for i in $(seq 1 500); do echo line $i; done")
    assert md("wait", name).stdout == "0\n"
    directory = records.find(name).directory
    files = sorted(directory.glob("container-json.log*"))
    assert [f.name for f in files] == ["container-json.log", "container-json.log.1"]
    longest = max(len(line) for f in files for line in f.read_bytes().splitlines(True))
    for f in files:
        assert f.stat().st_size <= 1024 + longest
    shown = md("logs", name).stdout.splitlines()
    assert shown[-1] == "line 500" and 0 < len(shown) < 100
    assert shown == [f"line {i}" for i in range(501 - len(shown), 501)]  # none lost between


# --- run's flags and the image's config ----------------------------------------------------------

def test_cidfile_is_written_and_never_overwritten(md, containers, tmp_path):
    cidfile = tmp_path / "cid"
    name = containers.run_d("--cidfile", str(cidfile), "busybox", "true")
    assert cidfile.read_text() == container_id(name)
    again = md("run", "--cidfile", str(cidfile), "--name", containers.name(), "busybox", "true")
    assert again.returncode == 125 and "Container ID file found" in again.stderr
    assert cidfile.read_text() == container_id(name)
    foreground = tmp_path / "cid2"
    second = containers.name()
    md("run", "--cidfile", str(foreground), "--name", second, "busybox", "true")
    assert foreground.read_text() == container_id(second)


def test_rm_detached_goes_with_its_anonymous_volumes(md, containers):
    before = set(md("volume", "ls", "-q").stdout.split())
    name = containers.run_d("--rm", "-v", "/data", "busybox", "sh", "-c",
                            "echo x > /data/f; sleep 0.3")
    eventually(lambda: name not in md("ps", "-a").stdout)
    assert set(md("volume", "ls", "-q").stdout.split()) == before


def test_entrypoint_and_cmd_combine_as_in_docker(md, containers):
    image = image_with(containers, "entry:1", Entrypoint=["echo", "hi"], Cmd=["there"])
    run = lambda *args: md("run", "--rm", *args).stdout  # noqa: E731
    assert run(image) == "hi there\n"
    assert run(image, "you") == "hi you\n"  # arguments replace Cmd
    assert run("--entrypoint", "echo", image) == "\n"  # --entrypoint drops the image's Cmd
    assert run("--entrypoint", "echo", image, "bye") == "bye\n"
    assert run("--entrypoint", "", image, "sh", "-c", "echo cleared") == "cleared\n"
    name = containers.name()
    md("create", "--name", name, image, "x")
    assert inspect(md, name, "{{json .Config.Entrypoint}} {{json .Config.Cmd}}") == \
        '["echo","hi"] ["x"]'
    assert inspect(md, name, "{{.Path}} {{.Args}}") == "echo [hi x]"


def test_entrypoint_from_commit_change(md, containers):
    source = containers.name()
    md("run", "--name", source, "busybox", "true")
    assert md("commit", "--change", 'ENTRYPOINT ["echo","hi"]', source, "committed:1"
              ).returncode == 0
    containers.images.append("committed:1")
    assert md("run", "--rm", "committed:1", "all").stdout == "hi all\n"


def test_env_merges_image_env_file_and_flags(md, containers, tmp_path):
    image = image_with(containers, "envs:1", Env=["PATH=/usr/bin:/bin", "A=image",
                                                  "B=image", "C=image"])
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\n\nB=file\nC=file with spaces\nFROM_HOST\n")
    result = md("run", "--rm", "--env-file", str(env_file), "-e", "C=flag", "-e", "D",
                image, "sh", "-c", "echo $A/$B/$C/$D/$FROM_HOST/$PATH",
                env={"FROM_HOST": "host", "D": "copied"})
    assert result.stdout == "image/file/flag/copied/host//usr/bin:/bin\n"
    bad = tmp_path / "bad"
    bad.write_text("A B=1\n")
    assert "whitespace" in md("run", "--rm", "--env-file", str(bad), "busybox", "true").stderr


def test_workdir_and_user(md, containers):
    assert md("run", "--rm", "-w", "/made/here", "busybox", "pwd").stdout == "/made/here\n"
    ids = "echo $(id -u):$(id -g) $HOME"
    assert md("run", "--rm", "-u", "1000:1000", "busybox", "sh", "-c", ids
              ).stdout == "1000:1000 /\n"
    assert md("run", "--rm", "-u", "nobody", "busybox", "sh", "-c", ids
              ).stdout == "65534:65534 /home\n"
    assert md("run", "--rm", "-u", "daemon:nogroup", "busybox", "sh", "-c", ids
              ).stdout == "1:65534 /usr/sbin\n"
    unknown = md("run", "--rm", "-u", "bob", "busybox", "true")
    assert unknown.returncode != 0 and "bob" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert md("run", "--rm", "-w", "relative", "busybox", "true").returncode == 125


def test_init_runs_tini_as_pid_1(md):
    result = md("run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm")
    words = result.stdout.split()
    assert words[:4] == ["PID", "COMMAND", "1", "docker-init"] and words[-1] == "ps"


def test_image_volumes_become_anonymous_volumes(md, containers):
    image = image_with(containers, "withvolume:1", Volumes={"/data": {}})
    name = containers.run_d(image, "sh", "-c", "echo kept > /data/f")
    md("wait", name)
    mounts = json.loads(inspect(md, name, "{{json .Mounts}}"))
    assert [(m["Type"], m["Destination"]) for m in mounts] == [("volume", "/data")]
    assert re.fullmatch(r"[0-9a-f]{64}", mounts[0]["Name"])
    assert md("volume", "inspect", mounts[0]["Name"]).returncode == 0
    covered = containers.run_d("-v", "/data", image, "true")  # a mount covers it: one volume
    assert len(json.loads(inspect(md, covered, "{{json .Mounts}}"))) == 1


# --- inspect, rename, wait, top, pause -----------------------------------------------------------

def test_inspect_format_forms(md, containers, tmp_path):
    image = image_with(containers, "labels:1", Labels={"k": "v", "other": "w"})
    name = containers.run_d("-v", f"{tmp_path}:/host", "--tmpfs", "/scratch", image,
                            "sh", "-c", LOOP)
    assert inspect(md, name, "{{.State.Status}}") == "running"
    assert inspect(md, name, "{{.State.Running}} {{.State.Paused}}") == "true false"
    mounts = json.loads(inspect(md, name, "{{json .Mounts}}"))
    assert {m["Destination"] for m in mounts} == {"/host", "/scratch"}
    assert inspect(md, name, "{{range .Mounts}}{{.Destination}};{{end}}") == \
        ";".join(m["Destination"] for m in mounts) + ";"
    assert inspect(md, name, '{{index .Config.Labels "k"}}') == "v"
    assert inspect(md, name, "{{.Name}}") == f"/{name}"
    assert md("inspect", "-f", "{{.Nope}}", name).returncode != 0
    whole = json.loads(md("inspect", name).stdout)
    assert whole[0]["Id"] == container_id(name) and whole[0]["State"]["Status"] == "running"


def test_rename_wait_and_top(md, containers):
    old = containers.run_d("busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.1; done; exit 6")
    new = containers.name("renamed")
    assert md("rename", old, new).returncode == 0
    assert inspect(md, new, "{{.Name}}") == f"/{new}"
    assert md("inspect", old).returncode != 0
    taken = containers.run_d("busybox", "true")
    assert "already in use" in md("rename", new, taken).stderr
    top = md("top", new).stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any("until [ -e /tmp/go ]" in line for line in top[1:])
    assert md("exec", new, "touch", "/tmp/go").returncode == 0
    assert md("wait", new).stdout == "6\n"
    assert "is not running" in md("top", new).stderr


def test_pause_freezes_the_cgroup_and_unpause_thaws_it(md, containers):
    name = containers.run_d("busybox", "sh", "-c",
                            "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; "
                            "done")
    cgroup = cgroups.for_container(container_id(name))
    state_file = (cgroup.path("freezer") / "freezer.state" if cgroup.version == "v1"
                  else cgroup.directories()[0] / "cgroup.freeze")
    frozen = "FROZEN" if cgroup.version == "v1" else "1"
    assert md("pause", name).returncode == 0
    assert state_file.read_text().strip() == frozen
    assert inspect(md, name, "{{.State.Status}} {{.State.Paused}}") == "paused true"
    pid = int(inspect(md, name, "{{.State.Pid}}"))
    counted = Path(f"/proc/{pid}/root/tmp/n").read_text()
    time.sleep(0.3)
    assert Path(f"/proc/{pid}/root/tmp/n").read_text() == counted  # nothing ran
    assert "already paused" in md("pause", name).stderr
    assert "paused" in md("exec", name, "true").stderr
    assert md("unpause", name).returncode == 0
    assert state_file.read_text().strip() != frozen
    eventually(lambda: Path(f"/proc/{pid}/root/tmp/n").read_text() != counted)
    assert "not paused" in md("unpause", name).stderr
    assert md("pause", name).returncode == 0
    assert md("stop", "-t", "1", name).returncode == 0  # a paused container stops too
    assert inspect(md, name, "{{.State.Status}}") == "exited"


# --- rm and prune --------------------------------------------------------------------------------

def test_rm_refuses_a_running_container_without_force(md, containers):
    name = containers.run_d("busybox", "sh", "-c", LOOP)
    refused = md("rm", name)
    assert refused.returncode == 1 and "Stop it first" in refused.stderr
    directory = records.find(name).directory
    assert md("rm", "-f", name).stdout == f"{name}\n"
    assert not directory.exists()
    assert "No such object" in md("inspect", name).stderr


def test_rm_force_of_a_restarting_container(md, containers):
    name = containers.run_d("--restart", "always", "busybox", "sh", "-c", "sleep 0.1; exit 1")
    record = records.find(name)
    eventually(lambda: records.find(name).RestartCount >= 3)
    monitor = records.find(name).State["MonitorPid"]
    assert md("rm", "-f", name).returncode == 0
    assert not record.directory.exists()
    assert not cgroups.for_container(record.Id).exists()
    eventually(lambda: not Path(f"/proc/{monitor}").exists()
               or Path(f"/proc/{monitor}/stat").read_text().split(") ")[1][0] == "Z")


def test_container_prune_and_system_prune(md, containers):
    stopped = containers.run_d("busybox", "true")
    created = containers.name()
    md("create", "--name", created, "busybox", "true")
    running = containers.run_d("busybox", "sh", "-c", LOOP)
    md("wait", stopped)
    ids = {container_id(stopped), container_id(created)}
    pruned = md("container", "prune", "-f")
    assert pruned.stdout.startswith("Deleted Containers:\n")
    assert ids <= set(pruned.stdout.split()[2:])
    assert md("ps", "-a", "-q").stdout.split() == [container_id(running)[:12]]
    image_with(containers, "dangling:1", Labels={"dangling": "yes"})
    md("rmi", "dangling:1")  # untags, and nobody uses it: deleted already
    running_id = container_id(running)
    md("stop", "-t", "0", running)
    result = md("system", "prune", "-f")
    assert result.returncode == 0 and running_id in result.stdout
    assert md("ps", "-a", "-q").stdout == ""
    assert "busybox" in md("images").stdout


# --- bad input: one sentence, the right exit code -----------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["start", "no-such-container"], "No such container"),
    (["stop", "no-such-container"], "No such container"),
    (["logs", "no-such-container"], "No such container"),
    (["exec", "no-such-container", "true"], "No such container"),
    (["run", "--restart", "bogus", "busybox", "true"], "invalid restart policy"),
    (["run", "--restart", "always:3", "busybox", "true"], "only on-failure"),
    (["run", "--restart", "always", "--rm", "busybox", "true"], "Conflicting options"),
    (["run", "--rm", "-v", "a:b:c:d", "busybox", "true"], "invalid volume specification"),
    (["run", "--rm", "-v", "relative:/x:zz", "busybox", "true"], "zz"),
    (["run", "--rm", "--stop-signal", "SIGNOPE", "busybox", "true"], "invalid signal"),
    (["run", "--rm", "--log-opt", "max-size", "busybox", "true"], "log opt"),
])
def test_bad_input_is_one_clear_sentence(md, args, words):
    result = md(*args)
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr
    assert md("ps", "-a", "-q").stdout == ""  # nothing was made


def test_stop_and_kill_of_a_stopped_container(md, containers):
    name = containers.run_d("busybox", "true")
    md("wait", name)
    assert (md("stop", name).returncode, md("stop", name).stdout) == (0, f"{name}\n")
    killed = md("kill", name)
    assert killed.returncode == 1 and "is not running" in killed.stderr
    in_stopped = md("exec", name, "true")
    assert in_stopped.returncode != 0 and "is not running" in in_stopped.stderr
    assert "Traceback" not in killed.stderr + in_stopped.stderr


def test_unknown_names_among_known_ones_fail_at_the_end(md, containers):
    name = containers.run_d("busybox", "sh", "-c", LOOP)
    result = md("stop", "-t", "0", "no-such", name)
    assert result.returncode == 1 and result.stdout == f"{name}\n"
    assert "No such container: no-such" in result.stderr



def test_pid1_alive_is_the_process_the_record_started():
    """A record names its PID 1 by PID *and* start time: after a crash (or a reboot) the PID
    may name another process, which exec and cp must not enter."""
    record = records.ContainerRecord("c" * 64, "pid-reused", "busybox", {}, {})
    record.State.update(Status="running", Pid=os.getpid(), PidStart=records.start_time(os.getpid()))
    assert record.pid1_alive()
    record.State["PidStart"] += 1  # another process, with the same PID
    assert not record.pid1_alive()
