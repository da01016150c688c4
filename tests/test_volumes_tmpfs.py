"""Stage 7: a volume of the local driver that is a filesystem of its own (``-o type=tmpfs``).

The tmpfs is mounted on the volume's ``_data`` when its first container starts, shared by the
containers that run meanwhile, and unmounted (its data gone) when the last one stops — as in
Docker. The count of users is derived from the records and the mount table, so a monitor
killed with SIGKILL leaves nothing mounted. Checked in the kernel's mount table. (The docker
CLI through minidocker's daemon, side by side with dockerd: test_daemon_vs_dockerd.py.)"""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from minidocker import localdriver, volumes
from minidocker.container import records

from .conftest import MINIDOCKER, TIMEOUT_SCALE
from .helpers import eventually

TMPFS = ["-o", "type=tmpfs", "-o", "device=tmpfs"]
WAIT = "while [ ! -e /data/stop ]; do sleep 0.1; done"  # ends when a file says so


def tmpfs_on(volume: str) -> list[str]:
    """The mount options of each mount on the volume's _data, from /proc/self/mountinfo."""
    data = os.path.realpath(f"{os.environ['MINIDOCKER_ROOT']}/volumes/{volume}/_data")
    with open("/proc/self/mountinfo") as f:
        return [line.split(" - ")[1].split()[2] for line in f if line.split()[4] == data]


@pytest.fixture
def volume(md, request):
    name = request.node.name.replace("_", "-").strip("-")[:40]
    yield name
    md("volume", "rm", "-f", name)


def test_o_splits_as_mount_8_does():
    assert localdriver.mount_flags("size=64m,noexec,uid=1000,rw,nosuid") == (
        localdriver.FLAG_WORDS["noexec"] | localdriver.FLAG_WORDS["nosuid"], "size=64m,uid=1000")


def test_the_kernel_names_the_option_it_refuses():
    """fsopen(2) and fsconfig(2): each option alone on a filesystem context, mounting nothing."""
    assert localdriver.refused_option("tmpfs", "size=1m,bogus=1,mode=700") == (
        "bogus=1", "tmpfs: Unknown parameter 'bogus'")
    assert localdriver.refused_option("tmpfs", "size=64q") == (
        "size=64q", "tmpfs: Bad value for 'size'")
    assert localdriver.refused_option("tmpfs", "size=1m,uid=0") is None


def test_two_containers_share_the_tmpfs_and_its_data_goes_with_the_last(md, containers,
                                                                         volume):
    assert md("volume", "create", *TMPFS, "-o", "o=size=1m,uid=1000,mode=750",
              volume).returncode == 0
    first, second = containers.name(), containers.name()
    starts = [subprocess.Popen([*MINIDOCKER, "run", "-d", "--name", name, "-v",
                                f"{volume}:/data", "busybox", "sh", "-c", WAIT],
                               stdout=subprocess.DEVNULL) for name in (first, second)]
    assert [start.wait(timeout=60 * TIMEOUT_SCALE) for start in starts] == [0, 0]  # two starts at once
    assert [o.removesuffix(",inode64") for o in tmpfs_on(volume)] == [  # (a TMPFS_INODE64 kernel)
        "rw,size=1024k,mode=750,uid=1000"]  # one tmpfs, mounted once
    md("exec", first, "sh", "-c", "echo shared > /data/f")
    seen = md("exec", second, "sh", "-c", "cat /data/f; stat -c '%u %a' /data").stdout
    assert seen == "shared\n1000 750\n"  # not seeded: the owner and mode are the o= ones
    assert md("volume", "rm", volume).returncode != 0  # in use
    assert md("stop", "-t", "0", first).returncode == 0
    assert tmpfs_on(volume) != []  # the second still runs on it
    md("exec", second, "touch", "/data/stop")
    eventually(lambda: md("inspect", "-f", "{{.State.Status}}", second).stdout == "exited\n")
    assert tmpfs_on(volume) == []
    again = md("run", "--rm", "-v", f"{volume}:/data", "busybox", "ls", "-A", "/data")
    assert (again.returncode, again.stdout) == (0, "")  # a new, empty tmpfs
    assert tmpfs_on(volume) == []
    md("rm", first, second)
    assert md("volume", "rm", volume).returncode == 0


def test_a_bad_o_option_is_named_and_nothing_stays_mounted(md, volume):
    md("volume", "create", *TMPFS, "-o", "o=size=1m,bogus=1", volume)
    result = md("run", "--rm", "-v", f"{volume}:/data", "busybox", "true")
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "'bogus=1'" in result.stderr and "Unknown parameter" in result.stderr
    assert f"minidocker volume rm {volume}" in result.stderr
    assert tmpfs_on(volume) == []


def test_a_killed_monitor_leaves_no_tmpfs(md, containers, volume):
    md("volume", "create", *TMPFS, volume)
    name = containers.run_d("-v", f"{volume}:/data", "busybox", "sh", "-c", WAIT)
    record = records.find(name)
    assert len(tmpfs_on(volume)) == 1
    os.kill(record.State["MonitorPid"], signal.SIGKILL)
    eventually(lambda: not os.path.exists(f"/proc/{record.State['Pid']}"))
    assert md("ps", "-a").returncode == 0  # the next look at the record finds the monitor gone
    assert tmpfs_on(volume) == []
    md("rm", name)


def test_a_mount_no_running_container_uses_is_replaced_at_the_next_start(md, volume):
    """What a monitor killed with SIGKILL between its mount and "running" leaves (made here by
    hand): the next start finds no running user and mounts a new, empty tmpfs."""
    md("volume", "create", *TMPFS, volume)
    stale = volumes.get_volume(volume)
    localdriver.mount(volume, stale.Options, stale.Mountpoint)
    Path(stale.Mountpoint, "left").write_text("by a crash\n")
    again = md("run", "--rm", "-v", f"{volume}:/data", "busybox", "ls", "-A", "/data")
    assert (again.returncode, again.stdout) == (0, "")
    assert tmpfs_on(volume) == []


def test_a_userns_container_leaves_a_shared_tmpfs_owned_as_its_o_says(md, containers, volume):
    """``--userns private`` joins a tmpfs another container runs on: root inside sees it as
    nobody's (mode 1777 lets it write), as with Docker's userns-remap, and never takes it over
    from the container it shares it with."""
    md("volume", "create", *TMPFS, "-o", "o=size=1m", volume)
    keeper = containers.run_d("-v", f"{volume}:/data", "busybox", "sh", "-c", WAIT)
    remapped = md("run", "--rm", "--userns", "private", "-v", f"{volume}:/data", "busybox",
                  "sh", "-c", "stat -c '%u %a' /data && touch /data/mine")
    assert (remapped.returncode, remapped.stdout) == (0, "65534 1777\n")
    assert md("exec", keeper, "stat", "-c", "%u", "/data").stdout == "0\n"
    md("rm", "-f", keeper)


def test_mount_volume_opt_creates_the_volume_with_its_options(md, volume):
    """``--mount ...,volume-opt=K=V`` makes a missing volume with the local driver's options
    (a value with commas quoted whole, as the docker CLI's CSV wants); an existing volume
    stays as it is."""
    spec = (f"type=volume,source={volume},target=/x,volume-driver=local,volume-opt=type=tmpfs,"
            'volume-opt=device=tmpfs,"volume-opt=o=size=1m,uid=1000",volume-label=tier=cache')
    seen = md("run", "--rm", "--mount", spec, "busybox", "sh", "-c",
              "stat -c %u /x; grep ' /x ' /proc/mounts")
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.startswith("1000\ntmpfs /x tmpfs ") and "size=1024k" in seen.stdout
    shown = json.loads(md("volume", "inspect", volume).stdout)[0]
    assert (shown["Options"], shown["Labels"]) == (
        {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}, {"tier": "cache"})
    again = md("run", "--rm", "--mount", spec.replace("uid=1000", "uid=7"), "busybox",
               "stat", "-c", "%u", "/x")
    assert again.stdout == "1000\n"  # as Docker: the volume exists, its options stay


def test_cp_into_a_stopped_container_uses_a_tmpfs_of_its_own(md, containers, volume,
                                                              tmp_path):
    md("volume", "create", *TMPFS, volume)
    name = containers.name()
    assert md("create", "--name", name, "-v", f"{volume}:/data", "busybox").returncode == 0
    (tmp_path / "f").write_text("copied\n")
    assert md("cp", str(tmp_path / "f"), f"{name}:/data/f").returncode == 0
    data = f"{os.environ['MINIDOCKER_ROOT']}/volumes/{volume}/_data"
    assert tmpfs_on(volume) == [] and os.listdir(data) == []  # gone with cp's namespace
