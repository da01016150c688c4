"""The volume helpers of notebook 07: the graph of containers, mount points and what backs them
(nodes and edges, from made-up records and from real containers), and the kernel's mountinfo
lines of a running container's mounts."""

import os
from dataclasses import dataclass, field

import pytest

from minidocker.container import records
from minidocker.viz import volumes as vviz
from minidocker.viz.cli import Transcript

ANON = "ab" * 32  # an anonymous volume's 64 hex digits


@dataclass
class Record:
    Id: str
    Name: str
    Mounts: list
    State: dict = field(default_factory=lambda: {"Status": "running"})


def volume(name: str, destination: str, rw: bool = True, anonymous: bool = False) -> dict:
    return {"Type": "volume", "Name": name, "Source": f"/state/volumes/{name}/_data",
            "Destination": destination, "RW": rw, "Anonymous": anonymous}


def test_the_data_container_pattern_is_a_fan_in():
    data = Record("d1", "data", [volume(ANON, "/data", anonymous=True)], {"Status": "created"})
    app1 = Record("a1", "app1", [volume(ANON, "/data", anonymous=True)])
    app2 = Record("a2", "app2", [volume(ANON, "/data", rw=False, anonymous=True),
                                 {"Type": "bind", "Source": "/srv/www", "Destination": "/www",
                                  "RW": True},
                                 {"Type": "tmpfs", "Source": "", "Destination": "/scratch",
                                  "RW": True}])
    graph = vviz.mount_graph([app2, data, app1])
    assert [n.id for n in graph.nodes if n.kind == "container"] == \
        ["container:a1", "container:a2", "container:d1"]  # by name
    assert graph.node("container:d1").label == "data\ncreated"
    shared = graph.node(f"volume:{ANON}")
    assert shared.shared and shared.kind == "anonymous"
    assert shared.label.startswith(f"anonymous volume\n{ANON[:12]}\n")
    into_volume = sorted((s, label) for s, t, label in graph.edges if t == f"volume:{ANON}")
    assert into_volume == [("mount:a1:/data", "rw"), ("mount:a2:/data", "ro"),
                           ("mount:d1:/data", "rw")]
    assert graph.node("mount:a2:/data").label == "/data\nvolume, ro"
    assert ("container:a2", "mount:a2:/www", "") in graph.edges
    assert ("mount:a2:/www", "host:/srv/www", "rw") in graph.edges
    assert graph.node("host:/srv/www").kind == "host" and not graph.node("host:/srv/www").shared
    assert ("mount:a2:/scratch", "tmpfs:a2:/scratch", "rw") in graph.edges
    assert len(graph.nodes) == 3 + 5 + 3  # containers, mount points, backings


def test_tmpfs_mounts_are_never_shared_and_named_volumes_keep_their_name():
    one = Record("1", "one", [volume("db", "/var/lib/db"),
                              {"Type": "tmpfs", "Destination": "/t", "RW": True}])
    two = Record("2", "two", [volume("db", "/db", rw=False),
                              {"Type": "tmpfs", "Destination": "/t", "RW": True}])
    graph = vviz.mount_graph([one, two])
    assert graph.node("volume:db").label == "volume db\n(volumes/…/_data)"
    assert graph.node("volume:db").shared and graph.node("volume:db").kind == "volume"
    assert not graph.node("tmpfs:1:/t").shared and not graph.node("tmpfs:2:/t").shared


def test_a_container_without_mounts_is_a_lone_node():
    graph = vviz.mount_graph([Record("x", "plain", [])])
    assert [n.id for n in graph.nodes] == ["container:x"] and graph.edges == []


def test_the_digraph_names_every_node_and_dashes_read_only_edges():
    pytest.importorskip("graphviz")
    app = Record("a", "app", [volume("db", "/db", rw=False)])
    source = vviz.to_digraph(vviz.mount_graph([app]), "title").source
    assert "app\nrunning" in source or "app\\nrunning" in source
    assert "style=dashed" in source and "cylinder" in source


def test_live_records_and_mountinfo_of_a_running_container(containers, md, tmp_path):
    host_dir = tmp_path / "site"
    host_dir.mkdir()
    name = containers.run_d("-v", f"{host_dir}:/www:ro", "-v", "/cache", "--tmpfs", "/scratch",
                            "busybox", "sleep", "30")
    record = records.find(name)
    graph = vviz.mount_graph(r for r in records.all_records() if r.Name == name)
    anonymous = next(m for m in record.Mounts if m["Destination"] == "/cache")["Name"]
    assert (f"mount:{record.Id}:/www", f"host:{host_dir}", "ro") in graph.edges
    assert (f"mount:{record.Id}:/cache", f"volume:{anonymous}", "rw") in graph.edges
    assert graph.node(f"volume:{anonymous}").kind == "anonymous"

    pid = record.State["Pid"]
    lines = vviz.mountinfo_lines(pid, ["/www", "/cache", "/scratch"], filesystem=False)
    assert [line.split()[4] for line in lines.splitlines()] == ["/www", "/cache", "/scratch"]
    www = lines.splitlines()[0]
    assert www.split()[3].endswith("/site") and " ro," in www and www.endswith(" …")
    scratch = vviz.mount_of(pid, "/scratch")
    assert scratch.fstype == "tmpfs" and not scratch.readonly
    assert vviz.same_filesystem(vviz.mount_of(pid, "/www"), str(host_dir))
    assert not vviz.same_filesystem(scratch, str(host_dir))
    with pytest.raises(LookupError):
        vviz.mount_of(pid, "/nothing")
    assert md("rm", "-f", "-v", name).returncode == 0
    assert not os.path.exists(record.directory)


def test_only_keeps_the_header_and_the_lines_asked_for():
    listing = Transcript(["minidocker", "volume", "ls"],
                         "DRIVER   VOLUME NAME\nlocal    mine\nlocal    theirs\nlocal    " + ANON
                         + "\n", 0)
    kept = vviz.only(listing, "mine", ANON)
    assert kept.lines == ["DRIVER   VOLUME NAME", "local    mine", f"local    {ANON}"]
    assert repr(kept).startswith("$ minidocker volume ls  # only the header and this notebook's")
