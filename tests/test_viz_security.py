"""The escape table's plumbing (minidocker/viz/security.py) without containers: the script,
its parsing, the verdicts, and the BPF trace the notebook prints."""

import errno

from minidocker import kernel
from minidocker.security import seccomp, syscalls
from minidocker.security.capabilities import DOCKER_DEFAULT
from minidocker.viz import security
from minidocker.viz.security import Attempt, Escape


def test_script_marks_each_probe_and_skips_the_dangerous_ones_when_privileged():
    rows = (Escape("a", "t", "true", "x"), Escape("b", "t", "false", "x", privileged_probe=""),
            Escape("c", "t", "probe", "x", privileged_probe="harmless"))
    assert "( false )" in security.script(rows)
    privileged = security.script(rows, privileged=True)
    assert "( false )" not in privileged and "( harmless )" in privileged
    assert "( probe )" not in privileged


def test_parse_and_verdicts():
    output = ("@@ a\n@@ rc 0\n@@ b\nmount: permission denied (are you root?)\n@@ rc 255\n"
              "@@ c\ndate: can't set date: Operation not permitted\nSat Jan 1\n@@ rc 0\n"
              "@@ d\nsh: can't create /proc/sys/x: Read-only file system\n@@ rc 1\n"
              "@@ e\nodd\n@@ rc 3\n")
    found = security.parse(output)
    assert {name: a.verdict for name, a in found.items()} == {
        "a": "works", "b": "EPERM", "c": "EPERM", "d": "EROFS", "e": "fails (odd)"}


def test_escape_table_rows():
    rows = (Escape("a", "t", "true", "mech"), Escape("b", "t", "x", "mech2", privileged_probe=""))
    table = security.escape_table({"a": Attempt("", 1), "b": Attempt("Permission denied", 1)},
                                  {"a": Attempt("", 0)}, rows)
    assert table.rows == [("a", "fails (no message)", "works", "mech"),
                          ("b", "EACCES", "not tried (would change the host)", "mech2")]


def test_trace_follows_one_call_through_the_default_filter():
    program = seccomp.compile(seccomp.default_profile(), DOCKER_DEFAULT)
    arch = kernel.AUDIT_ARCH_X86_64 if syscalls.NATIVE == "x86_64" else \
        kernel.AUDIT_ARCH_AARCH64
    mount = security.trace(program, syscalls.number(syscalls.NATIVE, "mount"), arch)
    assert mount[0].endswith("# which architecture (ABI) is calling?")
    assert f"return ERRNO({errno.EPERM})" in mount[-1]
    getpid = security.trace(program, syscalls.number(syscalls.NATIVE, "getpid"), arch)
    assert "return ALLOW" in getpid[-1]
    assert "return KILL_PROCESS" in security.trace(program, 1, 0x40000003)[-1]
    unshare = syscalls.number(syscalls.NATIVE, "unshare")
    assert "ERRNO" in security.trace(program, unshare, arch, (kernel.CLONE_NEWUSER,))[-1]
    assert "ALLOW" in security.trace(program, unshare, arch, (kernel.CLONE_NEWNS,))[-1]


def test_every_escape_names_its_threat_and_mechanism():
    for row in security.escapes():
        assert row.threat and row.stopped_by and row.probe
