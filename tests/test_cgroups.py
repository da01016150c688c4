"""Stage 3: limits the kernel enforces, seen from inside the container where it can be.

Each test's ID names the driver that ran ([v1] on this Debian machine's hybrid layout, [v2] on
a v2-only machine such as the Ubuntu 24.04 classroom VM). The v2 driver is also tried on a
hybrid machine's unified tree for what that tree allows (create, join, freeze, kill, destroy).
"""

import os
import signal
import time
from pathlib import Path

import pytest

from minidocker import cgroups
from minidocker.cgroups import Limits, build_limits
from minidocker.container import Config, HostConfig, run
from minidocker.errors import MinidockerError
from minidocker.namespaces import Stdio

from .helpers import RUNTIMES, cli_on_runtime, eventually

DRIVER = cgroups.for_container("x").version  # what containers use on this machine


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    """The limits hold whoever writes them: minidocker's driver, or runc from config.json."""
    return request.param


@pytest.fixture
def md(runtime):
    return cli_on_runtime(runtime)


def start(command: list[str], runtime: str = "minidocker", **limits) -> "run":
    null = os.open(os.devnull, os.O_RDWR)
    host = HostConfig(AutoRemove=True, Resources=build_limits(**limits), Runtime=runtime)
    container = run(Config(Image="busybox", Cmd=command), host, stdio=Stdio(null, null, null))
    os.close(null)
    return container


@pytest.fixture(params=[DRIVER])
def driver(request):
    return request.param


def test_memory_hog_above_the_limit_is_oom_killed(md, driver):
    result = md("run", "--rm", "-m", "32m", "busybox", "sh", "-c", "head -c 128m /dev/zero | tail")
    assert result.returncode == 137
    assert "killed by the kernel's OOM killer" in result.stderr


def test_memory_hog_below_the_limit_lives(md, driver):
    result = md("run", "--rm", "-m", "64m", "busybox", "sh", "-c",
                "head -c 8m /dev/zero | tail | wc -c")
    assert (result.returncode, result.stdout, result.stderr) == (0, "8388608\n", "")


def test_oom_kill_is_recorded_in_the_state(md, driver):
    md("run", "--name", "hog", "-m", "16m", "busybox", "sh", "-c", "head -c 64m /dev/zero | tail")
    from minidocker.container.records import find

    state = find("hog").State
    assert (state["ExitCode"], state["OOMKilled"]) == (137, True)
    md("rm", "hog")


def test_fork_loop_stops_at_the_pids_limit(driver, runtime):
    container = start(["sh", "-c", "(while :; do sleep 30 & done) 2>/dev/null; sleep 30"],
                      runtime, pids_limit="20")
    try:
        deadline, peak = time.time() + 3, 0
        while time.time() < deadline and container.stats().forks_refused < 5:
            peak = max(peak, container.stats().pids_current)
        stats = container.stats()
        assert stats.pids_limit == 20 and stats.forks_refused > 0  # the kernel said EAGAIN
        assert 18 <= max(peak, stats.pids_current) <= 20
        assert len(container.cgroup.pids()) <= 20
    finally:
        container.process.signal(signal.SIGKILL)
        container.wait()


def test_cpuset_shows_in_proc_self_status(md, driver):
    result = md("run", "--rm", "--cpuset-cpus", "0", "busybox", "grep", "Cpus_allowed_list",
                "/proc/self/status")
    assert result.stdout.split() == ["Cpus_allowed_list:", "0"]


SECONDS = 4  # long enough that starting up is a small part of the work
COUNT_FOR_SECONDS = (f"trap 'echo $i; exit' TERM; i=0; (sleep {SECONDS}; kill -TERM 1) & "
                     "while :; do i=$((i+1)); done")


def count_for_seconds(**limits) -> tuple[int, float]:
    """How far a busy loop counts in SECONDS of wall time, and the CPU seconds it was given."""
    read_fd, write_fd = os.pipe()
    host = HostConfig(AutoRemove=True, Resources=build_limits(**limits))
    container = run(Config(Image="busybox", Cmd=["sh", "-c", COUNT_FOR_SECONDS]), host,
                    stdio=Stdio(0, write_fd, 2))
    os.close(write_fd)
    with os.fdopen(read_fd) as out:
        count = int(out.read())
    cpu_seconds = container.stats().cpu_usage_ns / 1e9
    container.wait()
    return count, cpu_seconds


@pytest.mark.slow
def test_half_a_cpu_does_about_half_the_work(driver):
    full, full_cpu = count_for_seconds()
    half, half_cpu = count_for_seconds(cpus="0.5")
    assert half_cpu <= 0.6 * SECONDS  # the kernel's own accounting: at most 0.5 CPU (+ slack)
    if full_cpu < 0.8 * SECONDS:
        pytest.skip(f"the machine is busy: the unlimited run got only {full_cpu:.2f} CPU "
                    f"seconds in {SECONDS} s, so the work ratio says nothing")
    # In a VM whose host is busy, a CPU second of the guest's accounting does not always do the
    # same work (the host deschedules the virtual CPU; TCG translates code the first time).
    speed_change = (half / half_cpu) / (full / full_cpu)
    if not 0.75 <= speed_change <= 1.33:
        pytest.skip(f"a CPU second did {speed_change:.2f}x the work in the limited run as in the "
                    "unlimited one (a busy host under a VM?), so the work ratio says nothing")
    assert 0.35 <= half / full <= 0.65, (half, full, half_cpu, full_cpu)


def test_stats_agree_with_the_cgroup_files(driver, runtime):
    container = start(["sh", "-c", "sleep 30"], runtime, memory="64m", pids_limit="50")  # sh execs sleep
    try:
        stats = container.stats()
        files = container.cgroup.directories()
        text = "\n".join(p.read_text() for d in files for p in d.glob("*.procs"))
        assert str(container.pid) in text.split()
        for _ in range(50):  # runc's init and its threads leave the cgroup a moment after start
            if stats.pids_current == 1:
                break
            time.sleep(0.1)
            stats = container.stats()
        assert (stats.memory_limit, stats.pids_limit, stats.pids_current) == (64 * 2**20, 50, 1)
        assert 0 < stats.memory_usage < 64 * 2**20
        assert stats.cpu_usage_ns > 0
    finally:
        container.process.signal(signal.SIGKILL)
        container.wait()


def test_freeze_stops_progress_and_thaw_resumes_it(driver, runtime):
    container = start(["sh", "-c", "while :; do :; done"], runtime)
    try:
        time.sleep(0.2)
        container.pause()
        frozen_at = container.stats().cpu_usage_ns
        time.sleep(0.3)
        assert container.stats().cpu_usage_ns - frozen_at < 5_000_000  # < 5 ms in 300 ms
        container.unpause()  # it runs again: 100 ms of CPU soon (however busy the machine)
        eventually(lambda: container.stats().cpu_usage_ns - frozen_at > 100_000_000, 10,
                   "the thawed loop used 100 ms of CPU")
    finally:
        container.process.signal(signal.SIGKILL)
        container.wait()


def test_the_container_joins_its_cgroup_before_exec_and_sees_itself_at_the_root(md, driver):
    result = md("run", "--rm", "busybox", "cat", "/proc/self/cgroup")
    paths = {line.split(":", 2)[2] for line in result.stdout.splitlines()}
    assert paths == {"/"}  # the cgroup namespace makes its own cgroup look like the root


def test_no_cgroup_is_left_behind(md, driver):
    md("run", "--rm", "-m", "32m", "busybox", "true")
    md("run", "--rm", "--pids-limit", "5", "busybox", "nosuchcommand")
    assert cgroups.leftover_cgroups() == []


@pytest.mark.parametrize("flags, message", [
    (["-m", "10q"], "invalid value '10q' for --memory"),
    (["-m", "1m"], "Minimum memory limit allowed is 6MB"),
    (["--memory-swap", "64m"], "always set the memory limit"),
    (["-m", "64m", "--memory-swap", "32m"], "larger than memory limit"),
    (["--cpus", "-1"], "invalid value '-1' for --cpus"),
    (["--cpus", "many"], "invalid value 'many' for --cpus"),
    (["--cpus", "0.5", "--cpu-quota", "5000"], "Conflicting options"),
    (["--cpuset-cpus", "99"], "Requested CPUs are not available"),
    (["--cpuset-cpus", "a-b"], "invalid value 'a-b' for --cpuset-cpus"),
    (["--pids-limit", "x"], "invalid value 'x' for --pids-limit"),
    (["--cpu-shares", "1"], "invalid value '1' for --cpu-shares"),
])
def test_bad_limits_are_refused_before_anything_is_created(md, flags, message):
    before = set(os.listdir(os.environ["MINIDOCKER_ROOT"] + "/containers"))
    result = md("run", "--rm", *flags, "busybox", "true")
    assert result.returncode == 125 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert set(os.listdir(os.environ["MINIDOCKER_ROOT"] + "/containers")) == before
    assert cgroups.leftover_cgroups() == []


def test_limits_are_parsed_like_docker():
    assert build_limits(memory="1.5g").memory == int(1.5 * 2**30)
    assert build_limits(cpus="1.5") == Limits(cpu_quota=150000, cpu_period=100000,
                                              nano_cpus=1_500_000_000)  # as Docker keeps it
    assert build_limits(pids_limit="-1").pids_limit is None
    with pytest.raises(MinidockerError):
        build_limits(memory="")


def test_a_blkio_weight_no_scheduler_can_apply_is_discarded_with_dockers_warning(tmp_path):
    """v1 without CFQ's blkio.weight or BFQ's blkio.bfq.weight (mq-deadline, none): Docker
    warns and runs without the weight; where either file is, the weight is written."""
    from minidocker.cgroups.v1 import NO_IO_WEIGHT, CgroupV1

    group = CgroupV1("c", mounts={"blkio": tmp_path})
    assert NO_IO_WEIGHT in group.warnings(Limits(blkio_weight=300))
    assert NO_IO_WEIGHT not in group.warnings(Limits())
    (tmp_path / "blkio.bfq.weight").write_text("default 100\n")
    assert NO_IO_WEIGHT not in group.warnings(Limits(blkio_weight=300))



@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 100), (262144, 10000),
                                            (256, 35), (2000, 170), (22000, 1204)])
def test_cpu_shares_become_the_cpu_weight_runc_and_crun_write(shares, weight):
    # runc >= 1.3.2 and crun >= 1.23: min, default and max map onto each other; 2000 -> 170 is
    # runc issue #4896's example, 22000 -> 1204 youki's port of the same formula
    assert cgroups.limits.cpu_weight(shares) == weight

# --- the v2 driver on the unified tree of this machine --------------------------------------

UNIFIED = cgroups.unified_root()
needs_unified = pytest.mark.skipif(UNIFIED is None, reason="no cgroup v2 tree on this machine")


@pytest.fixture
def v2_group():
    group = cgroups.CgroupV2(f"minidocker-test/{os.getpid()}", UNIFIED)
    yield group
    group.destroy()
    assert not group.exists() and not (UNIFIED / "minidocker-test").exists()


@needs_unified
@pytest.mark.parametrize("driver", ["v2-unified"])
def test_v2_driver_create_join_freeze_kill_destroy(v2_group, driver):
    v2_group.create()
    sleeper = os.fork()
    if sleeper == 0:
        while True:
            time.sleep(1)
    try:
        v2_group.add_process(sleeper)
        assert v2_group.pids() == [sleeper]
        assert f"0::/minidocker-test/{os.getpid()}" in Path(f"/proc/{sleeper}/cgroup").read_text()
        v2_group.freeze()
        assert "frozen 1" in (v2_group.path / "cgroup.events").read_text()
        v2_group.thaw()
        assert "frozen 0" in (v2_group.path / "cgroup.events").read_text()
        v2_group.kill_all()
        assert os.waitpid(sleeper, 0)[1] == signal.SIGKILL
        assert v2_group.pids() == []
    finally:
        try:
            os.kill(sleeper, signal.SIGKILL)
            os.waitpid(sleeper, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@needs_unified
@pytest.mark.parametrize("driver", ["v2-unified"])
def test_v2_driver_limits_need_v2_controllers(v2_group, driver):
    v2_group.create()
    if {"memory", "pids"} <= v2_group.controllers():  # a v2-only machine: the real thing
        v2_group.set_limits(Limits(memory=64 * 2**20, pids_limit=10))
        assert (v2_group.path / "memory.max").read_text().strip() == str(64 * 2**20)
        assert (v2_group.path / "pids.max").read_text().strip() == "10"
    else:  # hybrid: the controllers live in v1 — the classroom-VM run covers this path
        with pytest.raises(OSError, match="controllers memory, pids are not available"):
            v2_group.set_limits(Limits(memory=64 * 2**20, pids_limit=10))
        pytest.skip("needs v2 controllers: runs for real on a v2-only machine (classroom VM)")
