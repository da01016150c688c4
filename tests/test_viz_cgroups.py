"""The cgroup helpers of notebook 03: the tree as nodes and edges for a real container, the v1/v2
file table, the sampler, the memory hog, the charts and the widget's wiring."""

import os
import re
from pathlib import Path

import pytest

from minidocker import cgroups
from minidocker.viz import cgroups as cgviz

BUSY = ["sh", "-c", "while :; do :; done"]
REPO = Path(__file__).resolve().parents[1]


def left_behind(container_id: str) -> list[Path]:
    """This container's cgroups still on the machine (other test sessions may run containers
    at the same time, so the whole of ``leftover_cgroups()`` is not ours to judge)."""
    return [path for path in cgroups.leftover_cgroups() if path.name == container_id]


@pytest.fixture
def box():
    container = cgviz.start_quiet(["sleep", "30"], memory="32m", cpus="0.5", cpuset_cpus="0",
                                  pids_limit="20")
    yield container
    cgviz.stop(container)
    assert left_behind(container.record.Id) == []


# --- the tree ----------------------------------------------------------------------------------


def test_a_line_of_proc_cgroup_belongs_to_its_hierarchy():
    memory = cgviz.Hierarchy("memory", Path("/sys/fs/cgroup/memory"), ("memory",))
    cpu = cgviz.Hierarchy("cpu,cpuacct", Path("/sys/fs/cgroup/cpu,cpuacct"), ("cpu", "cpuacct"))
    unified = cgviz.Hierarchy("unified", Path("/sys/fs/cgroup"))
    assert memory.owns("4:memory:/minidocker/abc") == "/minidocker/abc"
    assert memory.owns("2:cpu,cpuacct:/x") is None
    assert cpu.owns("2:cpu,cpuacct:/x") == "/x"
    assert cpu.owns("0::/y") is None
    assert unified.owns("0::/user.slice/a:b") == "/user.slice/a:b"  # ":" may be in a path
    assert unified.owns("9:name=systemd:/") is None


def test_the_tree_of_a_running_container(box):
    tree = cgviz.cgroup_tree({"box": box.cgroup}, {"me": "self"})
    container_id = box.record.Id
    assert [h.name for h in tree.hierarchies] == [h.name for h in cgviz.hierarchies(box.cgroup)]
    expected = 1 if box.cgroup.version == "v2" else len({*box.cgroup.mounts.values()})
    assert len(tree.hierarchies) == expected
    for hierarchy in tree.hierarchies:
        root, parent = f"{hierarchy.name}:/", f"{hierarchy.name}:/{cgroups.parent()}"
        leaf = f"{parent}/{container_id}"
        assert (root, parent) in tree.edges and (parent, leaf) in tree.edges
        assert (leaf, f"pid:{box.pid}") in tree.edges
        node = tree.node(leaf)
        assert (node.kind, node.container, node.path) == ("cgroup", "box",
                                                          f"/{box.cgroup.name}")
        assert box.cgroup.name == f"{cgroups.parent()}/{container_id}"
        assert node.label == f"{container_id[:12]}\n1 process\ncontainer box"
        assert tree.node(root).label.startswith("/\n")
        mine = [s for s, t in tree.edges if t == f"pid:{os.getpid()}"
                and tree.node(s).hierarchy == hierarchy.name]
        assert len(mine) == 1 and tree.node(mine[0]).container == ""  # one cgroup per tree
    assert tree.node(f"pid:{box.pid}").label == f"sleep\npid {box.pid}"
    assert tree.node(f"pid:{os.getpid()}").label == f"me\npid {os.getpid()}"


def test_the_tree_follows_our_own_proc_cgroup(box):
    tree = cgviz.cgroup_tree({"box": box.cgroup}, {"me": "self"})
    own = Path("/proc/self/cgroup").read_text().splitlines()
    for hierarchy in tree.hierarchies:
        path = next(p for p in map(hierarchy.owns, own) if p is not None)
        assert (f"{hierarchy.name}:{path}", f"pid:{os.getpid()}") in tree.edges


def test_only_keeps_the_hierarchies_asked_for(box):
    first = cgviz.hierarchies(box.cgroup)[0].name
    tree = cgviz.cgroup_tree({"box": box.cgroup}, only=(first,))
    assert [h.name for h in tree.hierarchies] == [first]
    assert {n.hierarchy for n in tree.nodes if n.kind == "cgroup"} == {first}


def test_the_digraph_names_nodes_plainly_and_fills_the_containers_cgroups(box):
    tree = cgviz.cgroup_tree({"box": box.cgroup}, {"me": "self"})
    source = cgviz.to_digraph(tree, "title").source
    assert source.count("fillcolor=gold") == len(tree.hierarchies)
    assert source.count("subgraph cluster_") == len(tree.hierarchies)
    assert f"pid {box.pid}" in source and cgroups.parent() in source
    assert "pid:" not in source  # DOT would read "a:b" as node a, port b


def test_container_ids_are_shortened_in_labels():
    assert cgviz._short("a" * 64) == "a" * 12
    assert cgviz._short("minidocker") == "minidocker"
    assert cgviz._processes(1) == "1 process" and cgviz._processes(0) == "0 processes"


# --- the files ---------------------------------------------------------------------------------


def test_the_static_table_lists_every_flag_with_both_files():
    table = cgviz.files_table()
    assert table.header == ("docker", "what", "cgroup v1 file", "cgroup v2 file")
    assert len(table.rows) == len(cgviz.LIMIT_FILES)
    rows = {row[0]: row for row in table.rows if row[0]}
    assert rows["-m"][2:] == ("memory.limit_in_bytes", "memory.max")
    assert rows["--cpus"][2:] == ("cpu.cfs_quota_us + cpu.cfs_period_us", "cpu.max")
    assert rows["--cpu-shares"][2:] == ("cpu.shares", "cpu.weight")


def test_the_live_table_reads_the_same_values_on_v1_and_v2(box):
    table = cgviz.files_table(box.cgroup, rows=("memory", "cpus", "cpuset", "pids"))
    assert table.header[-1] == "read now"
    assert [row[-1] for row in table.rows] == [str(32 * 2**20), "50000 100000", "0", "20"]


def test_read_file_reads_keyed_files_and_says_absent(box):
    assert cgviz.read_file(box.cgroup, "memory.oom_control oom_kill"
                           if box.cgroup.version == "v1" else "memory.events oom_kill") == "0"
    assert cgviz.read_file(box.cgroup, "cgroup.procs") == str(box.pid)
    assert cgviz.read_file(box.cgroup, "pids.no_such_file") == "(absent)"
    assert cgviz.read_file(box.cgroup, "cpu.stat no_such_key") == "(absent)"


# --- sampling ----------------------------------------------------------------------------------


def test_recording_arithmetic():
    samples = [cgviz.Sample(t, int(t * 5e8), 0, 1) for t in (0.0, 0.5, 1.0, 1.5, 2.0)]
    recording = cgviz.Recording({"x": samples})
    assert recording.cpu_seconds("x") == pytest.approx(1.0)
    assert recording.cpu_seconds("x", start=1.0) == pytest.approx(0.5)
    assert recording.cpu_rate("x", 0.5, 1.5) == pytest.approx(0.5)
    assert recording.cpu_rate("x", 3, 4) == 0.0 and recording.cpu_seconds("x", 3) == 0.0


def test_sample_a_busy_container_and_fire_events():
    busy = cgviz.start_quiet(BUSY)
    try:
        recording = cgviz.sample({"busy": busy}, seconds=0.6, interval=0.02,
                                 events={0.2: ("pause", busy.pause),
                                         0.4: ("unpause", busy.unpause)})
    finally:
        cgviz.stop(busy)
    samples = recording.samples["busy"]
    assert len(samples) >= 10 and samples[-1].t >= 0.6
    assert all(a.t < b.t and a.cpu_usage_ns <= b.cpu_usage_ns
               for a, b in zip(samples, samples[1:], strict=False))
    assert all(s.pids_current == 1 and s.memory_usage > 0 for s in samples)
    assert [what for _, what in recording.events] == ["pause", "unpause"]
    (paused, _), (thawed, _) = recording.events
    assert 0.2 <= paused < thawed
    assert recording.cpu_seconds("busy", paused, thawed - 0.001) < 0.005
    assert recording.cpu_seconds("busy", 0, paused) > 0.01


def test_sample_stops_when_the_container_has_no_process_left():
    """The sampling ends when the container's last process does, long before the 10 s asked.
    (The sleep began before the sampling did, by as long as this machine takes between the
    two, so its end is no fixed time into the recording.)"""
    short = cgviz.start_quiet(["sleep", "0.2"])
    try:
        recording = cgviz.sample({"short": short}, seconds=10)
        assert not short.cgroup.pids()  # over because the cgroup was empty...
    finally:
        assert cgviz.stop(short) == 0  # ... as the sleep had ended by itself: no SIGKILL
    assert recording.samples["short"][-1].t < 5


def test_the_hog_is_oom_killed_above_its_limit_and_lives_below_it():
    killed = cgviz.memory_hog(limit_mib=16, size_mib=48)
    assert (killed.exit_code, killed.oom_killed) == (137, True)
    peak = killed.recording.peak_memory("hog")
    assert 8 * 2**20 < peak <= 16 * 2**20
    lived = cgviz.memory_hog(limit_mib=32, size_mib=8)
    assert (lived.exit_code, lived.oom_killed) == (0, False)
    assert left_behind(killed.container_id) == left_behind(lived.container_id) == []


def test_the_hog_command_grows_by_one_mebibyte_a_step():
    argv = cgviz.hog_command(3, pause=0.5)
    assert argv[:2] == ["sh", "-c"]
    assert "seq 3" in argv[2] and "head -c 1m /dev/zero || exit" in argv[2]
    assert "sleep 0.5" in argv[2] and argv[2].endswith("| tail")


# --- charts and the widget ---------------------------------------------------------------------


def test_charts_are_pngs_whose_text_is_their_title():
    samples = [cgviz.Sample(t / 10, t * 10**8, t * 2**20, 1) for t in range(5)]
    recording = cgviz.Recording({"a": samples, "b": samples}, [(0.2, "pause")])
    chart = cgviz.plot_cpu(recording, "cpu", references={"1 CPU": 1.0})
    assert repr(chart) == "<chart: cpu>"
    assert chart._repr_png_().startswith(b"\x89PNG")
    hog = cgviz.HogRun("0" * 64, 4, 8, cgviz.Recording({"hog": samples}), 137, True)
    chart = cgviz.plot_memory(hog)
    assert repr(chart) == "<chart: a 8 MiB hog under -m 4m: OOM-killed>"
    assert chart._repr_png_().startswith(b"\x89PNG")


@pytest.mark.parametrize("raw, clean", [
    ("measured 0.49 CPUs; ok: True", "measured <N> CPUs; ok: True"),
    ("ratio measured 4.0", "ratio measured <N>"),
    ("throttled in measured 3 of measured 16 periods", "throttled in measured <N> of measured <N> periods"),
    ("from the host: ['/minidocker-test-1378/<CONTAINER-ID>']",
     "from the host: ['/minidocker/<CONTAINER-ID>']"),
    ("/tmp/minidocker-test-1234abcd/containers", "<STATE-ROOT>/containers"),
])
def test_sanitize_hides_measurements_and_the_test_sessions_cgroup_parent(raw, clean):
    from nbval.plugin import get_sanitize_patterns

    rules = get_sanitize_patterns((REPO / "notebooks" / "sanitize.cfg").read_text())
    for regex, replace in rules:
        raw = re.sub(regex, replace, raw)
    assert raw == clean


def test_the_widget_only_wires_memory_hog(capsys):
    widget = cgviz.memory_widget()
    (limit, size, button), output = widget.children[0].children, widget.children[1]
    assert (limit.value, size.value) == (32, 96)
    limit.value, size.value = 32, 8
    button.click()  # what a browser's click does: runs the hog, shows its chart and outcome
    assert "exit status 0, OOM-killed: False" in capsys.readouterr().out
    assert output is widget.children[1]
