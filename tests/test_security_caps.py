"""Stage 9: capabilities and no_new_privs, checked on real processes from the outside."""

import os

import pytest

from minidocker import security
from minidocker.errors import MinidockerError
from minidocker.security import capabilities
from minidocker.security.capabilities import DOCKER_DEFAULT, all_capabilities, resolve

BUSYBOX = "/bin/busybox"


def run(argv, options, switch_user=None, setup=None) -> tuple[int, str]:
    """Fork, apply ``options`` as a container would just before exec, exec ``argv``; return
    its exit code and what it printed (stdout and stderr together)."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_fd)
            os.dup2(write_fd, 1)
            os.dup2(write_fd, 2)
            if setup:
                setup()
            security.apply(options, switch_user)
            os.execv(argv[0], argv)
        except BaseException as exc:
            os.write(2, f"child failed: {exc!r}\n".encode())
        os._exit(127)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), b"".join(chunks).decode()


def status_of(options, **kwargs) -> dict[str, str]:
    code, out = run(["/bin/cat", "/proc/self/status"], options, **kwargs)
    assert code == 0, out
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def no_seccomp(**kwargs) -> security.SecurityOptions:
    return security.SecurityOptions(seccomp=None, **kwargs)


# --- names and Docker's rules -----------------------------------------------------------------

def test_docker_default_set_is_docker_mask():
    assert capabilities.mask(DOCKER_DEFAULT) == 0xA80425FB
    assert capabilities.decode("00000000a80425fb") == [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
        "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]


def test_every_dropped_capability_names_its_threat():
    for cap in capabilities.CAPABILITIES:
        assert cap.threat and cap.name.startswith("CAP_")
    assert "mount" in capabilities.BY_NAME["CAP_SYS_ADMIN"].threat
    assert "kernel module" in capabilities.BY_NAME["CAP_SYS_MODULE"].threat
    assert "CAP_SYS_ADMIN" in capabilities.table()


def test_resolve_follows_docker():
    assert resolve() == DOCKER_DEFAULT
    assert resolve(cap_drop=["ALL"], cap_add=["net_admin"]) == {"CAP_NET_ADMIN"}
    assert resolve(cap_add=["all"], cap_drop=["CAP_SYS_ADMIN"]) == \
        all_capabilities() - {"CAP_SYS_ADMIN"}
    assert resolve(cap_drop=["chown", "Cap_Kill"]) == DOCKER_DEFAULT - {"CAP_CHOWN", "CAP_KILL"}
    assert resolve(cap_add=["SYS_TIME"], cap_drop=["SYS_TIME"]) == DOCKER_DEFAULT | {
        "CAP_SYS_TIME"}  # drop first, then add: add wins
    assert resolve(cap_drop=["ALL"], privileged=True) == all_capabilities()


def test_unknown_capability_is_a_sentence():
    with pytest.raises(MinidockerError, match="unknown capability 'CAP_FLY'.*capabilities"):
        resolve(cap_add=["CAP_FLY"])


# --- on a real process ------------------------------------------------------------------------

def test_default_set_after_exec_is_dockers():
    status = status_of(no_seccomp())
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert status[field] == "00000000a80425fb", field
    assert status["CapInh"] == status["CapAmb"] == "0000000000000000"
    assert status["NoNewPrivs"] == "0"


def test_cap_drop_all_leaves_nothing():
    status = status_of(no_seccomp(capabilities=resolve(cap_drop=["ALL"])))
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[field] == "0000000000000000", field


def test_non_root_user_keeps_only_the_bounding_set():
    def become_nobody():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    status = status_of(no_seccomp(), switch_user=become_nobody)
    assert status["Uid"].split()[0] == "65534"
    assert status["CapEff"] == status["CapPrm"] == "0000000000000000"
    assert status["CapBnd"] == "00000000a80425fb"


def test_no_new_privs_shows_in_status():
    assert status_of(no_seccomp(no_new_privs=True))["NoNewPrivs"] == "1"


def test_dropping_chown_stops_chown(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    argv = [BUSYBOX, "chown", "1234", str(target)]
    code, out = run(argv, no_seccomp(capabilities=resolve(cap_drop=["CHOWN"])))
    assert code != 0 and "Operation not permitted" in out
    code, out = run(argv, no_seccomp())
    assert code == 0, out
    assert target.stat().st_uid == 1234


def test_new_mount_namespace_needs_sys_admin():
    code, out = run(["/usr/bin/unshare", "-m", BUSYBOX, "true"], no_seccomp())
    assert code != 0 and "Operation not permitted" in out
    with_admin = no_seccomp(capabilities=resolve(cap_add=["SYS_ADMIN"]))
    assert run(["/usr/bin/unshare", "-m", BUSYBOX, "true"], with_admin) == (0, "")


def test_status_table_for_notebooks():
    shown = security.status()
    assert shown.startswith("effective") and "no_new_privs 0" in shown
