"""User namespaces through the CLI, on the real kernel: root in the container, uid 100000 on
the host (minidocker/security/userns.py).

Each claim is checked where the kernel shows it: the container's own ``id`` and
``/proc/self/uid_map``; from the host, ``/proc/<pid>/status`` of its processes (PID 1 and an
exec'd one) and the owner of the files it wrote in its upper dir. Then what root-inside still
cannot do even with every capability and no seccomp filter, because the host's objects (its
hostname, its kernel, its disks, its processes) belong to the host's user namespace.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import MINIDOCKER, TIMEOUT_SCALE

USERNS = ("--userns", "private")
ALL_POWER = ("--cap-add", "ALL", "--security-opt", "seccomp=unconfined")  # only the userns left
LAB_HOSTNAME = socket.gethostname()


def state_root() -> Path:
    return Path(os.environ["MINIDOCKER_ROOT"])


def sh(md, *flags: str, script: str):
    return md("run", "--rm", *flags, "busybox", "sh", "-c", script)


def inspect(md, template: str, name: str) -> str:
    result = md("inspect", "-f", template, name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def status_ids(pid: int) -> tuple[str, str]:
    """The real uid and gid of a host process, from its ``/proc/<pid>/status``."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return fields["Uid"].split()[0], fields["Gid"].split()[0]


def id_map(pid: int | str, name: str = "uid_map") -> list[str]:
    with open(f"/proc/{pid}/{name}") as f:
        return f.read().split()


def upper_dir(md, name: str) -> Path:
    return state_root() / "containers" / inspect(md, "{{.Id}}", name) / "upper"


def pid1(md, name: str) -> int:
    return int(inspect(md, "{{.State.Pid}}", name))


def eventually(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def processes_beside(pid: int, cmdline: str) -> list[int]:
    """Host PIDs of the processes in ``pid``'s PID namespace whose command line is
    ``cmdline`` (found by ``/proc/*/ns/pid``, as the host sees them)."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().replace(b"\0", b" ").decode().strip() == cmdline:
                    found.append(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


# --- root inside, 100000 outside ---------------------------------------------------------------

def test_inside_it_is_root_through_the_map(md):
    result = sh(md, *USERNS, script="id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0", "0", "100000", "65536", "0", "100000", "65536"]


def test_from_the_host_pid_1_is_uid_100000(md, containers):
    name = containers.run_d(*USERNS, "busybox", "sleep", "60")
    pid = pid1(md, name)
    assert status_ids(pid) == ("100000", "100000")
    assert id_map(pid) == id_map(pid, "gid_map") == ["0", "100000", "65536"]
    assert id_map("self") == ["0", "0", "4294967295"]  # the host's own: the identity
    assert inspect(md, "{{.HostConfig.UsernsMode}} {{.HostConfig.UsernsFiles}}", name) == \
        "private chown"


def test_a_default_container_has_no_user_namespace(md, containers):
    name = containers.run_d("busybox", "sleep", "60")
    assert status_ids(pid1(md, name)) == ("0", "0")
    assert os.readlink(f"/proc/{pid1(md, name)}/ns/user") == os.readlink("/proc/self/ns/user")
    assert inspect(md, "[{{.HostConfig.UsernsMode}}][{{.HostConfig.UsernsFiles}}]", name) == "[][]"


def test_files_made_inside_belong_to_host_uid_100000(md, containers):
    name = containers.run_d(*USERNS, "busybox", "sleep", "60")
    made = md("exec", name, "sh", "-c", "echo hi > /made-inside && mkdir /tmp/dir && "
              "stat -c '%u:%g' /made-inside")
    assert made.stdout.strip() == "0:0", made.stderr  # root's, as the container sees it
    by_user = md("exec", "-u", "1000:1000", name, "sh", "-c", "echo hi > /tmp/by-1000")
    assert by_user.returncode == 0, by_user.stderr
    upper = upper_dir(md, name)
    owners = {path: (os.lstat(upper / path).st_uid, os.lstat(upper / path).st_gid)
              for path in ("", "made-inside", "tmp/dir", "tmp/by-1000")}
    assert owners == {"": (100000, 100000), "made-inside": (100000, 100000),
                      "tmp/dir": (100000, 100000), "tmp/by-1000": (101000, 101000)}


def test_root_inside_can_write_the_images_etc_through_shifted_copies(md, containers):
    result = sh(md, *USERNS, script="stat -c '%u' /etc/passwd && echo x >> /etc/passwd && "
                "echo written")
    assert result.stdout.split() == ["0", "written"], result.stderr
    name = containers.run_d(*USERNS, "busybox", "sleep", "60")
    layers = inspect(md, '{{range .Config.LowerDirs}}{{.}} {{end}}', name).split()
    assert layers
    for layer in map(Path, layers):
        copy = state_root() / "userns" / "100000-65536" / layer.name
        assert os.lstat(layer / "etc" / "passwd").st_uid == 0  # the image: never touched
        assert os.lstat(copy / "etc" / "passwd").st_uid == 100000  # its shifted copy
        assert os.lstat(copy / "etc").st_uid == 100000


def test_exec_joins_the_user_namespace(md, containers):
    name = containers.run_d(*USERNS, "busybox", "sleep", "60")
    pid = pid1(md, name)
    inside = md("exec", name, "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert inside.stdout.split() == ["0", "0", "100000", "65536"], inside.stderr
    # an exec'd process, seen from the host while it runs
    execd = subprocess.Popen([*MINIDOCKER, "exec", name, "sleep", "31"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found = eventually(lambda: processes_beside(pid, "sleep 31"))
        assert len(found) == 1
        assert status_ids(found[0]) == ("100000", "100000")
        assert os.readlink(f"/proc/{found[0]}/ns/user") == os.readlink(f"/proc/{pid}/ns/user")
        ps = subprocess.run(["ps", "-o", "uid=", "-p", str(found[0])], capture_output=True,
                            text=True)
        assert ps.stdout.strip() == "100000"
    finally:
        md("exec", name, "kill", "-9", "-1")  # every process but PID 1: the sleep ends
        execd.wait(timeout=10 * TIMEOUT_SCALE)


def test_uidmap_chooses_the_host_ids(md, containers):
    name = containers.run_d(*USERNS, "--uidmap", "0:200000:65536", "busybox", "sleep", "60")
    pid = pid1(md, name)
    assert status_ids(pid) == ("200000", "200000")
    assert id_map(pid) == ["0", "200000", "65536"]
    assert md("exec", name, "id", "-u").stdout.strip() == "0"
    assert inspect(md, "{{.HostConfig.UsernsMap.outside}}", name) == "200000"
    md("exec", name, "touch", "/made-inside")
    assert os.lstat(upper_dir(md, name) / "made-inside").st_uid == 200000


def test_user_1000_inside_is_host_uid_101000(md, containers):
    name = containers.run_d(*USERNS, "-u", "1000", "busybox", "sleep", "60")
    assert status_ids(pid1(md, name))[0] == "101000"
    assert md("exec", name, "id", "-u").stdout.strip() == "1000"


# --- what root inside still cannot do ----------------------------------------------------------

def test_root_inside_has_power_over_its_own_namespaces_only(md):
    # every capability and no seccomp filter: a tmpfs mount works (the container's mount
    # namespace belongs to its user namespace) ...
    result = sh(md, *USERNS, *ALL_POWER,
                script="grep CapEff /proc/self/status; mkdir /tmp/m && "
                "mount -t tmpfs none /tmp/m && echo mounted")
    assert result.stdout.splitlines()[-1] == "mounted", result.stderr
    assert int(result.stdout.split()[1], 16) != 0


def test_root_inside_cannot_change_the_hosts_hostname(md):
    # the host's UTS namespace belongs to the host's user namespace; the probe sets the name
    # it already has, so that even a success would change nothing
    result = sh(md, *USERNS, *ALL_POWER, "--uts", "host", script=f"hostname {LAB_HOSTNAME}")
    assert result.returncode != 0
    assert "Operation not permitted" in result.stderr
    assert socket.gethostname() == LAB_HOSTNAME


def test_root_inside_cannot_load_a_module(md):
    # CAP_SYS_MODULE counts only in the initial user namespace: EPERM. A kernel built without
    # module support says ENOSYS to everyone, before any check.
    result = sh(md, *USERNS, *ALL_POWER, script="printf garbage > /tmp/x.ko && insmod /tmp/x.ko")
    assert result.returncode != 0
    assert ("Operation not permitted" in result.stderr
            or "kernel does not support requested operation" in result.stderr), result.stderr


def test_root_inside_cannot_reach_a_host_disk(md):
    root_dev = os.stat("/").st_dev
    major, minor = os.major(root_dev), os.minor(root_dev)
    # mknod(2) of a device is refused in a user namespace ...
    made = sh(md, *USERNS, *ALL_POWER, script=f"mknod /tmp/disk b {major} {minor}")
    assert made.returncode != 0 and "Operation not permitted" in made.stderr
    # ... and a host disk handed in with --device is host root's: not readable, not mountable
    disks = [f"/dev/{name}" for name in sorted(os.listdir("/sys/block"))
             if os.path.exists(f"/dev/{name}") and not name.startswith(("loop", "zram", "ram"))]
    if not disks:
        pytest.skip("no host disk in /dev to hand in")
    result = sh(md, *USERNS, *ALL_POWER, "--device", disks[0],
                script=f"head -c 16 {disks[0]} > /dev/null; echo read $?; mkdir /tmp/m; "
                f"mount -o ro {disks[0]} /tmp/m; echo mount $?")
    assert "Permission denied" in result.stderr
    assert "mount: permission denied" in result.stderr
    assert result.stdout.split() == ["read", "1", "mount", "1"]


def test_root_inside_cannot_see_host_processes(md):
    result = sh(md, *USERNS, *ALL_POWER, script=f"ls /proc | grep -c '^[0-9]'; kill -0 "
                f"{os.getpid()}")
    assert "No such process" in result.stderr
    assert int(result.stdout.split()[0]) <= 3  # sh, ls, grep: the container's own


# --- the flags ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [
    (("--userns", "bogus"), "invalid --userns mode 'bogus'"),
    (("--uidmap", "0:100000:65536"), "--uidmap needs --userns private"),
    (("--userns", "private", "--uidmap", "0:x"), "invalid --uidmap '0:x'"),
    (("--userns", "private", "--uidmap", "0:100000"), "invalid --uidmap '0:100000'"),
    (("--userns", "private", "--uidmap", "5:100000:10"), "must start at container id 0"),
    (("--userns", "private", "--uidmap", "0:0:65536"), "host id above 0"),
])
def test_bad_userns_flags_are_one_line_errors(md, flags, words):
    result = md("run", "--rm", *flags, "busybox", "true")
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr



@pytest.mark.parametrize("flags", [("--pid", "host"), ("--network", "host"), ("--privileged",)],
                         ids=["pid-host", "network-host", "privileged"])
def test_host_namespaces_and_privileged_are_refused_with_a_private_userns(md, flags):
    result = md("run", "--rm", *USERNS, *flags, "busybox", "true")
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and "doctor" not in result.stderr, result.stderr
    assert "user namespace" in result.stderr


def test_a_device_of_the_default_set_can_be_given_to_a_userns_container(md):
    result = md("run", "--rm", *USERNS, "--device", "/dev/null", "busybox", "true")
    assert result.returncode == 0, result.stderr

# --- volumes -----------------------------------------------------------------------------------

@pytest.fixture
def volume(md, request):
    name = f"userns-{request.node.name[5:30]}".replace("_", "-")
    assert md("volume", "create", name).returncode == 0
    yield name
    md("volume", "rm", "-f", name)


def test_a_volume_seeded_from_the_image_follows_the_map(md, volume):
    # the image's /etc is copied from the shifted layers: host uid 100000, root inside
    result = sh(md, *USERNS, "-v", f"{volume}:/etc", script="echo x > /etc/new && echo ok")
    assert result.stdout.strip() == "ok", result.stderr
    data = state_root() / "volumes" / volume / "_data"
    assert (os.lstat(data).st_uid, os.lstat(data / "new").st_uid) == (100000, 100000)


def test_root_inside_can_write_a_new_named_volume(md, volume):
    result = sh(md, *USERNS, "-v", f"{volume}:/data", script="echo hi > /data/f && echo ok")
    assert result.stdout.strip() == "ok", result.stderr
    data = state_root() / "volumes" / volume / "_data"
    assert (os.lstat(data).st_uid, os.lstat(data / "f").st_uid) == (100000, 100000)


def test_system_prune_collects_the_layer_copies_no_container_uses(md, containers):
    """The shifted copies outlive a ``run --rm`` (the next container of that map reuses them);
    ``system prune`` removes those that no container uses, and what a killed copier left, and
    keeps the copies of a container that exists."""
    assert sh(md, *USERNS, "--uidmap", "0:300000:65536", script="true").returncode == 0
    unused = state_root() / "userns" / "300000-65536"
    assert list(unused.iterdir())
    name = containers.run_d(*USERNS, "--uidmap", "0:400000:65536", "busybox", "sleep", "60")
    layers = inspect(md, '{{range .Config.LowerDirs}}{{.}} {{end}}', name).split()
    used = [state_root() / "userns" / "400000-65536" / Path(layer).name for layer in layers]
    abandoned = used[0].with_name(".tmp-999999999-layer")  # no such PID: a killed copier's
    abandoned.mkdir()
    pruned = md("system", "prune", "-af")
    assert pruned.returncode == 0, pruned.stderr
    assert "Deleted user namespace layer copies:" in pruned.stdout
    assert not unused.exists() and not abandoned.exists()
    assert all(copy.is_dir() for copy in used)
    assert md("exec", name, "cat", "/etc/passwd").returncode == 0
