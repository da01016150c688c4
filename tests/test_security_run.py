"""Stage 9 through the CLI, on the real kernel: what a container's root may still do.

The container reports its own evidence (``/proc/self/status``: CapEff, Seccomp, NoNewPrivs),
and every escape of the table (minidocker/viz/security.py) is *tried* from inside a default
container, where the kernel must refuse it, and from a ``--privileged`` one, where most of them
work. Nothing here may change the lab host: the probes that would (sysrq, modules, the clock)
are harmless by construction or not run under ``--privileged``, and a test checks that the lab
host's hostname survived them all.
"""

import ctypes
import json
import os
import socket

import pytest

from minidocker import kernel
from minidocker.security import capabilities
from minidocker.viz import security as table

from .helpers import RUNTIMES, cli_on_runtime

DOCKER_CAPEFF = "00000000a80425fb"
LAB_HOSTNAME = socket.gethostname()


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request):
    """Every check of this module holds for minidocker's own runtime and for runc's."""
    return request.param


@pytest.fixture
def md(runtime):
    return cli_on_runtime(runtime)


def status(md, *flags: str) -> dict[str, str]:
    """``/proc/self/status`` of ``cat`` run in a container with ``flags``."""
    result = md("run", "--rm", *flags, "busybox", "cat", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    return dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)


def sh(md, *flags: str, script: str):
    return md("run", "--rm", *flags, "busybox", "sh", "-c", script)


# --- capabilities, no_new_privs, seccomp, users -------------------------------------------------

def test_a_default_container_has_dockers_capabilities(md):
    seen = status(md)
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == DOCKER_CAPEFF
    assert seen["CapInh"] == seen["CapAmb"] == "0000000000000000"
    assert set(capabilities.decode(seen["CapEff"])) == capabilities.DOCKER_DEFAULT


def test_cap_drop_all_leaves_nothing(md):
    seen = status(md, "--cap-drop", "ALL")
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == "0000000000000000"


def test_cap_add_sys_admin_gives_it_and_lifts_the_mount_rule(md):
    seen = status(md, "--cap-add", "SYS_ADMIN")
    assert capabilities.decode(seen["CapEff"]) == sorted(
        capabilities.DOCKER_DEFAULT | {"CAP_SYS_ADMIN"}, key=lambda n: capabilities.BY_NAME[n].number)
    result = sh(md, "--cap-add", "SYS_ADMIN",
                script="mkdir /tmp/m && mount -t tmpfs none /tmp/m && echo mounted")
    assert result.stdout.strip() == "mounted", result.stderr


def test_cap_drop_chown_stops_chown(md):
    result = sh(md, "--cap-drop", "CHOWN", script="chown 1 /tmp")
    assert result.returncode != 0 and "Operation not permitted" in result.stderr
    assert sh(md, script="chown 1 /tmp && echo ok").stdout.strip() == "ok"


def test_seccomp_is_on_by_default_and_no_new_privs_off(md):
    seen = status(md)
    assert (seen["Seccomp"], seen["Seccomp_filters"], seen["NoNewPrivs"]) == ("2", "1", "0")


def test_no_new_privileges(md):
    seen = status(md, "--security-opt", "no-new-privileges")
    assert (seen["NoNewPrivs"], seen["Seccomp"]) == ("1", "2")


def test_seccomp_unconfined_has_no_filter_but_keeps_the_capabilities(md):
    seen = status(md, "--security-opt", "seccomp=unconfined")
    assert (seen["Seccomp"], seen["CapEff"]) == ("0", DOCKER_CAPEFF)


def test_a_json_profile_that_blocks_mkdir(md, tmp_path):
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}]}))
    result = sh(md, "--security-opt", f"seccomp={profile}",
                script="touch /tmp/file && echo touched; mkdir /tmp/dir")
    assert result.stdout.strip() == "touched"
    assert "can't create directory '/tmp/dir': Operation not permitted" in result.stderr
    assert result.returncode == 1


def test_user_runs_as_that_uid_with_no_capabilities(md):
    result = sh(md, "-u", "1000:1000", script="id; grep -E '^(CapEff|CapBnd)' /proc/self/status")
    lines = result.stdout.splitlines()
    assert lines[0] == "uid=1000 gid=1000"
    assert lines[1:] == ["CapEff:\t0000000000000000", f"CapBnd:\t{DOCKER_CAPEFF}"]


def test_group_add_gives_supplementary_groups(md):
    result = sh(md, "-u", "1000:1000", "--group-add", "555", "--group-add", "10",
                script="id; grep ^Groups /proc/self/status")
    assert result.stdout.splitlines() == ["uid=1000 gid=1000 groups=10,555", "Groups:\t10 555 "]


# --- the escape table: default refuses, --privileged mostly allows -----------------------------

ROWS = table.escapes()
NAMES = [row.name for row in ROWS]
DEFAULT = {"mount": "EPERM", "module": "EPERM", "sysctl": "EROFS", "sysrq": "EROFS",
           "hostname": "EPERM", "host-process": "ESRCH", "cgroupfs": "EPERM",
           "mknod-root": "EACCES", "mknod-dev": None, "userns": "EPERM",
           "mountns": "EPERM", "kernel-log": "EPERM", "clock": "EPERM"}
# None: the machine decides, for each runtime (table.device_guard: EPERM or EROFS)
PRIVILEGED = {"mount": {"works"}, "module": {"ENOSYS", "ENOEXEC"},  # past the permission check
              "sysctl": {"works"}, "sysrq": {"works"}, "hostname": {"works"},
              "host-process": {"ESRCH"},  # a PID namespace is not a privilege
              "cgroupfs": {"works"}, "mknod-root": {"works"}, "mknod-dev": {"works"},
              "userns": {"works"}, "mountns": {"works"}, "kernel-log": {"works"}}


@pytest.fixture(scope="module")
def default_attempts(runtime):
    return table.try_escapes("--runtime", runtime, rows=ROWS)


@pytest.fixture(scope="module")
def privileged_attempts(runtime):
    return table.try_escapes("--runtime", runtime, "--privileged", rows=ROWS)


def needs_a_disk(name):
    if name.startswith("mknod") and table.host_block_device() is None:
        pytest.skip("no block device of this machine opens, even for root here")


def test_every_escape_has_an_expectation():
    assert set(NAMES) <= set(DEFAULT)
    assert set(DEFAULT) - set(NAMES) <= {"sysrq"}  # only kernels with magic SysRq have it


@pytest.mark.parametrize("name", NAMES)
def test_a_default_container_cannot(name, default_attempts, runtime):
    needs_a_disk(name)
    attempt = default_attempts[name]
    expected = DEFAULT[name] or table.device_guard(runtime).errno
    assert attempt.verdict == expected, attempt.output


@pytest.mark.parametrize("name", [n for n in NAMES if n != "clock"])
def test_a_privileged_container_can(name, privileged_attempts):
    needs_a_disk(name)
    attempt = privileged_attempts[name]
    assert attempt.verdict in PRIVILEGED[name], attempt.output


def test_the_clock_is_never_tried_with_privileges(privileged_attempts):
    assert "clock" not in privileged_attempts
    assert "would change the host" in table.escape_table({}, privileged_attempts).text()


def test_the_lab_host_is_unchanged_by_the_escapes(default_attempts, privileged_attempts):
    assert socket.gethostname() == LAB_HOSTNAME
    assert default_attempts["hostname"].verdict == "EPERM"


def test_the_device_mechanism_matches_this_machine(md, runtime):
    """v1 (and hybrid): the devices cgroup refuses the open; v2 only: runc's eBPF program
    refuses it, minidocker's own runtime mounts /dev read-only."""
    mounts = sh(md, script="grep ' /dev ' /proc/self/mountinfo").stdout.split()
    options = mounts[5].split(",")
    assert options[0] == ("ro" if table.device_guard(runtime).dev_readonly else "rw")


def test_privileged_sees_the_hosts_devices(md):
    disk = table.host_block_device()
    if disk is None:
        pytest.skip("no block device of this machine opens, even for root here")
    name = os.path.basename(disk[0])
    assert name in sh(md, "--privileged", script="ls /dev").stdout.split()
    assert name not in sh(md, script="ls /dev").stdout.split()
    read = sh(md, "--privileged", script=f"head -c 16 {disk[0]} | wc -c")
    assert read.returncode == 0 and read.stderr == "", read.stderr


def test_privileged_writable_sys_and_no_masks(md):
    script = "awk '$5 == \"/sys\" {print $6}' /proc/self/mountinfo; wc -c < /proc/timer_list"
    default = sh(md, script=script).stdout.split()
    privileged = sh(md, "--privileged", script=script).stdout.split()
    assert default[0].split(",")[0] == "ro" and default[1] == "0"
    assert privileged[0].split(",")[0] == "rw" and int(privileged[1]) > 0


# --- devices ------------------------------------------------------------------------------------

def test_device_flag_gives_one_device_and_no_other(md):
    result = sh(md, "--device", "/dev/null:/dev/mynull",
                script="echo hi > /dev/mynull && echo written; ls /dev")
    assert result.stdout.splitlines()[0] == "written"
    assert "mynull" in result.stdout.split() and "loop0" not in result.stdout.split()


def test_device_flag_lets_that_device_open(md):
    disk = table.host_block_device()
    if disk is None:
        pytest.skip("no block device of this machine opens, even for root here")
    path, major, minor = disk
    given = sh(md, "--device", f"{path}:/dev/xdisk:r",
               script="head -c 16 /dev/xdisk > /dev/null && echo opened")
    assert given.stdout.strip() == "opened", given.stderr
    mknod = f"mknod /dev/xdisk b {major} {minor} && head -c 16 /dev/xdisk > /dev/null"
    refused = sh(md, script=mknod)
    assert refused.returncode != 0


# --- shared namespaces ----------------------------------------------------------------------------

IPC_KEY = 0x6D696E69  # "mini"


def make_sysv_segment(pid: int) -> None:
    """Create a System V shared memory segment in the IPC namespace of ``pid`` (from a forked
    child that joins it: shmget(2) is all busybox lacks here)."""
    child = os.fork()
    if child == 0:
        try:
            fd = os.open(f"/proc/{pid}/ns/ipc", os.O_RDONLY)
            kernel.setns(fd, kernel.CLONE_NEWIPC)
            libc = ctypes.CDLL(None, use_errno=True)
            ok = libc.shmget(IPC_KEY, 4096, 0o1000 | 0o600) >= 0  # IPC_CREAT | rw-------
            os._exit(0 if ok else 1)
        finally:
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0


def pid_of(md, name: str) -> int:
    return int(md("inspect", "-f", "{{.State.Pid}}", name).stdout)


def test_ipc_container_shares_system_v_ipc(md, containers):
    first = containers.run_d("--ipc", "shareable", "busybox", "sleep", "30")
    make_sysv_segment(pid_of(md, first))
    key = f"{IPC_KEY:10d}"
    shared = sh(md, "--ipc", f"container:{first}",
                script="readlink /proc/self/ns/ipc; cat /proc/sysvipc/shm")
    own = sh(md, script="readlink /proc/self/ns/ipc; cat /proc/sysvipc/shm")
    first_ns = md("exec", first, "readlink", "/proc/self/ns/ipc").stdout.strip()
    assert shared.stdout.splitlines()[0] == first_ns != own.stdout.splitlines()[0]
    assert key in shared.stdout and key not in own.stdout


def test_ipc_container_shares_dev_shm_like_docker(md, containers):
    first = containers.run_d("--ipc", "shareable", "busybox", "sh", "-c",
                             "echo hello > /dev/shm/note; sleep 30")
    result = sh(md, "--ipc", f"container:{first}", script="cat /dev/shm/note")
    assert result.stdout.strip() == "hello"


def test_pid_container_sees_the_other_containers_processes(md, containers):
    first = containers.run_d("busybox", "sleep", "31")
    result = md("run", "--rm", "--pid", f"container:{first}", "busybox", "ps", "-o", "pid,args")
    assert "    1 sleep 31" in result.stdout.splitlines()


def test_pid_host_sees_the_lab_hosts_processes_but_cannot_read_them(md):
    me = os.getpid()
    result = sh(md, "--pid", "host", script=f"ps -o pid | grep -qx ' *{me}' && echo seen; "
                f"cat /proc/{me}/environ")
    assert result.stdout.splitlines()[0] == "seen"
    assert "Permission denied" in result.stderr  # ptrace access mode: no CAP_SYS_PTRACE
    privileged = sh(md, "--pid", "host", "--privileged",
                    script=f"tr '\\0' '\\n' < /proc/{me}/environ | grep -c ^PATH=")
    assert privileged.stdout.strip() == "1"  # CAP_SYS_PTRACE: the host's secrets are open


def test_uts_host_shares_the_hostname_but_cannot_change_it(md):
    assert md("run", "--rm", "--uts", "host", "busybox", "hostname").stdout.strip() \
        == LAB_HOSTNAME
    refused = md("run", "--rm", "--uts", "host", "busybox", "hostname", "escaped")
    assert "Operation not permitted" in refused.stderr
    assert socket.gethostname() == LAB_HOSTNAME
