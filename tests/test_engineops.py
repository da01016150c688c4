"""Stage 12's engine operations in minidocker's own CLI: the event log, ``cp`` both ways
(and hostile archives: the ``docker cp`` CVE class), ``stats``, ``update``, ``info``,
``system df``, the ``ls`` aliases, and the commands that are out of scope."""

import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from minidocker import events
from tests.conftest import minidocker
from tests.helpers import eventually


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


# --- the event log ------------------------------------------------------------------------------

def test_events_are_docker_shaped_filtered_and_rotated(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDOCKER_ROOT", str(tmp_path))
    monkeypatch.setattr(events, "MAX_BYTES", 4096)
    start = time.time_ns()
    tail = events.Tail()
    for n in range(60):  # ~200 bytes each: rotates a few times
        events.emit("container", "start", f"{n:064x}", {"name": f"c{n}", "image": "busybox"})
    events.health_status("f" * 64, "healthy", {"name": "h"})
    log = tmp_path / "events.log"
    assert log.stat().st_size <= 4096 and (tmp_path / "events.log.1").exists()
    kept = events.read(start)
    assert kept[-1]["Action"] == "health_status: healthy" and len(kept) < 61  # bounded
    assert set(kept[0]) == {"Type", "Action", "Actor", "scope", "time", "timeNano"}
    assert kept[0]["time"] == kept[0]["timeNano"] // 10**9
    polled = tail.poll()  # across the rotations: the newest ones at least, in order
    assert polled[-1]["Action"].startswith("health_status")
    assert [e["timeNano"] for e in polled] == sorted(e["timeNano"] for e in polled)
    last = kept[-2]
    assert events.matches(last, {"type": ["container"], "container": ["c59"]})
    assert events.matches(last, {"container": [last["Actor"]["ID"][:12]]})
    assert events.matches(kept[-1], {"event": ["health_status"]})
    assert not events.matches(last, {"type": ["image"]})
    assert events.matches(last, {"image": ["busybox"], "event": ["stop", "start"]})


def test_event_times_as_docker_reads_them():
    now = 1_800_000_000 * 10**9
    assert events.parse_time("1733300000") == 1733300000 * 10**9
    assert events.parse_time("1733300000.5") == 1733300000 * 10**9 + 500_000_000
    assert events.parse_time("10m", now) == now - 600 * 10**9
    assert events.parse_time("1h30m", now) == now - 5400 * 10**9
    assert events.parse_time("2026-12-04T21:00:00Z") == 1796418000 * 10**9
    with pytest.raises(Exception, match="invalid time"):
        events.parse_time("yesterday")


# --- cp -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def box():
    name = "engops-box"
    ok(minidocker("run", "-d", "--name", name, "busybox", "sleep", "infinity"))  # outlives any run
    yield name
    minidocker("rm", "-f", name)


def inside(box, *command) -> str:
    return ok(minidocker("exec", box, *command))


def test_cp_both_ways_with_docker_rules(box, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("hello\n")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "g").write_text("g\n")
    ok(minidocker("cp", str(tmp_path / "file"), f"{box}:/tmp/"))  # into a directory
    ok(minidocker("cp", str(tmp_path / "file"), f"{box}:/tmp/renamed"))  # to a new name
    ok(minidocker("cp", str(tmp_path / "dir"), f"{box}:/newdir"))  # a dir to a new name
    ok(minidocker("cp", str(tmp_path / "dir"), f"{box}:/newdir"))  # then inside it
    ok(minidocker("cp", f"{tmp_path}/dir/.", f"{box}:/contents"))  # SRC/. : the contents
    monkeypatch.chdir(tmp_path / "dir")
    ok(minidocker("cp", ".", f"{box}:/here"))  # the working directory's contents
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    ok(minidocker("cp", f"{tmp_path}/link/sub", f"{box}:/via-link"))  # a link on the way
    listing = inside(box, "find", "/tmp", "/newdir", "/contents", "/here", "/via-link").split()
    assert {"/tmp/file", "/tmp/renamed", "/newdir/sub/g", "/newdir/dir/sub/g",
            "/contents/sub/g", "/here/sub/g", "/via-link/g"} <= set(listing)
    assert inside(box, "stat", "-c", "%u:%g", "/tmp/file").strip() == "0:0"  # root's, as Docker

    out = tmp_path / "out"
    out.mkdir()
    ok(minidocker("cp", f"{box}:/etc/hostname", str(out / "h")))
    ok(minidocker("cp", f"{box}:/newdir", str(out)))
    ok(minidocker("cp", f"{box}:/etc/.", str(out / "etc-contents")))
    (tmp_path / "out-link").symlink_to(out)
    ok(minidocker("cp", f"{box}:/etc/group", str(tmp_path / "out-link")))  # a link to a dir
    assert (out / "h").read_text() == inside(box, "hostname")
    assert (out / "newdir" / "sub" / "g").read_text() == "g\n"
    assert (out / "etc-contents" / "passwd").is_file() and (out / "group").is_file()
    inside(box, "ln", "-sfn", "/etc/hostname", "/tmp/link")
    ok(minidocker("cp", f"{box}:/tmp/link", str(out / "as-link")))
    ok(minidocker("cp", "-L", f"{box}:/tmp/link", str(out / "followed")))
    assert os.readlink(out / "as-link") == "/etc/hostname"
    assert (out / "followed").read_text() == (out / "h").read_text()
    os.chown(tmp_path / "file", 1234, 1234)
    ok(minidocker("cp", "-a", str(tmp_path / "file"), f"{box}:/tmp/kept"))
    assert inside(box, "stat", "-c", "%u:%g", "/tmp/kept").strip() == "1234:1234"
    ok(minidocker("cp", str(tmp_path / "dir"), f"{box}:/tmp/kind"))
    inside(box, "sh", "-c", "rm -r /tmp/kind/sub && touch /tmp/kind/sub")
    clash = minidocker("cp", f"{tmp_path}/dir/.", f"{box}:/tmp/kind")
    assert clash.returncode == 1 and "replace a file with a directory" in clash.stderr
    tar = minidocker("cp", f"{box}:/etc/passwd", "-")
    assert "passwd" in tar.stdout[:512]

    refusals = [
        (minidocker("cp", str(tmp_path / "file"), f"{box}:/nodir/"), "must exist"),
        (minidocker("cp", str(tmp_path / "dir"), f"{box}:/etc/hostname"), "directory to a file"),
        (minidocker("cp", f"{box}:/nope", str(out)), "Could not find the file /nope"),
        (minidocker("cp", str(tmp_path / "file"), str(out)), "one of SRC and DEST"),
    ]
    for result, words in refusals:
        assert result.returncode == 1 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_cp_into_a_stopped_container_and_out(containers, tmp_path):
    name = containers.run_d("busybox", "sleep", "300")
    ok(minidocker("stop", "-t", "0", name))
    (tmp_path / "f").write_text("while stopped\n")
    ok(minidocker("cp", str(tmp_path / "f"), f"{name}:/f"))
    ok(minidocker("cp", f"{name}:/f", str(tmp_path / "back")))
    assert (tmp_path / "back").read_text() == "while stopped\n"
    ok(minidocker("start", name))
    assert inside(name, "cat", "/f") == "while stopped\n"


def test_a_container_whose_pid_1_has_just_ended_is_not_running(containers, tmp_path):
    """Until its monitor has released it and recorded the end (seconds on a slow machine),
    the record still says "running": exec says what Docker says, not a /proc path, and cp
    reads its files as a stopped container's."""
    from minidocker.container import records

    name = containers.run_d("--network", "none", "busybox", "sh", "-c",
                            "echo kept > /f; exec sleep infinity")
    inside(name, "cat", "/f")
    state = records.find(name).State
    os.kill(state["MonitorPid"], signal.SIGSTOP)  # it cannot record the end for now
    try:
        os.kill(state["Pid"], signal.SIGKILL)
        eventually(lambda: records.start_time(state["Pid"]) == 0, what="PID 1 gone")
        assert records.find(name).status == "running"
        result = minidocker("exec", name, "true")
        assert result.returncode == 1 and "is not running" in result.stderr, result.stderr
        assert "/proc" not in result.stderr
        ok(minidocker("cp", f"{name}:/f", str(tmp_path / "f")))
        assert (tmp_path / "f").read_text() == "kept\n"
    finally:
        os.kill(state["MonitorPid"], signal.SIGCONT)


def test_symlinks_planted_by_the_container_lead_nowhere_outside(box, tmp_path):
    """CVE-2018-15664: a container points a path at the host's / — the copy stays inside."""
    inside(box, "ln", "-sfn", "/", "/escape")
    inside(box, "ln", "-sfn", "../../../../..", "/up")
    (tmp_path / "payload").write_text("x\n")
    ok(minidocker("cp", str(tmp_path / "payload"), f"{box}:/escape/tmp/payload-via-link"))
    ok(minidocker("cp", str(tmp_path / "payload"), f"{box}:/up/tmp/payload-via-dots"))
    assert not Path("/tmp/payload-via-link").exists()
    assert not Path("/tmp/payload-via-dots").exists()
    assert "payload-via-link" in inside(box, "ls", "/tmp")
    ok(minidocker("cp", f"{box}:/up/etc/hostname", str(tmp_path / "h")))  # reads the same way
    assert (tmp_path / "h").read_text() == inside(box, "cat", "/etc/hostname")


def hostile_tar(*members: tuple[str, bytes | str]) -> io.BytesIO:
    """A tar of (name, content) members; content str = a symlink to it."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    data.seek(0)
    return data


@pytest.mark.parametrize("members, words", [
    ([("../../../../tmp/engops-hostile-dots", b"x")], "'..'"),
    ([("/tmp/engops-hostile-abs", b"x")], "absolute path"),
    ([("link", "/tmp"), ("link/engops-hostile-through", b"x")], "symlink"),
    ([("plain", b"")], None),  # a harmless member: the container accepts it
])
def test_hostile_archives_are_refused(box, members, words, tmp_path):
    from minidocker.container import archive, lifecycle
    from minidocker.errors import MinidockerError

    record = lifecycle.find(box)
    tar = tmp_path / "t.tar"
    tar.write_bytes(hostile_tar(*members).getvalue())
    with open(tar, "rb") as source:
        if words is None:
            archive.extract_archive(record, "/tmp", source)
            return
        with pytest.raises(MinidockerError, match=words) as refused:
            archive.extract_archive(record, "/tmp", source)
    assert "nothing was written outside the container" in str(refused.value)
    assert not list(Path("/tmp").glob("engops-hostile-*"))


# --- stats, update, info, df, aliases -------------------------------------------------------------

def test_stats_no_stream_and_update(containers):
    name = containers.run_d("-m", "32m", "busybox", "sh", "-c", "while :; do :; done")
    out = ok(minidocker("stats", "--no-stream", "--format",
                        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", name))
    got, cpu, memory, pids = out.strip().split("|")
    assert got == name and float(cpu.rstrip("%")) > 5 and memory.endswith("/ 32MiB")
    assert pids == "1"
    table = ok(minidocker("stats", "--no-stream", name))
    assert table.startswith("CONTAINER ID   NAME") and "MEM USAGE / LIMIT" in table

    ok(minidocker("update", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20",
                  "--restart", "on-failure:3", name))
    shown = ok(minidocker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}} "
                          "{{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", name))
    assert shown.split() == [str(64 * 2**20), "50000", "20", "on-failure"]
    from minidocker.container import lifecycle

    used = lifecycle.find(name).cgroup().stats()  # the kernel's own answer
    assert used.memory_limit == 64 * 2**20 and used.pids_limit == 20
    ok(minidocker("update", "--pids-limit", "-1", name))  # unlimited again
    assert lifecycle.find(name).cgroup().stats().pids_limit is None
    assert ok(minidocker("inspect", "-f", "{{.HostConfig.PidsLimit}}", name)).strip() == "0"
    bad = minidocker("update", "--cpus", "lots", name)
    assert bad.returncode == 125 and "--cpus" in bad.stderr  # a bad flag: docker 28's code
    assert minidocker("update", name).returncode == 1


def test_info_df_aliases_and_out_of_scope(box):
    info = ok(minidocker("info"))
    assert "Storage Driver: overlay2" in info and "Cgroup Version:" in info
    assert ok(minidocker("info", "--format", "{{.Driver}}")).strip() == "overlay2"
    df = ok(minidocker("system", "df")).splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in df[1:]] == ["Images", "Containers", "Local", "Build"]
    rows = [json.loads(line) for line in ok(minidocker("system", "df", "--format", "json"))
            .splitlines()]
    assert int(rows[1]["Active"]) >= 1
    assert box in ok(minidocker("container", "ls"))
    assert "busybox" in ok(minidocker("image", "ls"))
    for command in ("checkpoint", "plugin"):
        result = minidocker(command, "ls")
        assert result.returncode == 1 and "out of scope" in result.stderr


def test_events_since_and_filter(containers):
    begin = time.time()
    name = containers.run_d("busybox", "true")
    ok(minidocker("wait", name))
    out = ok(minidocker("events", "--since", str(begin), "--until", str(time.time()),
                        "--filter", f"container={name}", "--filter", "event=start",
                        "--filter", "event=die"))
    lines = out.splitlines()
    assert [line.split()[2] for line in lines] == ["start", "die"], out
    assert f"name={name}" in lines[0] and "exitCode=0" in lines[1]
    as_json = ok(minidocker("events", "--since", "1m", "--until", "0s", "--format", "json",
                            "--filter", "type=container", "--filter", f"container={name}"))
    actions = [json.loads(line)["Action"] for line in as_json.splitlines()]
    assert actions[:1] == ["create"] and "start" in actions
    bad = minidocker("events", "--filter", "colour=red", "--until", "0s")
    assert bad.returncode == 1 and "invalid filter" in bad.stderr
    assert os.path.exists(events.log_path())


# --- stats from both cgroup versions, as the kernel formats the files -----------------------------

def write_files(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def test_stats_details_from_cgroup_v1_files(tmp_path, monkeypatch):
    from minidocker.cgroups import v1
    from minidocker.cgroups.limits import Limits

    name = "minidocker/x"
    mounts = {c: tmp_path / c for c in ("memory", "cpu", "cpuacct", "pids", "blkio")}
    write_files(mounts["cpuacct"] / name, {"cpuacct.usage": "3000000000\n",
                                           "cpuacct.stat": "user 200\nsystem 100\n"})
    write_files(mounts["memory"] / name, {
        "memory.usage_in_bytes": "10485760\n", "memory.limit_in_bytes": "33554432\n",
        "memory.memsw.limit_in_bytes": "67108864\n", "memory.oom_control": "oom_kill 0\n",
        "memory.stat": "cache 4096\ntotal_inactive_file 2097152\n"})
    write_files(mounts["pids"] / name, {"pids.current": "3\n", "pids.max": "max\n"})
    write_files(mounts["blkio"] / name, {"blkio.throttle.io_service_bytes":
                                         "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n"
                                         "Total 12288\n"})
    cgroup = v1.CgroupV1(name, mounts)
    used = cgroup.stats()
    ticks = 10**9 // os.sysconf("SC_CLK_TCK")
    assert (used.cpu_usage_ns, used.cpu_user_ns, used.cpu_system_ns) == (3 * 10**9,
                                                                        200 * ticks, 100 * ticks)
    assert used.memory_limit == 32 * 2**20 and used.pids_limit is None
    assert used.memory_stat["total_inactive_file"] == 2097152
    assert used.io_bytes == ((8, 0, "read", 4096), (8, 0, "write", 8192))

    order = []
    monkeypatch.setattr(v1, "write_file", lambda path, value: order.append(path.name))
    cgroup.set_limits(Limits(memory=128 * 2**20))  # grows: memory+swap first
    cgroup.set_limits(Limits(memory=16 * 2**20))  # shrinks: memory first
    assert order == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes",
                     "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_stats_details_from_cgroup_v2_files(tmp_path):
    from minidocker.cgroups.v2 import CgroupV2

    write_files(tmp_path / "minidocker" / "x", {
        "cpu.stat": "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n",
        "memory.current": "10485760\n", "memory.max": "max\n", "memory.events": "oom_kill 1\n",
        "memory.stat": "anon 1048576\ninactive_file 2097152\n", "pids.current": "2\n",
        "pids.max": "50\n", "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 "
                                      "dios=0\n"})
    used = CgroupV2("minidocker/x", tmp_path).stats()
    assert (used.cpu_usage_ns, used.cpu_user_ns, used.cpu_system_ns) == (3 * 10**9, 2 * 10**9,
                                                                        10**9)
    assert used.memory_limit is None and used.pids_limit == 50 and used.oom_kills == 1
    assert used.memory_stat["inactive_file"] == 2097152
    assert used.io_bytes == ((8, 0, "read", 4096), (8, 0, "write", 8192))


def test_stats_row_computes_as_the_docker_cli():
    from minidocker.cli.containerops import stats_row

    sample = {"name": "/web", "read": "2026-12-04T21:00:01Z",
              "cpu_stats": {"cpu_usage": {"total_usage": 3 * 10**9},
                            "system_cpu_usage": 20 * 10**9, "online_cpus": 2},
              "precpu_stats": {"cpu_usage": {"total_usage": 2 * 10**9},
                               "system_cpu_usage": 16 * 10**9},
              "memory_stats": {"usage": 10 * 2**20, "limit": 32 * 2**20,
                               "stats": {"inactive_file": 2 * 2**20}},
              "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}},
              "blkio_stats": {"io_service_bytes_recursive": [
                  {"major": 8, "minor": 0, "op": "read", "value": 4096},
                  {"major": 8, "minor": 0, "op": "write", "value": 0}]},
              "pids_stats": {"current": 3}}
    row = stats_row(sample, "abc")
    assert row["CPUPerc"] == "50.00%"  # 1 s of CPU in 4 s of two CPUs' time: 1/4 * 2
    assert row["MemUsage"] == "8MiB / 32MiB" and row["MemPerc"] == "25.00%"
    assert row["NetIO"] == "1.5kB / 500B" and row["BlockIO"] == "4.1kB / 0B"
    assert row["PIDs"] == "3" and row["Name"] == "web"


def test_events_streams_as_they_happen():
    from tests.conftest import MINIDOCKER

    follower = subprocess.Popen([*MINIDOCKER, "events", "--filter", "type=volume", "--format",
                                 "{{.Type}} {{.Action}} {{.Actor.ID}}"],
                                stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(30, follower.kill)  # a missing event fails, never hangs
    watchdog.start()
    try:
        time.sleep(1.5)  # it has started and looks at the log's end
        ok(minidocker("volume", "create", "engops-streamed"))
        ok(minidocker("volume", "rm", "engops-streamed"))
        lines = [follower.stdout.readline().strip() for _ in range(2)]
        assert lines == ["volume create engops-streamed", "volume destroy engops-streamed"]
    finally:
        watchdog.cancel()
        follower.terminate()
        follower.wait(10)
