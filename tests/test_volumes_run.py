"""Stage 7 through ``run``: volumes as containers see them. Data in a named volume outlives its
container; ``:ro`` makes the kernel refuse writes; ``--volumes-from`` shares another
container's mounts (the data-container pattern); ``rm -v`` takes anonymous volumes only; a new
named volume is seeded with what the image has at its mount point."""

import json
import subprocess

import pytest

from minidocker.container import records

from .conftest import MINIDOCKER
from .test_lifecycle import inspect


def volume_names(md) -> set[str]:
    return set(md("volume", "ls", "-q").stdout.split())


def test_a_named_volume_outlives_its_container(md, containers):
    first = containers.name()
    assert md("run", "--name", first, "-v", "kept:/data", "busybox", "sh", "-c",
              "echo from-first > /data/f").returncode == 0
    assert md("rm", "-v", first).returncode == 0  # -v: anonymous volumes only
    assert "kept" in volume_names(md)
    result = md("run", "--rm", "-v", "kept:/data", "busybox", "cat", "/data/f")
    assert result.stdout == "from-first\n"
    assert md("volume", "rm", "kept").returncode == 0


def test_volume_rm_waits_for_the_containers_lock(md):
    """volume rm looks for the volume's users under the containers lock, which a create holds
    from making its volumes to saving its record: held here (as by a create), the rm waits, so
    it never removes a volume that a container is being created with."""
    assert md("volume", "create", "vrm-wait").returncode == 0
    with records.all_locked():
        rm = subprocess.Popen([*MINIDOCKER, "volume", "rm", "vrm-wait"], stdout=subprocess.PIPE,
                              text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            rm.wait(timeout=1)
        assert "vrm-wait" in md("volume", "ls", "-q").stdout.split()
    assert (rm.wait(timeout=60), rm.stdout.read()) == (0, "vrm-wait\n")


def test_a_bind_volume_of_the_local_driver_is_its_device(md, tmp_path):
    """``volume create -o type=none -o o=bind -o device=DIR``: the volume is DIR (read-only
    for every container with ``-o o=bind,ro``)."""
    created = md("volume", "create", "-o", "type=none", "--opt", "o=bind", "-o",
                 f"device={tmp_path}", "bound")
    assert created.stdout == "bound\n", created.stderr
    try:
        assert json.loads(md("volume", "inspect", "bound").stdout)[0]["Options"] == {
            "type": "none", "o": "bind", "device": str(tmp_path)}
        result = md("run", "--rm", "-v", "bound:/data", "busybox", "sh", "-c",
                    "echo from-ctr > /data/f")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "f").read_text() == "from-ctr\n"
        md("volume", "create", "-o", "type=none", "-o", "o=bind,ro", "-o", f"device={tmp_path}",
           "bound-ro")
        refused = md("run", "--rm", "-v", "bound-ro:/data", "busybox", "sh", "-c",
                     "cat /data/f; echo x > /data/g")  # the driver's ro holds for every mount
        assert refused.stdout == "from-ctr\n" and "Read-only file system" in refused.stderr
    finally:
        md("volume", "rm", "bound", "bound-ro")
    assert (tmp_path / "f").exists() and not (tmp_path / "g").exists()  # rm leaves the files


def test_read_only_mounts_refuse_writes(md, containers, tmp_path):
    (tmp_path / "f").write_text("host\n")
    script = "cat /ro/f; echo x > /ro/g; echo named > /named/g; echo rc=$?"
    result = md("run", "--rm", "-v", f"{tmp_path}:/ro:ro", "-v", "rovol:/named:ro", "busybox",
                "sh", "-c", script)
    assert result.stdout == "host\nrc=1\n"
    assert result.stderr.count("Read-only file system") == 2
    assert not (tmp_path / "g").exists()
    rw = md("run", "--rm", "-v", f"{tmp_path}:/rw", "busybox", "sh", "-c", "echo y > /rw/g")
    assert rw.returncode == 0 and (tmp_path / "g").read_text() == "y\n"
    md("volume", "rm", "rovol")


def test_volumes_from_shares_every_mount_and_can_make_it_read_only(md, containers):
    data = containers.name("data")  # the data-container pattern: created, never run
    assert md("create", "--name", data, "-v", "/shared", "-v", "dbdata:/db", "busybox",
              "true").returncode == 0
    writer = md("run", "--rm", "--volumes-from", data, "busybox", "sh", "-c",
                "echo one > /shared/f; echo two > /db/f")
    assert writer.returncode == 0, writer.stderr
    reader = md("run", "--rm", "--volumes-from", f"{data}:ro", "busybox", "sh", "-c",
                "cat /shared/f /db/f; touch /shared/x 2>&1; touch /db/x 2>&1")
    assert reader.stdout.splitlines()[:2] == ["one", "two"]
    assert reader.stdout.count("Read-only file system") == 2
    mounts = json.loads(inspect(md, data, "{{json .Mounts}}"))
    assert {m["Destination"] for m in mounts} == {"/shared", "/db"}
    anonymous = next(m["Name"] for m in mounts if m["Destination"] == "/shared")

    # rm -v: the anonymous volume goes with its container, the named one stays
    assert md("rm", "-v", data).returncode == 0
    names = volume_names(md)
    assert anonymous not in names and "dbdata" in names
    md("volume", "rm", "dbdata")


def test_an_anonymous_volume_still_used_elsewhere_survives_rm_v(md, containers):
    data = containers.name("data")
    md("create", "--name", data, "-v", "/shared", "busybox", "true")
    user = containers.name("user")
    md("create", "--name", user, "--volumes-from", data, "busybox", "true")
    anonymous = json.loads(inspect(md, data, "{{json .Mounts}}"))[0]["Name"]
    assert md("rm", "-v", data).returncode == 0
    assert anonymous in volume_names(md)  # the other container still mounts it
    assert md("rm", "-v", user).returncode == 0
    assert anonymous not in volume_names(md)


def test_rm_without_v_keeps_anonymous_volumes(md, containers):
    name = containers.name()
    md("create", "--name", name, "-v", "/scratch", "busybox", "true")
    anonymous = json.loads(inspect(md, name, "{{json .Mounts}}"))[0]["Name"]
    assert md("rm", name).returncode == 0
    assert anonymous in volume_names(md)
    assert md("volume", "rm", anonymous).returncode == 0


def test_run_rm_removes_anonymous_volumes_but_keeps_named_ones(md):
    before = volume_names(md)
    result = md("run", "--rm", "-v", "/anon", "-v", "stays:/named", "busybox", "sh", "-c",
                "echo a > /anon/f; echo n > /named/f")
    assert result.returncode == 0
    assert volume_names(md) == before | {"stays"}
    md("volume", "rm", "stays")


def test_a_new_named_volume_is_seeded_from_the_image(md, containers):
    source = containers.name()
    md("run", "--name", source, "busybox", "sh", "-c",
       "mkdir -p /seed/sub && echo from-image > /seed/sub/f")
    assert md("commit", source, "seeded:1").returncode == 0
    containers.images.append("seeded:1")
    first = md("run", "--rm", "-v", "seedvol:/seed", "seeded:1", "sh", "-c",
               "cat /seed/sub/f; echo mine > /seed/mine")
    assert first.stdout == "from-image\n"
    # seeded once: what the first container wrote stays, nothing is copied again
    again = md("run", "--rm", "-v", "seedvol:/seed", "busybox", "ls", "/seed")
    assert again.stdout.split() == ["mine", "sub"]
    bind_untouched = md("run", "--rm", "--tmpfs", "/seed", "seeded:1", "ls", "-A", "/seed")
    assert bind_untouched.stdout == ""  # tmpfs mounts are not seeded
    md("volume", "rm", "seedvol")


def test_mount_flag_bind_and_tmpfs(md, tmp_path):
    result = md("run", "--rm", "--mount", f"type=bind,source={tmp_path},target=/b,readonly",
                "--mount", "type=tmpfs,target=/t", "busybox", "cat", "/proc/mounts")
    mounts = {f[1]: (f[2], f[3].split(",")) for f in map(str.split, result.stdout.splitlines())}
    assert "ro" in mounts["/b"][1]
    assert mounts["/t"][0] == "tmpfs" and "rw" in mounts["/t"][1]


def test_bad_volume_specs_fail_before_anything_is_made(md):
    before = volume_names(md)
    for spec in ["", "a:b:c:d", "x:relative", "/host:/c:bogus"]:
        result = md("run", "--rm", "-v", spec, "busybox", "true")
        assert result.returncode == 125, (spec, result.stderr)
        assert "Traceback" not in result.stderr
    missing = md("run", "--rm", "--volumes-from", "no-such", "busybox", "true")
    assert missing.returncode != 0 and "No such container" in missing.stderr
    assert volume_names(md) == before
    assert md("ps", "-a", "-q").stdout == ""


@pytest.mark.parametrize("network", ["bridge", "none", "host"])
def test_binds_over_etc_and_top_level_dirs_work_in_every_network_mode(md, tmp_path, network):
    """A bind over /etc hides the init layer's mount points for hosts, resolv.conf and
    hostname: they are made in the bound directory, as runc does (Docker's behaviour); a bind
    over /etc/hosts itself wins over the generated file."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = md("run", "--rm", "--network", network, "-v", f"{empty}:/etc", "busybox",
                "ls", "-A", "/etc")
    assert result.returncode == 0, result.stderr
    expected = set() if network == "none" else {"hostname", "hosts", "resolv.conf"}
    assert set(result.stdout.split()) == expected
    hosts = tmp_path / "hosts"
    hosts.write_text("10.9.8.7 mine\n")
    result = md("run", "--rm", "--network", network, "-v", f"{hosts}:/etc/hosts:ro", "busybox",
                "cat", "/etc/hosts")
    assert (result.returncode, result.stdout) == (0, "10.9.8.7 mine\n"), result.stderr
    result = md("run", "--rm", "--network", network, "--init", "-v", f"{empty}:/sbin",
                "-v", f"{empty}:/opt", "busybox", "sh", "-c", "ls /sbin/docker-init /opt")
    assert result.returncode == 0, result.stderr
