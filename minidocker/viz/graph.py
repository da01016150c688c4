"""The data behind the notebooks' pictures: nodes and labelled edges, built from live state
and tested as data (the SVG graphviz draws from it is not compared by nbval).

Spec: the graphviz DOT language (what each graph becomes when it is drawn).
Used by: viz/layers.py (notebook 05-images, the image graph) and viz/volumes.py (notebook
07-volumes, the mount graph).
"""

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


@dataclass
class Graph:
    nodes: list[GraphNode]
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (source, target, label)

    def node(self, node_id: str) -> GraphNode:
        return next(n for n in self.nodes if n.id == node_id)
