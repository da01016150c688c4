"""The escape table's plumbing (minidocker/viz/security.py) without containers: the script,
its parsing, the verdicts, and the BPF trace the notebook prints."""

import errno
import os

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


def test_the_device_guard_follows_the_machine_and_the_runtime(monkeypatch):
    for v1 in (True, False):
        monkeypatch.setattr(security, "devices_controller", lambda v1=v1: v1)
        ours, runcs = security.device_guard(), security.device_guard("runc")
        assert runcs.errno == "EPERM" and not runcs.dev_readonly  # cgroup or eBPF: rw /dev
        assert (ours.errno, ours.dev_readonly) == (("EPERM", False) if v1 else ("EROFS", True))
        mknod_dev = next(row for row in security.escapes() if row.name == "mknod-dev")
        assert mknod_dev.stopped_by == ours.mechanism


def test_every_kernels_threats_include_sysrq_and_the_machine_rows():
    names = [row[0] for row in security.threats().rows]
    assert "sysrq" in names and set(security.MACHINE_DEPENDENT) <= set(names)


# --- the uid map of a user-namespace container (notebook 09) -------------------------------------

MAP = [(0, 100000, 65536)]


def test_uid_graph_sends_container_ids_to_host_ids_through_the_map():
    graph = security.uid_graph(MAP, processes=[(4242, "sleep", 100000), (4250, "sh", 101000)],
                               files=[("/made-inside", 100000), ("/data (a volume)", 0)])
    assert [n.id for n in graph.nodes] == [
        "process:4242", "process:4250", "file:/data (a volume)", "file:/made-inside",
        "inside:0", "inside:1000", "inside:65534", "host:0", "host:100000", "host:101000"]
    assert graph.edges == [  # each map edge comes once, with the first id that needs it
        ("inside:0", "host:100000", "+100000"), ("process:4242", "inside:0", "runs as"),
        ("inside:1000", "host:101000", "+100000"), ("process:4250", "inside:1000", "runs as"),
        ("file:/made-inside", "inside:0", "owned by"),
        ("host:0", "inside:65534", "shown as"),
        ("file:/data (a volume)", "inside:65534", "owned by")]
    assert graph.node("inside:0").label == "uid 0 (root)"
    assert graph.node("host:0").label == "uid 0 (root)"
    assert graph.node("inside:65534").kind == "unmapped"
    assert graph.node("process:4242").label == "sleep\nhost pid 4242"


def test_inside_id_follows_every_line_of_the_map():
    maps = [(0, 100000, 10), (10, 200000, 5)]
    assert [security.inside_id(n, maps) for n in (100000, 100009, 100010, 200004, 0)] == \
        [0, 9, None, 14, None]
    assert security.uid_graph(maps, files=[("f", 200001)]).edges[0] == \
        ("inside:11", "host:200001", "+199990")


def test_uid_graph_of_this_process_reads_the_identity_map():
    graph = security.live_uid_graph(os.getpid(), {"/": "/"})
    assert graph.maps == [(0, 0, 4294967295)]
    assert ("inside:0", "host:0", "+0") in graph.edges
    assert f"process:{os.getpid()}" in [n.id for n in graph.nodes]


def test_uid_digraph_has_a_box_per_namespace():
    dot = security.uid_digraph(security.uid_graph(MAP, [(1, "sleep", 100000)], [("f", 0)]))
    source = dot.source
    assert "cluster_inside" in source and "cluster_host" in source
    assert "uid_map: 0 100000 65536" in source
    assert "dir=back" in source and "shown as" in source


def test_idmapped_mount_shows_host_root_as_the_maps_outside(tmp_path):
    from minidocker.namespaces import IdMap, write_id_maps

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    child = os.fork()
    if child == 0:  # a process in a user namespace of its own, until the pipe closes
        os.close(ready_r)
        os.close(hold_w)
        kernel.unshare(kernel.CLONE_NEWUSER)
        os.write(ready_w, b"u")
        os.read(hold_r, 1)
        os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    target = str(tmp_path / "idmapped")
    try:
        assert os.read(ready_r, 1) == b"u"
        write_id_maps(child, IdMap())
        security.idmapped_mount(str(tmp_path / "src"), target, child)
        try:
            assert os.lstat(f"{target}/f").st_uid == 100000
            assert os.lstat(tmp_path / "src" / "f").st_uid == 0  # on disk: unchanged
        finally:
            kernel.umount2(target, kernel.MNT_DETACH)
    finally:
        os.close(hold_w)
        os.close(ready_r)
        os.waitpid(child, 0)
