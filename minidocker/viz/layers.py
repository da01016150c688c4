"""Layers made visible: where each file of a union mount comes from, an image's layer stack as
a graph, what a layer tar holds, and how much disk a directory takes.

overlayfs looks a name up in its layers from the top down: the first layer that has the name
wins; a *whiteout* (a 0/0 character device) says "deleted, stop looking"; a directory is merged
with the same directory of the layers below, unless it is *opaque* (xattr
``trusted.overlay.opaque=y``), which hides everything below it. ``which_layer`` replays that
lookup on the layer directories, so a notebook can ask for any path which layer the kernel will
show, and check the answer against the real mount. ``image_graph`` turns images (index.json,
manifests, configs, layers) into nodes and edges; a layer several images use is one node.

Man pages: mount(2), xattr(7), tar(5); the kernel's Documentation/filesystems/overlayfs.rst.
Used by: notebooks 04-union-filesystems and 05-images.
"""

import html
import os
import re
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from minidocker.image.store import Image, human_size
from minidocker.viz.graph import Graph, GraphNode, course_digraph, dot_names, mark_shared
from minidocker.viz.mounts import Mount
from minidocker.viz.table import Table

OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
DIRECTORY_KINDS = ("dir", "opaque dir")

# --- one layer: what a path is there -----------------------------------------------------------


def entry_kind(path: str | Path) -> str:
    """What ``path`` is in one layer directory, as overlayfs reads it: "" (nothing), "file",
    "dir", "opaque dir", "whiteout", "symlink", "fifo", "socket" or "device"."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # ENOTDIR: a parent is not a directory
        return ""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "opaque dir" if _is_opaque(path) else "dir"
    if stat.S_ISCHR(mode) and st.st_rdev == 0:
        return "whiteout"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _is_opaque(path: str | Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:  # no such xattr, or a filesystem without xattrs
        return False


# --- the stack: which layer does the merged view show? -----------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where the merged view's ``path`` comes from."""

    path: str
    kind: str  # what the top layer has ("file", "dir", ...), or "deleted" or "missing"
    layers: tuple[str, ...] = ()  # the layer shown; for a merged directory, every layer in it
    hidden_by: str = ""  # for "deleted": the whiteout or opaque directory that hides it

    @property
    def visible(self) -> bool:
        return self.kind not in ("deleted", "missing")

    def __str__(self) -> str:
        if self.kind == "deleted":
            return f"deleted ({self.hidden_by})"
        if self.kind == "missing":
            return "not found"
        if self.kind == "opaque dir":
            return f"{self.layers[0]} (opaque directory: the layers below are hidden)"
        if self.kind == "dir" and len(self.layers) > 1:
            return " + ".join(self.layers) + " (merged directory)"
        return self.layers[0]


def stack(upper: str | Path | None, lowers: Mapping[str, str | Path]) -> list[tuple[str, Path]]:
    """The layers top first, each named: the upper dir ("upper"), then the lower dirs in the
    order overlayfs's ``lowerdir=`` lists them (top first)."""
    layers = [("upper", Path(upper))] if upper is not None else []
    return layers + [(name, Path(directory)) for name, directory in lowers.items()]


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def resolve(path: str, upper: str | Path | None,
            lowers: Mapping[str, str | Path]) -> Origin:
    """Look ``path`` up the way overlayfs does, one name at a time from the top layer down."""
    layers = stack(upper, lowers)
    parts = _parts(path)
    shown = "/" + "/".join(parts)
    active = layers  # the layers whose directory at the current depth takes part in the merge
    cut = ""  # the last opaque directory on the way, which hides the layers below it
    for depth in range(len(parts)):
        relative = "/".join(parts[:depth + 1])
        last = depth == len(parts) - 1
        hits: list[tuple[str, str]] = []  # (layer, kind), top first
        for name, root in active:
            kind = entry_kind(root / relative)
            if not kind:
                continue
            if kind == "whiteout":
                if not hits:
                    where = "" if last else f"of /{relative} "
                    return Origin(shown, "deleted", (), f"whiteout {where}in {name}")
                break  # a whiteout below a directory ends that directory's merge
            hits.append((name, kind))
            if kind != "dir":  # a file, or an opaque dir: nothing below it shows through
                break
        if not hits:
            if cut and any(entry_kind(root / relative) for _, root in layers):
                return Origin(shown, "deleted", (), cut)
            return Origin(shown, "missing")
        top_kind = hits[0][1]
        merged = tuple(name for name, kind in hits if kind in DIRECTORY_KINDS)
        if top_kind not in DIRECTORY_KINDS:
            if last:
                return Origin(shown, top_kind, (hits[0][0],))
            return Origin(shown, "missing")  # a file where the path needs a directory
        if last:
            return Origin(shown, top_kind, merged)
        if hits[len(merged) - 1][1] == "opaque dir":
            cut = f"opaque directory /{relative} in {hits[len(merged) - 1][0]}"
        active = [(name, root) for name, root in active if name in merged]
    return Origin(shown, "dir", tuple(name for name, root in layers if root.is_dir()))


def which_layer(path: str, upper: str | Path | None,
                lowers: Mapping[str, str | Path]) -> str:
    """The layer the merged view shows ``path`` from, e.g. ``"app"``, ``"deleted (whiteout in
    upper)"``, ``"upper + base (merged directory)"`` or ``"not found"``. ``lowers`` maps a name
    to each lower dir, top first; ``upper`` may be None (an image's layers alone)."""
    return str(resolve(path, upper, lowers))


def all_paths(upper: str | Path | None, lowers: Mapping[str, str | Path]) -> list[str]:
    """Every path that some layer has (whiteouts and hidden files too), sorted."""
    found = set()
    for _, root in stack(upper, lowers):
        for directory, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                found.add("/" + os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def merged_paths(upper: str | Path | None, lowers: Mapping[str, str | Path]) -> list[str]:
    """What the union mount shows, worked out from the layers alone (compare it with a ``find``
    in the real mount)."""
    return [path for path in all_paths(upper, lowers) if resolve(path, upper, lowers).visible]


def layer_table(upper: str | Path | None, lowers: Mapping[str, str | Path],
                paths: list[str] | None = None, title: str = "") -> Table:
    """One row per path: what each layer holds there, and what the merged view shows."""
    layers = stack(upper, lowers)
    rows = []
    for path in paths if paths is not None else all_paths(upper, lowers):
        relative = "/".join(_parts(path))
        cells = [entry_kind(root / relative) if relative else "dir" for _, root in layers]
        rows.append((path, *cells, which_layer(path, upper, lowers)))
    return Table(("path", *(name for name, _ in layers), "merged view shows"), rows, title)


def explain(path: str, upper: str | Path | None, lowers: Mapping[str, str | Path]) -> str:
    """A few lines for the explorer: each layer's entry at ``path``, then the verdict and, for
    a small text file, what reading it gives."""
    origin = resolve(path, upper, lowers)
    layers = stack(upper, lowers)
    relative = "/".join(_parts(path))
    width = max(len(name) for name, _ in layers)
    lines = [origin.path]
    for name, root in layers:
        kind = (entry_kind(root / relative) if relative else "dir") or "-"
        lines.append(f"  {name.ljust(width)}  {kind}")
    lines.append(f"merged view: {origin}")
    if origin.kind == "file":
        root = dict(layers)[origin.layers[0]]
        data = (root / relative).read_bytes()[:200]
        if b"\0" not in data:
            lines.append(f"reading it gives: {data.decode(errors='replace')!r}")
    return "\n".join(lines)


def layer_explorer(upper: str | Path | None, lowers: Mapping[str, str | Path]):
    """Pick a path, see which layer it comes from. The widget only wires ``explain`` (its
    callback does not run in a headless notebook run)."""
    import ipywidgets as widgets

    paths = all_paths(upper, lowers)
    choose = widgets.Dropdown(options=paths, value=paths[0], description="path")
    shown = widgets.HTML()

    def show(_change=None) -> None:
        shown.value = f"<pre>{html.escape(explain(choose.value, upper, lowers))}</pre>"

    choose.observe(show, names="value")
    show()
    return widgets.VBox([choose, shown])


# --- the mount: overlayfs's options as mountinfo shows them ------------------------------------


def _split_unescaped(text: str, separator: str) -> list[str]:
    return re.split(rf"(?<!\\){re.escape(separator)}", text)


def overlay_dirs(mount: Mount) -> dict[str, list[str]]:
    """``lowerdir`` (top first), ``upperdir`` and ``workdir`` of an overlay mount, from the
    filesystem options of its mountinfo line."""
    found: dict[str, list[str]] = {}
    for option in _split_unescaped(mount.super_options, ","):
        key, _, value = option.partition("=")
        if key == "lowerdir":
            found[key] = [d.replace("\\:", ":") for d in _split_unescaped(value, ":")]
        elif key in ("upperdir", "workdir"):
            found[key] = [value]
    return found


def overlay_table(mount: Mount) -> Table:
    """The directories of an overlay mount, one row each, the lower dirs numbered from the top."""
    dirs = overlay_dirs(mount)
    lower = dirs.get("lowerdir", [])
    rows = [(f"lowerdir {i}" + (" (top)" if i == 1 and len(lower) > 1 else ""), d)
            for i, d in enumerate(lower, start=1)]
    rows += [(key, dirs[key][0]) for key in ("upperdir", "workdir") if key in dirs]
    return Table(("option", "directory"), rows, f"overlay mounted on {mount.mount_point}")


# --- disk usage and directory trees ------------------------------------------------------------


def du(path: str | Path) -> int:
    """Bytes of disk ``path`` takes, like ``du -s -B1``: allocated blocks, each inode counted
    once (hard links and a layer's shared files are not counted twice)."""
    seen, total = set(), 0
    for directory, dirnames, filenames in os.walk(path):
        for name in [".", *dirnames, *filenames]:
            st = os.lstat(os.path.join(directory, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def tree(root: str | Path, notes: Mapping[str, str] | None = None) -> str:
    """A directory as ``tree(1)`` draws it, under its full path. ``notes`` maps an entry's name to a comment shown
    after it; entries with a note are sorted by it (so blobs, whose names are random, come out
    in a stable order), the others by name."""
    notes = notes or {}
    root = Path(root)
    lines = [f"{root}/"]

    def walk(directory: Path, indent: str) -> None:
        entries = sorted(directory.iterdir(), key=lambda p: (notes.get(p.name, ""), p.name))
        for i, entry in enumerate(entries):
            last = i == len(entries) - 1
            note = f"  {notes[entry.name]}" if entry.name in notes else ""
            slash = "/" if entry.is_dir() and not entry.is_symlink() else ""
            lines.append(f"{indent}{'└── ' if last else '├── '}{entry.name}{slash}{note}")
            if slash:
                walk(entry, indent + ("    " if last else "│   "))

    walk(root, "")
    return "\n".join(lines)


# --- tar members -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TarEntry:
    name: str
    kind: str  # "file", "dir", "symlink -> x", "whiteout of x", "opaque marker", ...
    size: int


def _member_kind(member: tarfile.TarInfo) -> str:
    base = member.name.rstrip("/").rsplit("/", 1)[-1]
    if base == OPAQUE_MARKER:
        return "opaque marker (hides the lower layers' directory)"
    if base.startswith(WHITEOUT_PREFIX) and member.isreg():
        return f"whiteout (deletes {base[len(WHITEOUT_PREFIX):]})"
    if member.issym():
        return f"symlink -> {member.linkname}"
    if member.islnk():
        return f"hard link to {member.linkname}"
    return {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
            tarfile.FIFOTYPE: "fifo", tarfile.CHRTYPE: "char device",
            tarfile.BLKTYPE: "block device"}.get(member.type, f"type {member.type!r}")


def tar_entries(path: str | Path) -> list[TarEntry]:
    """The members of a tar (plain or gzip), in the order they are stored."""
    with tarfile.open(path, "r:*") as tar:
        return [TarEntry(m.name, _member_kind(m), m.size) for m in tar]


def tar_members(path: str | Path, title: str = "") -> Table:
    return Table(("member", "type", "bytes"),
                 [(e.name, e.kind, e.size) for e in tar_entries(path)], title)


# --- images: blobs and the layer-stack graph ---------------------------------------------------


def image_name(image: Image) -> str:
    return ", ".join(sorted(image.tags)) or f"<none> ({image.short_id})"


def blob_roles(images: list[Image]) -> dict[str, str]:
    """What each blob is, by digest: "manifest of app:1", "config of app:1", "layer 1 of
    app:1, busybox:latest" (a shared layer names every image that uses it)."""
    roles: dict[str, dict[str, list[str]]] = {}
    for image in images:
        name = image_name(image)
        roles.setdefault(image.manifest_digest, {}).setdefault("manifest", []).append(name)
        roles.setdefault(image.id, {}).setdefault("config", []).append(name)
        for i, layer in enumerate(image.manifest["layers"], start=1):
            roles.setdefault(layer["digest"], {}).setdefault(f"layer {i}", []).append(name)
    return {digest: "; ".join(f"{role} of {', '.join(sorted(names))}"
                              for role, names in sorted(by_role.items()))
            for digest, by_role in roles.items()}


ImageGraph = Graph  # nodes and labelled edges (viz/graph.py)


def short(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits, as Docker shortens IDs."""
    algorithm, _, hex_digits = digest.partition(":")
    return f"{algorithm}:{hex_digits[:12]}"


def image_graph(images: list[Image]) -> ImageGraph:
    """Each image as index.json sees it: its names point at a manifest, which points at a config
    and at the layers (bottom first). A layer of several images is one node."""
    users: dict[str, set[str]] = {}
    nodes: dict[str, GraphNode] = {}
    edges = []
    for image in images:
        image_id, manifest_id = f"image:{image.id}", f"manifest:{image.manifest_digest}"
        config_id = f"config:{image.id}"
        nodes[image_id] = GraphNode(image_id, f"{image_name(image)}\nID {image.short_id}",
                                    "image")
        nodes[manifest_id] = GraphNode(manifest_id, f"manifest\n{short(image.manifest_digest)}",
                                       "manifest")
        nodes[config_id] = GraphNode(config_id, f"config\n{short(image.id)}", "config")
        edges += [(image_id, manifest_id, "manifest"), (manifest_id, config_id, "config")]
        for i, (layer, diff_id) in enumerate(zip(image.manifest["layers"], image.diff_ids,
                                                 strict=True), start=1):
            layer_id = f"layer:{layer['digest']}"
            users.setdefault(layer_id, set()).add(image.id)
            nodes[layer_id] = GraphNode(layer_id, f"layer {short(layer['digest'])}\n"
                                        f"{human_size(layer['size'])} gzip\n"
                                        f"diff_id {short(diff_id)}", "layer")
            edges.append((manifest_id, layer_id, f"layer {i}"))
    mark_shared(nodes, users)
    return ImageGraph(list(nodes.values()), edges)


STYLE = {"image": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "aliceblue"},
         "manifest": {"shape": "note", "style": "filled", "fillcolor": "white"},
         "config": {"shape": "note", "style": "filled", "fillcolor": "white"},
         "layer": {"shape": "box3d", "style": "filled", "fillcolor": "white"}}


def to_digraph(graph: ImageGraph, title: str = ""):
    """Draw the graph left to right: the names (in a box for index.json), then the blobs (in a
    box for blobs/sha256/): manifests, configs and layers. A layer that several images share
    is filled in gold (the same style as notebook 01's shared namespaces)."""
    dot = course_digraph("images", title, nodesep="0.2", ranksep="0.8")
    name = dot_names(graph.nodes)
    boxes = (("cluster_index", "index.json", ("image",)),
             ("cluster_blobs", "blobs/sha256/", ("manifest", "config", "layer")))
    for cluster, label, kinds in boxes:
        with dot.subgraph(name=cluster) as box:
            box.attr(label=label, style="dashed", color="gray50", fontname="Helvetica")
            for node in graph.nodes:
                if node.kind in kinds:
                    box.node(name[node.id], node.label, **node.style(STYLE))
    for source, target, label in graph.edges:
        dot.edge(name[source], name[target], label=label, color="gray40")
    return dot


def draw_images(images: list[Image], title: str = ""):
    """The live picture of some images of the store (``ImageStore().get(...)`` each)."""
    return to_digraph(image_graph(images), title)
