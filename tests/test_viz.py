"""The notebook helpers: the namespace graph as data, the tables, the command transcripts, the
mountinfo parser, the pivot_root story, the sanitize rules and the notebook refresher."""

import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from minidocker import namespaces
from minidocker.container import names
from minidocker.image.store import single_layer_dir
from minidocker.viz import cli, mounts, nsgraph, refresh, rootfs_story
from minidocker.viz.table import Table

REPO = Path(__file__).resolve().parents[1]
DEVNULL = os.open(os.devnull, os.O_RDWR)  # stdio for the processes the tests start

# --- Table ---------------------------------------------------------------------------------------


def test_table_text_aligns_columns_and_keeps_no_trailing_spaces():
    table = Table(("a", "long header"), [("wide cell", 1), ("x", "")], "title")
    assert table.text().splitlines() == ["title", "a          long header", "wide cell  1", "x"]
    assert repr(table) == table.text()


def test_table_html_escapes_cells():
    html = Table(("h",), [("<b>&",)])._repr_html_()
    assert "&lt;b&gt;&amp;" in html and "<th" in html and "<b>" not in html


# --- command transcripts -----------------------------------------------------------------------


def test_one_string_is_split_like_a_shell_many_are_kept():
    assert cli._argv(("run --rm busybox sh -c 'echo $$'",)) == [
        "run", "--rm", "busybox", "sh", "-c", "echo $$"]
    assert cli._argv(("sh", "-c", "echo a b")) == ["sh", "-c", "echo a b"]


def test_transcript_shows_command_output_and_a_failing_status():
    shown = repr(cli.Transcript(["minidocker", "run", "busybox", "sh", "-c", "exit 3"], "", 3))
    assert shown == "$ minidocker run busybox sh -c 'exit 3'\n[exit status 3]"
    assert repr(cli.Transcript(["echo", "hi"], "hi\n", 0)) == "$ echo hi\nhi"


def test_grep_keeps_the_header_and_says_so():
    ps = cli.Transcript(["minidocker", "ps", "-a"], "ID  NAMES\n1  tour\n2  other\n", 0)
    kept = ps.grep("tour")
    assert kept.lines == ["ID  NAMES", "1  tour"]
    assert repr(kept).startswith("$ minidocker ps -a  # only the header and the lines with 'tour'")


def test_host_interleaves_stdout_and_stderr():
    result = cli.host("sh", "-c", "echo out; echo err >&2; exit 4")
    assert (result.output, result.returncode) == ("out\nerr\n", 4)


def test_minidocker_runs_the_cli_with_this_python():
    result = cli.minidocker("--version")
    assert cli.MINIDOCKER[0] == sys.executable
    assert result.returncode == 0 and result.output.startswith("minidocker ")
    assert result.command == ["minidocker", "--version"]


def test_minidocker_runs_a_container():
    result = cli.minidocker("run --rm --hostname box busybox hostname")
    assert (result.output, result.returncode) == ("box\n", 0)


# --- the namespace graph -----------------------------------------------------------------------

ALL = {"uts": 1, "pid": 2, "mnt": 3, "ipc": 4, "net": 5, "user": 6, "cgroup": 7}


def test_graph_has_a_node_per_process_and_per_distinct_namespace():
    host = nsgraph.ProcessNamespaces("host", 10, dict(ALL))
    box = nsgraph.ProcessNamespaces("box", 20, {**ALL, "uts": 11, "pid": 12})
    graph = nsgraph.namespace_graph([host, box])
    processes = [n for n in graph.nodes if n.kind == "process"]
    assert [n.id for n in processes] == ["process:host", "process:box"]
    assert processes[1].label == "box\npid 20"
    spaces = {n.id for n in graph.nodes if n.kind != "process"}
    assert spaces == {f"{k}:[{v}]" for k, v in ALL.items()} | {"uts:[11]", "pid:[12]"}
    assert len(graph.edges) == 14
    assert ("process:box", "uts:[11]") in graph.edges
    assert ("process:host", "uts:[1]") in graph.edges
    assert ("process:box", "net:[5]") in graph.edges and ("process:host", "net:[5]") in graph.edges


def test_shared_namespaces_are_marked():
    graph = nsgraph.namespace_graph([nsgraph.ProcessNamespaces("a", 1, dict(ALL)),
                                     nsgraph.ProcessNamespaces("b", 2, {**ALL, "net": 9})])
    assert graph.node("net:[5]").shared is False
    assert graph.node("net:[9]").shared is False
    assert graph.node("uts:[1]").shared is True
    assert graph.node("uts:[1]").label == "uts\n1"
    assert graph.node("uts:[1]").kind == "uts"


def test_an_unreadable_process_is_a_node_without_edges():
    graph = nsgraph.namespace_graph([nsgraph.ProcessNamespaces("init", 1, {}, "no access")])
    assert [(n.label, n.kind) for n in graph.nodes] == [("init\npid 1\nno access", "process")]
    assert graph.edges == []


def test_read_namespaces_reads_what_the_kernel_says():
    mine = nsgraph.read_namespaces("me", "self")
    assert mine.pid == os.getpid() and not mine.error
    assert mine.namespaces == namespaces.namespaces_of("self")


def test_read_namespaces_of_a_missing_process_says_why():
    gone = nsgraph.read_namespaces("gone", 2**22 + 1)
    assert gone.namespaces == {} and "No such file" in gone.error


def test_digraph_uses_plain_node_names_and_fills_shared_namespaces():
    pytest.importorskip("graphviz")
    graph = nsgraph.namespace_graph([nsgraph.ProcessNamespaces("a", 1, dict(ALL)),
                                     nsgraph.ProcessNamespaces("b", 2, {**ALL, "uts": 8})])
    source = nsgraph.to_digraph(graph, "title").source
    assert "n0 -> n2" in source  # "uts:[1]" as a node name would read as node "uts", port "[1]"
    assert "->" in source and "uts:[" not in source
    assert source.count("fillcolor=gold") == 6  # all but uts are shared
    assert source.count("cluster_") == 7


def test_draw_namespaces_of_a_live_container():
    pytest.importorskip("graphviz")
    process = namespaces.spawn(["sleep", "30"], ["uts"], stdio=_quiet())
    try:
        dot = nsgraph.draw_namespaces({"me": "self", "child": process.pid})
    finally:
        process.signal(9)
        process.wait()
    assert dot.source.count("fillcolor=gold") == 6


def test_compare_table_and_proc_ns():
    process = namespaces.spawn(["sleep", "30"], ["uts", "net"], stdio=_quiet())
    try:
        table = nsgraph.compare_table({"me": "self", "child": process.pid})
        listing = nsgraph.proc_ns(process.pid)
        uts = os.readlink(f"/proc/{process.pid}/ns/uts")
    finally:
        process.signal(9)
        process.wait()
    verdict = {row[0]: row[-1] for row in table.rows}
    assert verdict == {k: "separate" if k in ("uts", "net") else "shared"
                       for k in namespaces.NAMESPACES}
    assert table.header[1] == f"me (pid {os.getpid()})"
    entries = {row[0]: row[1] for row in listing.rows}
    assert set(namespaces.NAMESPACES) <= set(entries)
    assert entries["uts"] == uts


def _quiet() -> namespaces.Stdio:
    return namespaces.Stdio(DEVNULL, DEVNULL, DEVNULL)


# --- mountinfo ---------------------------------------------------------------------------------


def test_parse_a_mountinfo_line_with_optional_fields_and_escapes():
    line = "36 35 98:0 /mnt1 /mnt\\0402 ro,noatime master:1 shared:2 - ext3 /dev/root rw,errors=x"
    mount = mounts.parse_line(line)
    assert (mount.mount_id, mount.parent_id, mount.device) == (36, 35, "98:0")
    assert (mount.root, mount.mount_point) == ("/mnt1", "/mnt 2")
    assert mount.optional == ("master:1", "shared:2")
    assert (mount.fstype, mount.source, mount.super_options) == ("ext3", "/dev/root", "rw,errors=x")
    assert mount.readonly


def test_mountinfo_of_this_process_and_its_table():
    found = mounts.mountinfo("self")
    assert any(m.mount_point == "/" for m in found)
    table = mounts.mount_table(found[:2], "t")
    assert table.header[0] == "mount point" and len(table.rows) == 2


# --- the pivot_root story ----------------------------------------------------------------------


def test_the_pivot_root_story(tmp_path):
    copy = shutil.copytree(single_layer_dir("busybox"), tmp_path / "rootfs", symlinks=True)
    before = len(mounts.mountinfo("self"))
    table = rootfs_story.pivot_root_story(str(copy))
    seen = {row[0]: row[2] for row in table.rows}
    assert len(seen) == 8
    assert seen[1].startswith("my PID is 1;") and seen[1].endswith("True")
    assert seen[3].startswith("the image directory is a mount point now: True")
    assert "[1]" in seen[4]
    assert seen[5].endswith("True")
    assert "null" in seen[6] and "pts" in seen[6]
    assert ".oldroot" in seen[7] and seen[7].endswith("True")
    assert seen[8].endswith("now: / /proc /sys /dev /dev/pts /dev/shm")
    assert len(mounts.mountinfo("self")) == before  # it all happened in another namespace
    assert not (copy / ".oldroot").exists()


# --- the sanitize rules ------------------------------------------------------------------------


def sanitize_rules() -> list[tuple[str, str]]:
    from nbval.plugin import get_sanitize_patterns

    return get_sanitize_patterns((REPO / "notebooks" / "sanitize.cfg").read_text())


def sanitize(text: str) -> str:
    for regex, replace in sanitize_rules():
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_knows_every_random_name():
    rule = next(regex for regex, replace in sanitize_rules() if replace == "<NAME>")
    for adjective in names.ADJECTIVES:
        for scientist in names.SCIENTISTS:
            assert re.fullmatch(rule, f"{adjective}_{scientist}")
    assert re.fullmatch(rule, "jolly_turing7")


@pytest.mark.parametrize(("raw", "clean"), [
    ("uts:[4026532139]", "uts:[<NS-INODE>]"),
    ("NSpid:\t31337\t1", "NSpid:\t<PID>\t1"),
    ("PID 1 is still alive", "PID 1 is still alive"),
    ("the container's PID 1 is PID 4242 on the host", "the container's PID 1 is PID <PID> on the host"),
    ("this notebook (pid 4242)", "this notebook (pid <PID>)"),
    ("$ grep State /proc/4242/status", "$ grep State /proc/<PID>/status"),
    ("$ ps -o pid,comm -p 41,42", "$ ps -o pid,comm -p <PIDS>"),
    ("23116 23022 4026531836 python3", "<PID> <PPID> <NS-INODE> python"),
    ("100000 100000  sleep 300", "100000 100000 sleep 300"),  # ps -o uid,user: not PIDs
    ("01 00 00 00 00 00 00 0e  1 = stdout", "01 00 00 00 00 00 00 0e 1 = stdout"),  # bytes
    ("$ minidocker run -p 8080:80 busybox httpd -f -p 80 -h /www",
     "$ minidocker run -p 8080:80 busybox httpd -f -p 80 -h /www"),  # ports, not PIDs
    ("169 134 0:63 / / rw,relatime - overlay overlay", "<MNT-ID> <PARENT-ID> <DEV> / / rw,relatime - overlay overlay"),
    ("a" * 64, "<CONTAINER-ID>"),
    ("badacfb10f67", "<SHORT-ID>"),
    ("Exited (7) Less than a second ago", "Exited (7) <TIME> ago"),
    ("Up 3 seconds", "Up <TIME>"),
    ("1     root   12 Nov 22 19:54 core", "1 root 12 <DATE> core"),
    ("busybox   latest   1.99MB", "busybox latest <SIZE>"),
    ("         0          0 4294967295", " 0 0 4294967295"),
    ("Swarm initialized: current node (nabmtjw1jfwaa4usvs7iq6qtf) is now a manager.",
     "Swarm initialized: current node (<SWARM-ID>) is now a manager."),
    ("$ minidocker service create --name web busybox\n60k8weomzltr35vcmc3wg0ewv\noverall",
     "$ minidocker service create --name web busybox\n<SWARM-ID>\noverall"),
    ("abcdefghijklmnopqrstuvwxy is a word, not an ID",
     "abcdefghijklmnopqrstuvwxy is a word, not an ID"),
    # a container's /dev: rw with the v1 devices cgroup, ro on cgroup v2 only; nothing else
    ("204 201 0:78 / /dev ro,nosuid - tmpfs tmpfs",
     "<MNT-ID> <PARENT-ID> <DEV> / /dev <RW-OR-RO>,nosuid - tmpfs tmpfs"),
    ("/sys         sysfs    sysfs    /     ro\n/dev         tmpfs    tmpfs    /     rw\n"
     "/dev/pts     devpts   devpts   /     rw", "/sys sysfs sysfs / ro\n/dev tmpfs tmpfs / <RW-OR-RO>\n"
     "/dev/pts devpts devpts / rw"),
    ("<td a>/dev</td><td a>tmpfs</td><td a>tmpfs</td><td a>/</td><td a>ro</td>",
     "<td a>/dev</td><td a>tmpfs</td><td a>tmpfs</td><td a>/</td><td a><RW-OR-RO></td>"),
    ("22 1 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw",
     "<MNT-ID> <PARENT-ID> <DEV> / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw"),
    ("205 204 0:79 / /dev/pts rw,nosuid - tmpfs tmpfs",
     "<MNT-ID> <PARENT-ID> <DEV> / /dev/pts rw,nosuid - tmpfs tmpfs"),
])
def test_sanitize_rules(raw, clean):
    assert sanitize(raw) == clean


# --- refreshing notebooks ----------------------------------------------------------------------


def test_refresh_uses_the_repositorys_lab_host():
    lab_host = refresh.load_conftest(REPO)
    assert callable(lab_host.enter_lab_host) and callable(lab_host.leaks)


def test_refresh_refuses_a_missing_notebook(tmp_path):
    with pytest.raises(SystemExit, match="no such notebook"):
        refresh.main([str(tmp_path / "missing.ipynb")])


@pytest.mark.slow
def test_refresh_executes_a_notebook_in_place_in_its_directory(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os\nprint(os.getcwd(), os.environ['MINIDOCKER_ROOT'])")])
    path = tmp_path / "t.ipynb"
    nbformat.write(notebook, path)
    refresh.execute(path)
    output = nbformat.read(path, as_version=4).cells[0].outputs[0].text
    assert output == f"{tmp_path} {os.environ['MINIDOCKER_ROOT']}\n"


def test_every_picture_fits_the_notebook_column():
    """Each graphviz picture of the course is drawn at most 8.5 inches wide (graphviz's
    ``size``), so JupyterLab never shows one running past the column."""
    import re
    from pathlib import Path

    import minidocker.viz

    folder = Path(minidocker.viz.__file__).parent
    calls = [(path.name, call) for path in folder.glob("*.py")
             for call in re.findall(r"graphviz\.Digraph\((.*?)\)\n", path.read_text(), re.S)]
    assert len(calls) >= 7
    assert [name for name, call in calls if "FITS_THE_COLUMN" not in call] == []
