"""Stage 0: the syscall wrappers say which call failed, with the kernel's errno."""

import errno
import os

import pytest

from minidocker import kernel


def test_errno_becomes_oserror_naming_the_call():
    with pytest.raises(OSError) as caught:
        kernel.pivot_root("/nonexistent", "/nonexistent/old")
    assert caught.value.errno == errno.ENOENT
    assert "pivot_root('/nonexistent', '/nonexistent/old')" in str(caught.value)


def test_unknown_flag_is_einval():
    with pytest.raises(OSError, match=r"unshare\(") as caught:
        kernel.unshare(0x1)  # not a namespace flag (CSIGNAL bits)
    assert caught.value.errno == errno.EINVAL


def test_sethostname_and_mount_in_a_child_namespace():
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        kernel.unshare(kernel.CLONE_NEWUTS | kernel.CLONE_NEWNS)
        kernel.sethostname("stage0")
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        kernel.mount("tmpfs", "/mnt", "tmpfs", kernel.MS_NOSUID, "size=1m")
        seen = f"{os.uname().nodename} {os.path.ismount('/mnt')}"
        kernel.umount2("/mnt", kernel.MNT_DETACH)
        os.write(write_fd, seen.encode())
        os._exit(0)
    os.close(write_fd)
    assert os.read(read_fd, 100) == b"stage0 True"
    os.waitpid(child, 0)
    assert os.uname().nodename != "stage0"
    assert not os.path.ismount("/mnt")


def test_prctl_answers_for_the_calling_process():
    cap_sys_admin = 21
    assert kernel.prctl(kernel.PR_CAPBSET_READ, cap_sys_admin) == 1  # root has it
    assert kernel.prctl(kernel.PR_GET_NO_NEW_PRIVS) == 0
