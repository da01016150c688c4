"""Top layer — live pictures and tables for the notebooks, drawn from what the kernel reports.

    cli.py           minidocker(...) and host(...): run a command, show it like a terminal
    nsgraph.py       /proc/<pid>/ns as tables, and the namespace graph (data, then graphviz)
    mounts.py        /proc/<pid>/mountinfo parsed into rows
    layers.py        which layer a path comes from, overlay and tar tables, du, the image graph
    rootfs_story.py  the pivot_root story, one syscall at a time, observed from inside
    cgroups.py       the cgroup tree, v1/v2 files side by side, usage sampled over time, plots
    lifecycle.py     the container state machine, process trees and signals from /proc
    volumes.py       which container mounts what, with the kernel's mountinfo line
    network.py       the network topology from netlink, and a packet's path traced
    compose.py       a Compose file beside what it became; a project's timeline
    security.py      the escape table (each escape tried from inside), the uid map graph
    build.py         a build as steps -> containers -> images and layers, cache hits in gold
    registry.py      a registry's HTTP conversation (table, sequence diagram), its files as a tree
    graph.py         the nodes-and-edges data that the graph pictures draw
    table.py         the Table every helper returns (plain text and HTML)
    refresh.py       python -m minidocker.viz.refresh notebooks/*.ipynb (./kit notebooks)

Each helper keeps its logic in plain functions that tests call; graphviz is imported only when
a picture is drawn. Each module names the man pages of what it reads (proc(5), cgroups(7),
rtnetlink(7) ...).
Used by: every notebook, 00-tour to 15-scheduling (each module names its own).
"""

from minidocker.viz.cgroups import draw_cgroup_tree, files_table, memory_widget, sample
from minidocker.viz.cli import host, minidocker
from minidocker.viz.layers import (
    blob_roles,
    draw_images,
    du,
    layer_explorer,
    layer_table,
    merged_paths,
    overlay_table,
    tar_entries,
    tar_members,
    tree,
    which_layer,
)
from minidocker.viz.mounts import mount_table, mountinfo
from minidocker.viz.nsgraph import compare_table, draw_namespaces, proc_ns
from minidocker.viz.rootfs_story import pivot_root_story
from minidocker.viz.table import Table

__all__ = ["Table", "compare_table", "draw_cgroup_tree", "draw_namespaces", "files_table", "host",
           "memory_widget", "minidocker", "mount_table", "mountinfo", "pivot_root_story",
           "proc_ns", "sample"]
__all__ += ["blob_roles", "draw_images", "du", "layer_explorer", "layer_table", "merged_paths",
            "overlay_table", "tar_entries", "tar_members", "tree", "which_layer"]
