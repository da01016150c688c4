"""Stage 6 when things go wrong: a monitor killed with SIGKILL (detached, or the foreground
``run`` CLI, which is its own container's monitor) leaves no process, cgroup or mount behind,
and the next command tells the truth about it; and a hundred start/stop/remove cycles leak
nothing. What is checked is the kernel's view: /proc, the cgroup tree, the mount table."""

import os
import signal
import subprocess
import time

import pytest

from minidocker import cgroups
from minidocker.container import Config, lifecycle, records
from minidocker.container.create import create
from minidocker.network import bridge, store

from .conftest import MINIDOCKER, TIMEOUT_SCALE
from .helpers import eventually
from .test_lifecycle import LOOP, inspect


def alive(pid: int) -> bool:
    """A process that runs (a zombie has finished running: only its parent's wait is left)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def mounts_under_the_state_root() -> list[str]:
    root = os.environ["MINIDOCKER_ROOT"]
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(root + "/")]


def assert_nothing_left(container_ids: list[str], pids: list[int]) -> None:
    """No process of these containers or monitors, no cgroup, no mount."""
    assert [pid for pid in pids if alive(pid)] == []
    assert [c for c in container_ids if cgroups.for_container(c).exists()] == []
    assert mounts_under_the_state_root() == []


def test_a_killed_detached_monitor_leaves_an_exited_container(md, containers):
    name = containers.run_d("busybox", "sh", "-c", LOOP)
    record = records.find(name)
    monitor, pid1 = record.State["MonitorPid"], record.State["Pid"]
    assert alive(monitor) and alive(pid1)
    os.kill(monitor, signal.SIGKILL)
    # the shim and PID 1 die with it (PR_SET_PDEATHSIG), and the next look at the record
    # finds the monitor gone: exited, and the cgroup released
    eventually(lambda: not alive(pid1))
    row = md("ps", "-a").stdout
    assert "Exited (137)" in row and name in row
    assert name not in md("ps").stdout
    assert inspect(md, name, "{{.State.Status}} {{.State.Pid}}") == "exited 0"
    assert "monitor died" in inspect(md, name, "{{.State.Error}}")
    assert_nothing_left([record.Id], [monitor, pid1])
    assert md("start", name).returncode == 0  # it can run again
    again = record.reload().State
    assert again["Status"] == "running"
    assert md("rm", "-f", name).returncode == 0
    assert_nothing_left([record.Id], [again["MonitorPid"], again["Pid"]])


def test_a_killed_foreground_run_leaves_an_exited_container(md, containers):
    name = containers.name()
    cli = subprocess.Popen([*MINIDOCKER, "run", "--name", name, "busybox", "sh", "-c", LOOP],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: md("inspect", "-f", "{{.State.Status}}", name).stdout == "running\n")
        record = records.find(name)
        assert record.State["MonitorPid"] == cli.pid  # the CLI is the monitor
        pid1 = record.State["Pid"]
    finally:
        cli.kill()
        cli.wait()
    eventually(lambda: not alive(pid1))
    assert inspect(md, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert_nothing_left([record.Id], [pid1])
    assert md("rm", name).returncode == 0
    assert not record.directory.exists()


def cgroup_dirs(container_id: str) -> list[str]:
    """``minidocker/<id>`` in every hierarchy: each v1 controller and the v2 tree."""
    found = cgroups.CGROUP_ROOT.glob(f"*/{cgroups.parent()}/{container_id}")
    unified = cgroups.CGROUP_ROOT / cgroups.parent() / container_id
    return [str(d) for d in [*found, unified] if d.is_dir()]


@pytest.mark.parametrize("command", ["ps", "inspect"])
def test_a_killed_foreground_run_rm_is_finished_by_the_next_command(md, containers, command):
    """No prune after a crash: ``run --rm`` killed with SIGKILL takes its container with it
    (the shim's PR_SET_PDEATHSIG), and the very next command — ``ps -a`` or ``inspect`` —
    sees the monitor gone and finishes the run as ``--rm`` asks: record, cgroups, endpoint,
    and it shows the container gone."""
    name = containers.name()
    cli = subprocess.Popen([*MINIDOCKER, "run", "--rm", "--network", "bridge", "--name", name,
                            "busybox", "sh", "-c", LOOP],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: md("inspect", "-f", "{{.State.Status}}", name).stdout == "running\n")
        record = records.find(name)
        pid1 = record.State["Pid"]
        veth = store.read_endpoints(record.Id)["endpoints"][0]["veth"]
        assert cgroup_dirs(record.Id) and veth in bridge.links_named(("veth",))
    finally:
        cli.kill()
        cli.wait()
    eventually(lambda: not alive(pid1))  # died with its monitor, before anyone looked
    if command == "ps":  # the one command: it finishes the run
        assert name not in md("ps", "-a").stdout
    else:
        assert "No such object" in md("inspect", name).stderr
    assert not record.directory.exists()
    assert cgroup_dirs(record.Id) == []
    assert store.read_endpoints(record.Id) is None
    assert veth not in bridge.links_named(("veth",))
    assert not any(record.Id in n.allocations for n in store.all_networks())
    assert_nothing_left([record.Id], [cli.pid, pid1])


def test_a_killed_monitor_during_the_restart_back_off(md, containers):
    name = containers.run_d("--restart", "always", "busybox", "sh", "-c", "exit 1")
    record = records.find(name)
    eventually(lambda: records.find(name).status == "restarting")
    monitor = records.find(name).State["MonitorPid"]
    os.kill(monitor, signal.SIGKILL)
    eventually(lambda: not alive(monitor))
    assert inspect(md, name, "{{.State.Status}}") == "exited"
    assert md("container", "prune", "-f").returncode == 0
    assert "No such object" in md("inspect", name).stderr
    assert_nothing_left([record.Id], [monitor])


def test_crashed_containers_are_pruned_without_leftovers(md, containers):
    names = [containers.run_d("busybox", "sh", "-c", LOOP) for _ in range(3)]
    found = [records.find(n) for n in names]
    pids = [p for r in found for p in (r.State["MonitorPid"], r.State["Pid"])]
    for record in found:
        os.kill(record.State["MonitorPid"], signal.SIGKILL)
    pruned = md("container", "prune", "-f").stdout
    assert all(r.Id in pruned for r in found)
    eventually(lambda: not any(alive(p) for p in pids))
    assert_nothing_left([r.Id for r in found], pids)
    assert [n for n in names if n in md("ps", "-a").stdout] == []


def test_a_hundred_run_stop_rm_cycles_leak_nothing():
    """Through the engine's API (the CLI's Python start-up would make this slow): create,
    start under a detached monitor, stop, remove — a hundred times."""
    config = Config(Image="busybox", Cmd=["sh", "-c", f"trap 'exit 0' TERM; {LOOP}"])
    ids, pids = [], []
    began = time.monotonic()
    for _ in range(100):
        record = create(config)
        ids.append(record.Id)
        pids.append(lifecycle.start(record))
        pids.append(record.reload().State["MonitorPid"])
        lifecycle.stop(record, timeout=0)
        assert record.reload().status == "exited"
        lifecycle.rm(record)
    assert time.monotonic() - began < 90 * TIMEOUT_SCALE  # not a target: a bound on a hang
    assert [c for c in records.all_records() if c.Id in ids] == []
    assert not any(records.containers_dir().joinpath(i).exists() for i in ids)
    eventually(lambda: not any(alive(p) for p in pids), timeout=5)
    assert_nothing_left(ids, pids)
