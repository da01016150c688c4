"""The one parent/child sync protocol (stage 1): fork, do a step, report the value or the step
that failed. Then each site that uses it, made to fail on purpose: the message names the step."""

import errno
import fcntl
import os
import pty
import select
import signal
import socket
import subprocess

import pytest

from minidocker import doctor, kernel, namespaces, rootfs
from minidocker.container import commit, records, sharing
from minidocker.errors import MinidockerError
from minidocker.namespaces import ExecFailed, StepFailed
from tests.conftest import MINIDOCKER, TIMEOUT_SCALE


def a_dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


# --- the helper -----------------------------------------------------------------------------

def _new_hostname(report, name):
    report.step("unshare the UTS namespace")
    kernel.unshare(kernel.CLONE_NEWUTS)
    report.step("sethostname")
    socket.sethostname(name)
    return {"hostname": socket.gethostname(), "pid": os.getpid()}


def test_in_child_returns_the_value_and_leaves_the_parent_untouched():
    value = namespaces.in_child("rename a host", _new_hostname, "elsewhere")
    assert value["hostname"] == "elsewhere" and value["pid"] != os.getpid()
    assert socket.gethostname() != "elsewhere"


def _fail_at_open_tree(report):
    report.step("join the mount namespace")
    report.step("open_tree")
    raise PermissionError(errno.EPERM, "Operation not permitted")


def failure_of(task, work) -> tuple[str, str, int]:
    """What ``in_child`` raised: (message, step, exit code)."""
    with pytest.raises(StepFailed) as failed:
        namespaces.in_child(task, work)
    assert isinstance(failed.value, MinidockerError)  # the CLI prints it as one line
    return str(failed.value), failed.value.step, failed.value.exit_code


def test_an_exception_in_the_child_names_the_step_that_failed():
    assert failure_of("share /dev/shm of process 1", _fail_at_open_tree) == (
        "cannot share /dev/shm of process 1: open_tree: [Errno 1] Operation not permitted",
        "open_tree", 125)


def _refuse_with_a_code(report):
    raise MinidockerError("no such thing", 3)


def test_a_minidocker_error_in_the_child_keeps_its_exit_code():
    assert failure_of("look", _refuse_with_a_code) == ("cannot look: fork: no such thing",
                                                       "fork", 3)


def _die(report):
    report.step("stand still")
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_child_killed_before_it_reported_is_an_error_naming_the_signal_and_step():
    assert failure_of("wait", _die) == (
        "cannot wait: stand still: the child process was killed by SIGKILL before it reported",
        "stand still", 125)


def _report_fd_flags(report):
    return fcntl.fcntl(report.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_the_report_pipe_is_close_on_exec():
    assert namespaces.in_child("look at the report pipe", _report_fd_flags) == fcntl.FD_CLOEXEC


def test_a_command_run_through_the_helper_gets_only_stdio():
    here = os.getpid()  # enter: fork, join (nothing to join here), exec
    result = namespaces.enter(here, ["ls", "/proc/self/fd"], [])
    assert result.stdout.split() == ["0", "1", "2", "3"]  # 3: the directory ls reads


def test_enter_a_missing_command_is_docker_exec_failure():
    with pytest.raises(ExecFailed, match='exec: "nosuch": executable file not found') as e:
        namespaces.enter(os.getpid(), ["nosuch"], [])
    assert (e.value.exit_code, e.value.step) == (127, "execve")


def test_spawn_failures_are_the_same_error_type():
    def broken_setup():
        raise OSError(errno.ENOENT, "No such file or directory")
    with pytest.raises(StepFailed, match="container setup failed: .*No such file") as e:
        namespaces.spawn(["true"], {"uts"}, setup=broken_setup)
    assert e.value.step == "set up the container"


# --- every site that forks and reports, made to fail ------------------------------------------

def test_sharing_dev_shm_of_a_dead_process_names_the_join():
    pid = a_dead_pid()
    with pytest.raises(StepFailed) as failed:
        sharing.mount_from_namespace(pid, "/dev/shm", "/mnt")
    assert str(failed.value).startswith(f"cannot share /dev/shm of process {pid}: join the "
                                        "mount namespace: [Errno 2]")


def test_sharing_a_path_that_is_not_there_names_open_tree():
    with pytest.raises(StepFailed, match=f"of process {os.getpid()}: open_tree: "):
        sharing.mount_from_namespace(os.getpid(), "/no/such/path", "/mnt")


def test_mounting_a_userns_root_for_a_dead_process_names_the_join(tmp_path):
    pid = a_dead_pid()
    with pytest.raises(StepFailed, match=f"cannot mount the root of the user-namespace "
                       f"container of process {pid}: join the mount namespace: "):
        sharing.mount_from_outside(pid, None, lambda merged: None)


def test_the_breakout_demo_names_the_step_that_failed(tmp_path):
    (tmp_path / ".escape").write_text("a file where the climb makes its directory")
    with pytest.raises(StepFailed, match="cannot try the chroot breakout: climb out: "
                       r"\[Errno 17\] File exists"):
        rootfs.breakout_demo(str(tmp_path), "chroot")


def test_export_with_a_layer_gone_names_the_mount(md, containers, tmp_path):
    name = containers.name()
    assert md("create", "--name", name, "busybox", "true").returncode == 0
    record = records.find(name)
    (record.directory / "upper").rmdir()
    with pytest.raises(StepFailed, match=f"cannot export {name}: mount the layers: "):
        with open(tmp_path / "direct.tar", "wb") as output:
            commit.export(name, output)
    result = md("export", "-o", str(tmp_path / "out.tar"), name)
    assert result.returncode == 1  # docker export: 1 for any failure
    assert f"minidocker: cannot export {name}: mount the layers: " in result.stderr


def test_exec_in_a_missing_workdir_names_the_chdir(md, containers):
    name = containers.run_d("busybox", "sleep", "30")
    result = md("exec", "-w", "/nowhere", name, "true")
    assert result.returncode == 126
    assert result.stderr.startswith(f"minidocker: cannot exec in container {name}: change to "
                                    "the working directory: /nowhere: No such file or "
                                    "directory (give -w a directory that exists")
    missing = md("exec", name, "nosuch")
    assert (missing.returncode, missing.stderr) == (
        127, 'minidocker: exec: "nosuch": executable file not found in $PATH\n')


def test_exec_with_a_terminal_still_gets_its_own_and_its_exit_code(containers):
    name = containers.run_d("busybox", "sleep", "30")
    master, slave = pty.openpty()
    client = subprocess.Popen([*MINIDOCKER, "exec", "-t", name, "sh", "-c", "tty; exit 3"],
                              stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while select.select([master], [], [], 10)[0]:
            seen += os.read(master, 4096)
    except OSError:  # EIO: every slave end is closed
        pass
    os.close(master)
    assert client.wait(timeout=10 * TIMEOUT_SCALE) == 3
    assert b"/dev/pts/0" in seen, seen


def test_doctor_tries_each_namespace_in_a_child():
    assert doctor.check_namespace("uts").detail == "works"
