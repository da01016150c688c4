"""Read-only all the way down (issue 19): a ``:ro`` bind copies the mounts below its source, and
each of them must be read-only too, or ``-v /:/host:ro`` writes the host's kernel settings.

These tests run in the session's private mount namespace, but ``/proc/sys`` and
``/sys/fs/cgroup`` there are the real kernel's: every write tried puts back a value that is
already there (the current core_pattern, the cgroup the process is in), so even a broken fix
would change nothing on this machine.
"""

import errno
import os

import pytest

from minidocker import kernel, rootfs

EROFS = "Read-only file system"

# Inside the container: find the cgroup this shell is in (the only cgroup.procs that lists its
# PID, since a PID namespace shows only its own processes) and "move" it there.
MOVE_INTO_OWN_CGROUP = """
procs=$(find {tree} -name cgroup.procs 2>/dev/null | xargs grep -lx $$ | head -1)
[ -n "$procs" ] || {{ echo "no cgroup.procs lists $$"; exit 3; }}
echo $$ > "$procs" && echo "cgroup: moved"
"""


def mounts_below(output: str, top: str) -> dict[str, list[str]]:
    """From ``cat /proc/mounts`` inside: {mount point: options} of ``top`` and below."""
    found = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) > 3 and (fields[1] == top or fields[1].startswith(top + "/")):
            found[fields[1]] = fields[3].split(",")
    return found


def test_a_read_only_bind_of_the_host_root_writes_nothing_below_it(md):
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    script = ("cat /host/proc/sys/kernel/core_pattern > /tmp/cp\n"
              "cat /tmp/cp > /host/proc/sys/kernel/core_pattern && echo 'core_pattern: written'\n"
              + MOVE_INTO_OWN_CGROUP.format(tree="/host/sys/fs/cgroup")
              + "head -1 /host/etc/passwd\necho ---\ncat /proc/mounts")
    result = md("run", "--rm", "-v", "/:/host:ro", "busybox", "sh", "-c", script)
    shown, _, mounts = result.stdout.partition("---\n")
    assert "written" not in shown and "moved" not in shown, result.stdout
    assert result.stderr.count(EROFS) == 2, result.stderr
    with open("/etc/passwd") as f:  # reading still works
        assert shown.splitlines()[-1] == f.readline().rstrip("\n")
    below = mounts_below(mounts, "/host")
    assert len(below) > 3 and "/host/proc" in below
    assert [point for point, options in below.items() if "ro" not in options] == []
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_pattern


def test_a_read_only_bind_of_sys_keeps_the_cgroup_tree_read_only(md):
    script = MOVE_INTO_OWN_CGROUP.format(tree="/hs/fs/cgroup") + "echo ---\ncat /proc/mounts"
    result = md("run", "--rm", "-v", "/sys:/hs:ro", "busybox", "sh", "-c", script)
    assert "moved" not in result.stdout and EROFS in result.stderr, (result.stdout,
                                                                    result.stderr)
    below = mounts_below(result.stdout.partition("---\n")[2], "/hs")
    assert "/hs/fs/cgroup" in below or "/hs/fs/cgroup/unified" in below
    assert [point for point, options in below.items() if "ro" not in options] == []


@pytest.fixture
def tree_with_submount(tmp_path):
    """``tmp_path/src`` with a tmpfs mounted at ``src/sub dir`` (a space: mountinfo escapes
    it), and one at ``src/covered/deep`` that a tmpfs on ``src/covered`` hides; all in the
    session's private mount namespace."""
    source = tmp_path / "src"
    points = [source / "sub dir", source / "covered" / "deep", source / "covered"]
    points[1].mkdir(parents=True)
    points[0].mkdir()
    for point in points:
        kernel.mount("tmpfs", str(point), "tmpfs", kernel.MS_NOEXEC, "size=1m")
    yield source
    for point in points[::2] + points[1:2]:  # the cover first, then what it hid
        kernel.umount2(str(point), kernel.MNT_DETACH)


def test_read_only_root_and_binds_behave_as_in_docker(md, tree_with_submount):
    """``--read-only``: ``/`` is read-only (and keeps nodev); a ``--tmpfs`` and a read-write
    bind stay writable, with what is mounted below the bind; a ``:ro`` bind is read-only with
    its submounts."""
    source = str(tree_with_submount)
    script = ("for p in /a /t/a /rw/a '/rw/sub dir/a' /ro/a '/ro/sub dir/a'; do "
              "touch \"$p\" 2>/dev/null && echo \"$p writable\" || echo \"$p read-only\"; done;"
              " grep ' / ' /proc/mounts")
    result = md("run", "--rm", "--read-only", "--tmpfs", "/t", "-v", f"{source}:/rw",
                "-v", f"{source}:/ro:ro", "busybox", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:6] == ["/a read-only", "/t/a writable", "/rw/a writable",
                         "/rw/sub dir/a writable", "/ro/a read-only", "/ro/sub dir/a read-only"]
    assert {"ro", "nodev"} <= set(lines[6].split()[3].split(","))


@pytest.mark.parametrize("kernel_has_it", [True, False], ids=["mount_setattr", "remounts"])
def test_add_mount_flags_reaches_every_submount(tmp_path, tree_with_submount, monkeypatch,
                                                kernel_has_it):
    """With mount_setattr(2), or (a kernel older than 5.12: ENOSYS) one remount per submount
    that a path reaches, found in mountinfo; either way the submount keeps its own flags
    (noexec here) and the original tree stays writable."""
    if not kernel_has_it:
        def enosys(*args, **kwargs):
            raise OSError(errno.ENOSYS, "mount_setattr: Function not implemented")
        monkeypatch.setattr(kernel, "mount_setattr", enosys)
    copy = tmp_path / "copy"
    copy.mkdir()
    kernel.mount(str(tree_with_submount), str(copy), None, kernel.MS_BIND | kernel.MS_REC)
    try:
        rootfs.add_mount_flags(str(copy), kernel.MS_RDONLY | kernel.MS_NOSUID)
        reached = {str(copy), str(copy / "sub dir"), str(copy / "covered")}
        assert set(rootfs.mounts_below(str(copy))) == reached  # not covered/deep
        for path in (copy / "f", copy / "sub dir" / "f", copy / "covered" / "f"):
            with pytest.raises(OSError) as refused:
                path.write_text("x")
            assert refused.value.errno == errno.EROFS
        flags = os.statvfs(copy / "sub dir").f_flag
        assert flags & os.ST_RDONLY and flags & os.ST_NOSUID and flags & os.ST_NOEXEC
        (tree_with_submount / "sub dir" / "f").write_text("the original stays writable")
    finally:
        kernel.umount2(str(copy), kernel.MNT_DETACH)


@pytest.mark.parametrize("flags", [
    ["-v", "{x}:/proc"],
    ["-v", "{x}:/proc/self/attr"],
    ["--mount", "type=bind,src={x},dst=/sys/kernel"],
    ["-v", "{x}:/sys"],
    ["--tmpfs", "/proc/sys"],
], ids=lambda flags: " ".join(flags))
def test_mounts_over_proc_and_sys_are_refused_before_anything_is_made(md, tmp_path, flags):
    missing = tmp_path / "not-made"  # -v makes a missing source: not when refused
    args = [item.format(x=missing) for item in flags]
    result = md("run", "--rm", *args, "busybox", "true")
    assert result.returncode == 125
    assert len(result.stderr.splitlines()) == 1, result.stderr
    destination = args[1].rpartition("=")[2].rpartition(":")[2]
    assert args[0] in result.stderr and f"cannot mount at {destination}:" in result.stderr
    assert not missing.exists()
    assert md("ps", "-a", "-q").stdout == ""


def test_a_file_that_lxcfs_emulates_may_be_bound_in_proc(md, tmp_path):
    uptime = tmp_path / "uptime"
    uptime.write_text("42.00 42.00\n")
    result = md("run", "--rm", "-v", f"{uptime}:/proc/uptime:ro", "busybox", "cat",
                "/proc/uptime")
    assert (result.returncode, result.stdout) == (0, "42.00 42.00\n"), result.stderr


def test_a_symlink_in_the_image_cannot_lead_a_mount_into_proc(md, containers, tmp_path):
    source = containers.name()
    assert md("run", "--name", source, "busybox", "ln", "-s", "/proc/sys", "/data").returncode == 0
    assert md("commit", source, "procsymlink:1").returncode == 0
    containers.images.append("procsymlink:1")
    result = md("run", "--rm", "-v", f"{tmp_path}:/data", "procsymlink:1", "true")
    assert result.returncode == 125
    assert "/data (through the image's symlinks): cannot mount at /proc/sys" in result.stderr
