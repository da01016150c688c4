"""The data behind the notebooks' pictures: nodes and labelled edges, built from live state
and tested as data (the SVG graphviz draws from it is not compared by nbval).

Spec: the graphviz DOT language (what each graph becomes when it is drawn).
Used by: viz/layers.py (notebook 05-images, the image graph), viz/volumes.py (notebook
07-volumes, the mount graph) and the other pictures that draw with ``course_digraph``.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

# graphviz's "size": at most 8.5 inches wide (a notebook column), as tall as it needs; a smaller
# graph keeps its own size. Every picture of the course uses it, so none runs past the column.
FITS_THE_COLUMN = "8.5,40"


@dataclass(frozen=True)
class GraphNode:
    id: str  # "<kind>:<name>", e.g. "layer:sha256:…", "volume:notes"
    label: str
    kind: str  # what it is, for its colour and shape: "image", "layer", "volume", ...
    shared: bool = False  # used by more than one of its neighbours (a layer, a volume)

    def style(self, styles: dict[str, dict[str, str]]) -> dict[str, str]:
        """Its graphviz attributes: its kind's in ``styles``, filled in gold when it is shared
        (the course's colour for one thing seen from several places)."""
        style = dict(styles[self.kind])
        if self.shared:
            style["fillcolor"] = "gold"
        return style


@dataclass
class Graph:
    nodes: list[GraphNode]
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (source, target, label)

    def node(self, node_id: str) -> GraphNode:
        return next(n for n in self.nodes if n.id == node_id)


def mark_shared(nodes: dict[str, GraphNode], users: dict[str, set[str]]) -> None:
    """Mark, in ``nodes``, each node that more than one user uses (``users``: node id -> the ids
    of who uses it): a layer in several images, a volume in several containers."""
    for node_id, using in users.items():
        if len(using) > 1:
            old = nodes[node_id]
            nodes[node_id] = GraphNode(old.id, old.label, old.kind, shared=True)


def dot_names(nodes: Iterable) -> dict[str, str]:
    """A plain DOT name for the id of each of ``nodes``: DOT reads "a:b" in an edge as node a,
    port b, and our ids ("layer:sha256:…") are full of colons."""
    return {node.id: f"n{i}" for i, node in enumerate(nodes)}


def course_digraph(name: str, title: str, rankdir: str = "LR", **spacing: str):
    """An empty graphviz ``Digraph`` in the course's look: Helvetica, its title on top, 11 pt
    nodes and 9 pt edge labels, no wider than a notebook column; ``spacing`` is graphviz's
    ``nodesep`` and ``ranksep`` (inches, as strings), where the picture wants its own."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    return graphviz.Digraph(name, graph_attr={"rankdir": rankdir, "size": FITS_THE_COLUMN,
                                              "label": title, "labelloc": "t",
                                              "fontname": "Helvetica", **spacing},
                            node_attr={"fontname": "Helvetica", "fontsize": "11"},
                            edge_attr={"fontname": "Helvetica", "fontsize": "9"})
