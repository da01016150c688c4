"""The data behind the notebooks' pictures: nodes and labelled edges, built from live state
and tested as data (the SVG graphviz draws from it is not compared by nbval)."""

from dataclasses import dataclass, field


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
