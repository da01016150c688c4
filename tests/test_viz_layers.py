"""The layer helpers of notebooks 04 and 05: which layer a path comes from (checked against a
real overlay mount), the layer and tar tables, du, tree, and the image graph as data."""

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from minidocker import namespaces, rootfs, unionfs
from minidocker.image.store import Image
from minidocker.viz import layers
from minidocker.viz.mounts import parse_line

DEVNULL = os.open(os.devnull, os.O_RDWR)


def make(root: Path, files: dict[str, str | None]) -> Path:
    """A layer directory: a path ending in "/" is a directory, None is a whiteout."""
    for path, content in files.items():
        target = root / path.strip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith("/"):
            target.mkdir(exist_ok=True)
        elif content is None:
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0))
        else:
            target.write_text(content)
    return root


def opaque(directory: Path) -> None:
    os.setxattr(directory, layers.OPAQUE_XATTR, b"y")


@pytest.fixture
def demo(tmp_path):
    """The layers of notebook 04 after its changes: upper over app over base."""
    base = make(tmp_path / "base", {"etc/motd": "hello\n", "etc/config": "v1\n",
                                    "data/a": "a\n", "doc/readme": "r\n", "lib/x": "x\n"})
    app = make(tmp_path / "app", {"etc/config": "v2\n", "app/run.sh": "echo\n"})
    upper = make(tmp_path / "upper", {"etc/motd": "hello\nmore\n", "doc/readme": None,
                                      "data/c": "c\n", "notes": "n\n", "app/run.sh": None})
    opaque(upper / "data")
    return upper, {"app": app, "base": base}


# --- entry kinds and the lookup ----------------------------------------------------------------


def test_entry_kind_names_what_overlayfs_sees(tmp_path):
    make(tmp_path, {"f": "x", "d/": "", "o/": "", "w": None})
    opaque(tmp_path / "o")
    os.symlink("f", tmp_path / "s")
    os.mkfifo(tmp_path / "p")
    kinds = {name: layers.entry_kind(tmp_path / name) for name in "fdowsp"}
    assert kinds == {"f": "file", "d": "dir", "o": "opaque dir", "w": "whiteout",
                     "s": "symlink", "p": "fifo"}
    assert layers.entry_kind(tmp_path / "missing") == ""
    assert layers.entry_kind(tmp_path / "f" / "below") == ""  # ENOTDIR: no such path either


def test_which_layer_top_layer_wins(demo):
    upper, lowers = demo
    assert layers.which_layer("/etc/config", upper, lowers) == "app"
    assert layers.which_layer("/etc/motd", upper, lowers) == "upper"  # copied up
    assert layers.which_layer("/lib/x", upper, lowers) == "base"
    assert layers.which_layer("notes", upper, lowers) == "upper"  # a relative path works too


def test_which_layer_whiteouts_and_opaque_dirs(demo):
    upper, lowers = demo
    assert layers.which_layer("/doc/readme", upper, lowers) == "deleted (whiteout in upper)"
    assert layers.which_layer("/data/a", upper, lowers) == (
        "deleted (opaque directory /data in upper)")
    assert layers.which_layer("/data/c", upper, lowers) == "upper"
    assert layers.which_layer("/data", upper, lowers) == (
        "upper (opaque directory: the layers below are hidden)")


def test_which_layer_merged_directories_and_missing_paths(demo):
    upper, lowers = demo
    assert layers.which_layer("/etc", upper, lowers) == "upper + app + base (merged directory)"
    assert layers.which_layer("/lib", upper, lowers) == "base"
    assert layers.which_layer("/nowhere", upper, lowers) == "not found"
    assert layers.which_layer("/etc/motd/below", upper, lowers) == "not found"
    assert layers.resolve("/", upper, lowers).layers == ("upper", "app", "base")


def test_a_whiteout_of_a_directory_hides_what_is_below_it(tmp_path):
    base = make(tmp_path / "base", {"srv/www/index.html": "hi"})
    mid = make(tmp_path / "mid", {"srv": None})
    top = make(tmp_path / "top", {"srv/new": "n"})
    opaque(top / "srv")  # what overlayfs makes of a mkdir over a whiteout
    lowers = {"top": top, "mid": mid, "base": base}
    assert layers.which_layer("/srv/www/index.html", None, {"mid": mid, "base": base}) == (
        "deleted (whiteout of /srv in mid)")
    assert layers.which_layer("/srv/new", None, lowers) == "top"
    assert layers.which_layer("/srv/www", None, lowers) == (
        "deleted (opaque directory /srv in top)")


def test_a_file_below_a_directory_is_hidden(tmp_path):
    base = make(tmp_path / "base", {"x": "file"})
    upper = make(tmp_path / "upper", {"x/y": "y"})
    assert layers.which_layer("/x", upper, {"base": base}) == "upper"
    assert layers.resolve("/x", upper, {"base": base}).layers == ("upper",)


def test_the_model_agrees_with_a_real_overlay_mount(demo, tmp_path):
    upper, lowers = demo
    dirs = unionfs.OverlayDirs(tuple(str(d) for d in lowers.values()), str(upper),
                               str(tmp_path / "work"), str(tmp_path / "merged"))

    def mount() -> None:
        rootfs.make_mounts_private()
        unionfs.mount_overlay(dirs)

    process = namespaces.spawn(["sleep", "30"], ["mnt"], setup=mount,
                               stdio=namespaces.Stdio(DEVNULL, DEVNULL, DEVNULL))
    try:
        found = namespaces.enter(process.pid, ["find", dirs.merged, "-mindepth", "1"], ["mnt"])
    finally:
        process.signal(9)
        process.wait()
    seen = sorted("/" + os.path.relpath(p, dirs.merged) for p in found.stdout.split())
    assert seen == layers.merged_paths(upper, lowers)
    assert "/data/a" not in seen and "/doc/readme" not in seen and "/etc/config" in seen


# --- tables and the explorer -------------------------------------------------------------------


def test_layer_table_has_a_column_per_layer(demo):
    upper, lowers = demo
    table = layers.layer_table(upper, lowers, ["/doc/readme", "/etc/config"], "t")
    assert table.header == ("path", "upper", "app", "base", "merged view shows")
    assert table.rows == [("/doc/readme", "whiteout", "", "file", "deleted (whiteout in upper)"),
                          ("/etc/config", "", "file", "file", "app")]
    every = layers.layer_table(upper, lowers)
    assert [row[0] for row in every.rows] == layers.all_paths(upper, lowers)


def test_all_paths_includes_whiteouts_and_hidden_files(demo):
    upper, lowers = demo
    paths = layers.all_paths(upper, lowers)
    assert {"/doc/readme", "/data/a", "/data/c", "/app/run.sh"} <= set(paths)
    assert paths == sorted(paths)


def test_explain_shows_each_layer_and_what_reading_gives(demo):
    upper, lowers = demo
    assert layers.explain("/etc/config", upper, lowers).splitlines() == [
        "/etc/config", "  upper  -", "  app    file", "  base   file",
        "merged view: app", "reading it gives: 'v2\\n'"]
    assert layers.explain("/doc/readme", upper, lowers).endswith(
        "merged view: deleted (whiteout in upper)")


def test_layer_explorer_wires_explain(demo):
    pytest.importorskip("ipywidgets")
    upper, lowers = demo
    widget = layers.layer_explorer(upper, lowers)
    choose, shown = widget.children
    assert choose.value == "/app"
    choose.value = "/etc/config"  # an observer runs here, as when a reader picks a path
    assert "merged view: app" in shown.value


# --- the mount, du and tree --------------------------------------------------------------------


def test_overlay_dirs_from_a_mountinfo_line():
    line = ("89 65 0:40 / /m rw,relatime - overlay overlay rw,lowerdir=/l/a\\:b:/l/c,"
            "upperdir=/u,workdir=/w,uuid=on")
    mount = parse_line(line)
    assert layers.overlay_dirs(mount) == {"lowerdir": ["/l/a:b", "/l/c"], "upperdir": ["/u"],
                                          "workdir": ["/w"]}
    assert layers.overlay_table(mount).rows == [("lowerdir 1 (top)", "/l/a:b"),
                                                ("lowerdir 2", "/l/c"), ("upperdir", "/u"),
                                                ("workdir", "/w")]


def test_du_counts_a_hard_linked_file_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    alone = layers.du(tmp_path)
    os.link(tmp_path / "a", tmp_path / "b")
    assert layers.du(tmp_path) == alone >= 100_000


def test_tree_sorts_noted_entries_by_their_note(tmp_path):
    make(tmp_path / "root", {"blobs/ff": "", "blobs/aa": "", "index.json": ""})
    text = layers.tree(tmp_path / "root", {"ff": "a manifest", "aa": "b layer"})
    assert text.splitlines() == [f"{tmp_path}/root/", "├── blobs/", "│   ├── ff  a manifest",
                                 "│   └── aa  b layer", "└── index.json"]


# --- tar members -------------------------------------------------------------------------------


def test_tar_entries_name_whiteouts_and_links(tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in [("etc", tarfile.DIRTYPE, ""), ("etc/.wh.passwd", tarfile.REGTYPE, ""),
                                  ("home/.wh..wh..opq", tarfile.REGTYPE, ""),
                                  ("bin/sh", tarfile.SYMTYPE, "busybox"),
                                  ("bin/ls", tarfile.LNKTYPE, "bin/busybox")]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, extra
            tar.addfile(info)
        info = tarfile.TarInfo("big")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"12345"))
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(gzip.compress(data.getvalue()))
    assert [(e.name, e.kind, e.size) for e in layers.tar_entries(path)] == [
        ("etc", "dir", 0), ("etc/.wh.passwd", "whiteout (deletes passwd)", 0),
        ("home/.wh..wh..opq", "opaque marker (hides the lower layers' directory)", 0),
        ("bin/sh", "symlink -> busybox", 0), ("bin/ls", "hard link to bin/busybox", 0),
        ("big", "file", 5)]
    assert layers.tar_members(path).header == ("member", "type", "bytes")


# --- images ------------------------------------------------------------------------------------


def digest(char: str) -> str:
    return "sha256:" + char * 64


def image(name: str, config: str, manifest: str, blobs: str) -> Image:
    """A made-up image whose layers are blobs digest(c) with diff_ids digest(C)."""
    return Image(digest(config), digest(manifest),
                 {"layers": [{"digest": digest(c), "size": 1000} for c in blobs]},
                 {"rootfs": {"diff_ids": [digest(c.upper()) for c in blobs]}}, [name])


BASE = image("busybox:latest", "1", "2", "a")
APP1 = image("app:1", "3", "4", "ab")
APP2 = image("app:2", "5", "6", "abc")


def test_blob_roles_name_every_image_of_a_shared_layer():
    roles = layers.blob_roles([BASE, APP1, APP2])
    assert roles[digest("a")] == "layer 1 of app:1, app:2, busybox:latest"
    assert roles[digest("b")] == "layer 2 of app:1, app:2"
    assert roles[digest("4")] == "manifest of app:1"
    assert roles[digest("5")] == "config of app:2"
    assert len(roles) == 9  # 3 manifests, 3 configs, 3 layers: each stored once


def test_image_graph_shares_layer_nodes():
    graph = layers.image_graph([BASE, APP1, APP2])
    kinds = [n.kind for n in graph.nodes]
    assert kinds.count("image") == kinds.count("manifest") == kinds.count("config") == 3
    assert kinds.count("layer") == 3
    assert graph.node(f"layer:{digest('a')}").shared
    assert graph.node(f"layer:{digest('b')}").shared
    assert not graph.node(f"layer:{digest('c')}").shared
    assert (f"manifest:{digest('6')}", f"layer:{digest('c')}", "layer 3") in graph.edges
    assert (f"image:{digest('1')}", f"manifest:{digest('2')}", "manifest") in graph.edges
    assert (f"manifest:{digest('2')}", f"config:{digest('1')}", "config") in graph.edges
    assert len(graph.edges) == 3 * 2 + 6
    assert graph.node(f"image:{digest('3')}").label == "app:1\nID 333333333333"
    assert "diff_id sha256:AAAAAAAAAAAA" in graph.node(f"layer:{digest('a')}").label


def test_digraph_uses_plain_node_names_and_fills_shared_layers():
    pytest.importorskip("graphviz")
    source = layers.to_digraph(layers.image_graph([BASE, APP1, APP2]), "t").source
    assert "sha256:" not in source.split("label=")[0]  # "a:b" as a node name means a port
    assert source.count("fillcolor=gold") == 2
    assert "n0 -> n1" in source
    assert source.count("cluster_") == 2  # index.json, then blobs/sha256/


def test_human_size_matches_minidocker_images():
    assert [layers.human_size(n) for n in (0, 999, 1040000, 5_242_880)] == [
        "0B", "999B", "1.04MB", "5.24MB"]


# --- the sanitize rules notebooks 04 and 05 need -----------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def sanitize(text: str) -> str:
    import re

    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns((REPO / "notebooks/sanitize.cfg").read_text()):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize(("raw", "clean"), [
    ('"digest": "sha256:' + "ab" * 32 + '",', '"digest": "sha256:<DIGEST>",'),
    ("blobs/sha256/" + "0" * 64, "blobs/sha256/<DIGEST>"),
    ("sha256:0d111fdba83d  True", "sha256:<SHORT-ID> True"),
    ('"size": 1036427', '"size": <BYTES>'),
    ('"created": "2026-11-22T20:38:07.615421Z",', '"created": "<TIMESTAMP>",'),
    ("setup: BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.",
     "setup: BusyBox <VERSION> multi-call binary."),
    ("setup: BusyBox v1.35.0 (Debian 1:1   1.04MB   the offline base image",
     "setup: BusyBox <VERSION> <SIZE> the offline base image"),
    ("c--------- 2 root root 0, 0 Nov 22 20:36 readme", "c--------- <LINKS> root root 0, 0 <DATE> readme"),
    ("busybox latest 3f2a 1 second ago 1.04MB", "busybox latest 3f2a <TIME> ago <SIZE>"),
])
def test_sanitize_rules_for_layers_and_images(raw, clean):
    assert sanitize(raw) == clean
