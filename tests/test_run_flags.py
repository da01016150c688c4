"""The ``run`` flags Docker users reach for after the basics (issue 21): each one seen where it
takes effect — from inside the container (``ulimit -n``, /proc/sys, ``df /dev/shm``) or in the
kernel's own files on the host (the container's cgroup) — and in ``inspect`` under Docker's
field names."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from minidocker import cgroups
from minidocker.cgroups.limits import block_device_number
from minidocker.container.records import find

from .conftest import MINIDOCKER, TIMEOUT_SCALE
from .helpers import attached

DRIVER = cgroups.for_container("x").version
v1_only = pytest.mark.skipif(DRIVER != "v1", reason="the v1 files; the v2 run (classroom VM) "
                             "reads memory.low, io.weight and io.max instead")
DISK = next((d for d in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0")
             if block_device_number(d)), None)


def inspect(md, name: str, template: str):
    result = md("inspect", "-f", f"{{{{json {template}}}}}", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def cgroup_file(name: str, controller: str, filename: str) -> str:
    """A file of the container's own cgroup, read from the host."""
    cgroup = find(name).cgroup()
    directory = cgroup.path(controller) if DRIVER == "v1" else cgroup.path
    return (directory / filename).read_text()


# --- the process: rlimits, sysctls, /dev/shm, OOM score, domain name -------------------------

def test_ulimit_is_set_before_exec_and_holds_for_exec_too(md, containers):
    result = md("run", "--rm", "--ulimit", "nofile=512:1024", "--ulimit", "nproc=77",
                "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u")
    assert result.stdout.split() == ["512", "1024", "77"], result.stderr
    name = containers.run_d("--ulimit", "nofile=300", "--oom-score-adj", "200", "busybox",
                            "sleep", "30")
    result = md("exec", name, "sh", "-c", "ulimit -n; cat /proc/self/oom_score_adj")
    assert result.stdout.split() == ["300", "200"], result.stderr


def test_namespaced_sysctls_are_written_inside_and_not_on_the_host(md):
    host_shmmax = Path("/proc/sys/kernel/shmmax").read_text()
    result = md("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1",
                "--sysctl", "kernel.shmmax=123456789", "--network", "none", "busybox", "sh",
                "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax; "
                      "echo 0 > /proc/sys/net/ipv4/ip_forward || echo read-only")
    assert result.stdout.split()[:2] == ["1", "123456789"], result.stderr
    assert "read-only" in result.stdout  # written before /proc/sys was made read-only
    assert Path("/proc/sys/kernel/shmmax").read_text() == host_shmmax


@pytest.mark.parametrize("args, words", [
    (["--sysctl", "vm.swappiness=1"], "not namespaced"),
    (["--sysctl", "kernel.hostname=x"], "not namespaced"),
    (["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], "shared net namespace"),
    (["--ipc", "host", "--sysctl", "kernel.shmmax=1"], "shared ipc namespace"),
    (["--ipc", "host", "--sysctl", "fs.mqueue.msg_max=20"], "shared ipc namespace"),
])
def test_a_sysctl_that_would_change_the_host_is_refused_with_the_reason(md, args, words):
    result = md("run", "--rm", *args, "busybox", "true")
    assert result.returncode == 125 and words in result.stderr, result.stderr


def test_shm_size_sizes_the_dev_shm_tmpfs(md):
    result = md("run", "--rm", "--shm-size", "16m", "busybox", "df", "-k", "/dev/shm")
    assert result.stdout.splitlines()[1].split()[1] == "16384", result.stdout


def test_oom_score_adj_and_domainname_are_seen_inside(md, containers):
    name = containers.run_d("--oom-score-adj", "300", "--domainname", "example.org",
                            "busybox", "sleep", "30")
    result = md("exec", name, "sh", "-c", "cat /proc/1/oom_score_adj; "
                                          "cat /proc/sys/kernel/domainname")
    assert result.stdout.split() == ["300", "example.org"], result.stderr
    host = inspect(md, name, ".HostConfig")
    assert (host["OomScoreAdj"], host["ShmSize"]) == (300, 64 * 2**20)
    assert inspect(md, name, ".Config.Domainname") == "example.org"


def test_ulimits_and_sysctls_show_in_inspect_under_dockers_names(md):
    result = md("create", "--ulimit", "nofile=1024:2048", "--sysctl", "net.core.somaxconn=512",
                "busybox", "true")
    cid = result.stdout.strip()
    try:
        host = inspect(md, cid, ".HostConfig")
        assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
        assert host["Sysctls"] == {"net.core.somaxconn": "512"}
    finally:
        md("rm", cid)


# --- the cgroup: memory policy, io, cpuset, namespace and parent ----------------------------

@v1_only
def test_memory_reservation_swappiness_and_oom_kill_disable_reach_the_memory_cgroup(
        md, containers):
    name = containers.run_d("-m", "64m", "--memory-reservation", "20m",
                            "--memory-swappiness", "10", "--oom-kill-disable",
                            "busybox", "sleep", "30")
    assert cgroup_file(name, "memory", "memory.soft_limit_in_bytes").strip() == "20971520"
    assert cgroup_file(name, "memory", "memory.swappiness").strip() == "10"
    assert "oom_kill_disable 1" in cgroup_file(name, "memory", "memory.oom_control")
    host = inspect(md, name, ".HostConfig")
    assert (host["MemoryReservation"], host["MemorySwappiness"], host["OomKillDisable"]) == \
        (20971520, 10, True)


@v1_only
@pytest.mark.skipif(DISK is None, reason="no block device to throttle")
def test_blkio_weight_and_device_throttles_reach_the_blkio_cgroup(md, containers):
    name = containers.run_d("--blkio-weight", "300", "--device-read-bps", f"{DISK}:1mb",
                            "--device-write-bps", f"{DISK}:2mb", "busybox", "sleep", "30")
    from minidocker.cgroups.v1 import weight_file

    weight = weight_file(find(name).cgroup().path("blkio"))
    if weight:  # else the kernel has no proportional I/O scheduler: discarded, as Docker does
        assert weight.read_text().split()[-1] == "300"
    number = block_device_number(DISK)
    assert cgroup_file(name, "blkio", "blkio.throttle.read_bps_device").strip() == \
        f"{number} 1048576"
    assert cgroup_file(name, "blkio", "blkio.throttle.write_bps_device").strip() == \
        f"{number} 2097152"
    assert inspect(md, name, ".HostConfig.BlkioDeviceReadBps") == \
        [{"Path": DISK, "Rate": 1048576}]


def test_cpuset_mems_reaches_the_cpuset_cgroup(md, containers):
    name = containers.run_d("--cpuset-mems", "0", "busybox", "sleep", "30")
    assert cgroup_file(name, "cpuset", "cpuset.mems").strip() == "0"
    result = md("exec", name, "grep", "Mems_allowed_list", "/proc/self/status")
    assert result.stdout.split()[-1] == "0"


@pytest.mark.skipif(DRIVER != "v2", reason="v2 only: memory.low, io.weight, io.max (the "
                    "classroom VM); this machine runs the v1 driver")
def test_v2_memory_low_and_io_files(md, containers):
    name = containers.run_d("--memory-reservation", "20m", "--blkio-weight", "500",
                            "busybox", "sleep", "30")
    assert cgroup_file(name, "", "memory.low").strip() == "20971520"
    assert cgroup_file(name, "", "io.weight").split()[-1] == str(cgroups.limits.io_weight(500))


def test_cgroupns_host_keeps_the_hosts_cgroup_namespace(md):
    script = "readlink /proc/self/ns/cgroup"
    host = os.readlink("/proc/self/ns/cgroup")
    shared = md("run", "--rm", "--cgroupns", "host", "busybox", "sh", "-c", script)
    private = md("run", "--rm", "--cgroupns", "private", "busybox", "sh", "-c", script)
    assert shared.stdout.strip() == host, shared.stderr
    assert private.stdout.strip() not in ("", host), private.stderr


def test_cgroup_parent_places_the_cgroup_and_leaves_the_parent(md, containers):
    parent = f"md-parent-{os.getpid()}"
    name = containers.run_d("--cgroup-parent", f"/{parent}", "busybox", "sleep", "30")
    cgroup = find(name).cgroup()
    assert all(d.parent.name == parent and d.is_dir() for d in cgroup.directories())
    pid = find(name).State["Pid"]
    assert f"/{parent}/{find(name).Id}" in Path(f"/proc/{pid}/cgroup").read_text()
    assert inspect(md, name, ".HostConfig.CgroupParent") == f"/{parent}"
    md("rm", "-f", name)
    assert not any(d.exists() for d in cgroup.directories())
    parents = {d.parent for d in cgroup.directories()}
    assert all(p.is_dir() for p in parents)  # may be shared with others: Docker leaves it
    for directory in parents:
        directory.rmdir()


# --- metadata and logging -----------------------------------------------------------------

def test_labels_from_flags_and_a_file_show_in_inspect(md, containers, tmp_path):
    labels = tmp_path / "labels"
    labels.write_text("# team labels\ntier=web\nowner=ada\n")
    name = containers.run_d("--label", "owner=grace", "-l", "solo", "--label-file",
                            str(labels), "busybox", "sleep", "30")
    assert inspect(md, name, ".Config.Labels") == {"tier": "web", "owner": "grace", "solo": ""}


def test_log_driver_none_keeps_nothing_and_logs_refuses(md, containers):
    name = containers.name()
    result = md("run", "--name", name, "--log-driver", "none", "busybox", "echo", "hello")
    assert result.stdout == "hello\n"  # the terminal still gets it
    assert not Path(find(name).LogPath).exists()
    refused = md("logs", name)
    assert refused.returncode == 1
    assert "configured logging driver does not support reading" in refused.stderr
    assert inspect(md, name, ".HostConfig.LogConfig.Type") == "none"


def test_log_driver_local_is_read_back_by_logs(md, containers):
    name = containers.name()
    md("run", "--name", name, "--log-driver", "local", "busybox", "echo", "kept")
    assert md("logs", name).stdout == "kept\n"


def test_pull_missing_and_never_use_the_local_image_and_always_asks_the_registry(md):
    for policy in ("missing", "never"):
        assert md("run", "--rm", "--pull", policy, "busybox", "true").returncode == 0
    result = md("run", "--rm", "--pull", "always", "busybox", "true")  # no way out of here
    assert result.returncode == 125 and "Pulling it failed" in result.stderr
    assert "Unable to find image" not in result.stderr  # it is here: pulled again, as asked
    result = md("run", "--rm", "--pull", "never", "nosuch:1", "true")
    assert result.returncode == 125 and "Pulling" not in result.stderr  # never: no pull


def test_platform_of_this_machine_is_accepted(md):
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    assert md("run", "--rm", "--platform", f"linux/{arch}", "busybox", "true").returncode == 0
    other = "linux/s390x"
    result = md("run", "--rm", "--platform", other, "busybox", "true")
    assert result.returncode == 125 and "does not emulate" in result.stderr


# --- a static address on a user network ----------------------------------------------------

@pytest.fixture
def user_network(md):
    name = f"flags-{os.getpid()}"
    created = md("network", "create", "--subnet", "10.231.0.0/24", name)
    assert created.returncode == 0, created.stderr
    yield name
    assert md("network", "rm", name).returncode == 0


def test_ip_and_mac_address_on_a_user_network_are_the_containers(md, user_network,
                                                                  containers):
    # (the network first: it is removed after the containers on it)
    name = containers.run_d("--network", user_network, "--ip", "10.231.0.42",
                            "--mac-address", "02:aa:bb:cc:dd:ee", "busybox", "sleep", "30")
    inside = md("exec", name, "ip", "addr", "show", "eth0").stdout
    assert "inet 10.231.0.42/24" in inside and "link/ether 02:aa:bb:cc:dd:ee" in inside
    settings = inspect(md, name, ".NetworkSettings.Networks")[user_network]
    assert settings["IPAMConfig"] == {"IPv4Address": "10.231.0.42"}
    assert (settings["IPAddress"], settings["MacAddress"]) == ("10.231.0.42", "02:aa:bb:cc:dd:ee")
    taken = md("run", "--rm", "--network", user_network, "--ip", "10.231.0.42", "busybox", "true")
    assert taken.returncode == 125 and "Address already in use" in taken.stderr
    outside = md("run", "--rm", "--network", user_network, "--ip", "10.232.0.9", "busybox",
                 "true")
    assert outside.returncode == 125 and "does not belong" in outside.stderr


def test_the_new_fields_round_trip_through_dockers_json():
    from minidocker.cgroups import Limits
    from minidocker.container.config import HostConfig

    limits = Limits(memory_swappiness=0, oom_kill_disable=True, cpuset_mems="0",
                    blkio_device_write_bps=(("/dev/vda", 1024),), memory_reservation=2**23)
    host = HostConfig(Resources=limits, Ulimits=[{"Name": "nofile", "Soft": 1, "Hard": 2}],
                      Sysctls={"net.ipv4.ip_forward": "1"}, ShmSize=2**24, OomScoreAdj=-5,
                      CgroupParent="/x", IPAMConfig={"IPv4Address": "10.0.0.2"})
    data = json.loads(json.dumps(host.to_dict()))
    assert data["MemorySwappiness"] == 0 and data["BlkioWeight"] == 0
    assert data["BlkioDeviceWriteBps"] == [{"Path": "/dev/vda", "Rate": 1024}]
    again = HostConfig.from_dict(data)
    assert again.Resources == limits
    assert (again.Ulimits, again.Sysctls, again.ShmSize, again.OomScoreAdj, again.CgroupParent,
            again.IPAMConfig) == (host.Ulimits, host.Sysctls, 2**24, -5, "/x", host.IPAMConfig)
    assert HostConfig.from_dict(HostConfig().to_dict()).Resources == Limits()


# --- the terminal: signals and detach keys ------------------------------------------------

@pytest.mark.parametrize("flags, heard", [([], True), (["--sig-proxy=false"], False)])
def test_sig_proxy_false_keeps_signals_from_pid_1(containers, flags, heard):
    script = 'trap "echo heard" USR1; echo ready; sleep 2 & wait; echo end'
    run = subprocess.Popen([*MINIDOCKER, "run", "--name", containers.name(), *flags,
                            "busybox", "sh", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline() == "ready\n"
        os.kill(run.pid, signal.SIGUSR1)
        rest = run.stdout.read()
        assert run.wait(timeout=10 * TIMEOUT_SCALE) == 0
    finally:
        run.kill()
        run.wait()
    assert ("heard" in rest) is heard and "end" in rest


def test_attach_detaches_with_its_own_detach_keys(md, containers):
    name = containers.run_d("-i", "busybox", "sh", "-c", 'while read l; do echo "got $l"; done')
    with attached("--detach-keys", "ctrl-x,x", name) as client:
        time.sleep(0.5)  # connected
        for typed in (b"ctrl-p ctrl-q \x10\x11 and ctrl-x", b"\x18", b" go in\n"):
            client.stdin.write(typed)  # Docker's keys are plain keys now; a lone ctrl-x is
            client.stdin.flush()        # held until the next key says it is not the escape
            time.sleep(0.2)
        assert client.stdout.readline() == b"got ctrl-p ctrl-q \x10\x11 and ctrl-x\x18 go in\n"
        client.stdin.write(b"\x18x")
        client.stdin.flush()
    assert inspect(md, name, ".State.Status") == "running"
    refused = md("attach", "--detach-keys", "ctrl-1", name)
    assert refused.returncode == 1 and "invalid --detach-keys 'ctrl-1'" in refused.stderr


def test_a_containers_cgroup_parent_is_kept_from_create_whoever_asks_later(md):
    """Made with one $MINIDOCKER_CGROUP_PARENT, updated, paused and removed by commands run
    with another: each finds the cgroup where create put it, and none is left behind."""
    parent = f"{os.environ['MINIDOCKER_CGROUP_PARENT']}-made"
    made = subprocess.run([*MINIDOCKER, "run", "-d", "--network", "none", "busybox", "sleep",
                           "300"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MINIDOCKER_CGROUP_PARENT": parent})
    assert made.returncode == 0, made.stderr
    record = find(made.stdout.strip())
    try:
        assert record.CgroupParent == parent and record.HostConfig.CgroupParent == ""
        assert f"/{parent}/{record.Id}" in Path(f"/proc/{record.State['Pid']}/cgroup").read_text()
        assert md("update", "--pids-limit", "42", record.Id).returncode == 0
        directory = cgroups.CGROUP_ROOT / ("pids" if DRIVER == "v1" else "") / parent / record.Id
        assert (directory / "pids.max").read_text().strip() == "42"
        counted = md("stats", "--no-stream", "--format", "{{.PIDs}}", record.Id)
        assert counted.stdout.strip() == "1", counted.stderr  # sleep, counted in its cgroup
        assert md("pause", record.Id).returncode == 0
        assert inspect(md, record.Id, ".State.Status") == "paused"
    finally:
        assert md("rm", "-f", record.Id).returncode == 0
    assert not any(d.exists() for d in record.cgroup().directories())
    assert [p for p in cgroups.CGROUP_ROOT.glob(f"*/{parent}")] == []  # its parent went too
