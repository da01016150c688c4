"""A sequence diagram: two lifelines, one for a client and one for a server, and the messages
between them as arrows, top to bottom in time.

``Arrow`` is one message: who sent it (``"client"`` or ``"server"``), its label, its colour,
and whether it is drawn dashed (an answer) or solid (a request). ``sequence_graph`` turns a
list of arrows into the data of the diagram (tested as data); ``draw_sequence`` draws it with
graphviz. The registry's conversation (viz/registry.py) and the Engine API's (viz/daemon.py)
both become arrows and are drawn here.

Spec: the graphviz DOT language (``rank=same`` rows, ``constraint=false`` edges).
Used by: viz/registry.py (notebook 11-registries), viz/daemon.py (notebook 12-client-and-daemon).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from minidocker.viz.graph import FITS_THE_COLUMN, Graph, GraphNode

SIDES = ("client", "server")


@dataclass(frozen=True)
class Arrow:
    side: str  # who sends it: "client" or "server"
    label: str
    colour: str = "black"
    dashed: bool = False


def sequence_graph(arrows: Iterable[Arrow], client: str = "client",
                   server: str = "server") -> Graph:
    """Two lifelines (nodes ``client:N`` and ``server:N``, one pair per moment, under the heads
    ``client:head`` and ``server:head``) and an edge per arrow from its sender's node of its
    moment to the other's. Lifeline edges have the label ``""``."""
    nodes = [GraphNode("client:head", client, "participant"),
             GraphNode("server:head", server, "participant")]
    edges = []
    previous = "head"
    for moment, arrow in enumerate(arrows):
        for lifeline in SIDES:
            nodes.append(GraphNode(f"{lifeline}:{moment}", "", "moment"))
            edges.append((f"{lifeline}:{previous}", f"{lifeline}:{moment}", ""))
        other = "server" if arrow.side == "client" else "client"
        edges.append((f"{arrow.side}:{moment}", f"{other}:{moment}", arrow.label))
        previous = str(moment)
    return Graph(nodes, edges)


def draw_sequence(arrows: Iterable[Arrow], client: str = "client", server: str = "server",
                  title: str = ""):
    """The picture of ``sequence_graph``, each arrow in its colour and style."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    arrows = list(arrows)
    graph = sequence_graph(arrows, client, server)
    dot = graphviz.Digraph("sequence", graph_attr={
        "rankdir": "TB", "size": FITS_THE_COLUMN, "nodesep": "4", "ranksep": "0.5",
        "label": title, "labelloc": "t", "fontname": "Helvetica"},
        node_attr={"fontname": "Helvetica", "fontsize": "11"},
        edge_attr={"fontname": "Courier", "fontsize": "9"})
    plain = {node.id: node.id.replace(":", "_") for node in graph.nodes}
    moments = [n.id.split(":")[1] for n in graph.nodes if n.id.startswith("client:")]
    for moment in moments:
        with dot.subgraph() as row:  # the two ends of a message side by side
            row.attr(rank="same")
            for lifeline in SIDES:
                node = graph.node(f"{lifeline}:{moment}")
                if node.kind == "participant":
                    row.node(plain[node.id], node.label, shape="box", style="filled",
                             fillcolor="#eeeeee")
                else:
                    row.node(plain[node.id], "", shape="point", width="0.01")
    messages = iter(arrows)
    for source, target, label in graph.edges:
        if not label:  # a lifeline: dashed, straight down
            dot.edge(plain[source], plain[target], style="dashed", arrowhead="none",
                     weight="100", color="#999999")
            continue
        arrow = next(messages)
        shown = label.replace("\\", "\\\\")  # a backslash is DOT's escape: keep it as is
        dot.edge(plain[source], plain[target], label=shown, color=arrow.colour,
                 fontcolor=arrow.colour, constraint="false",
                 style="dashed" if arrow.dashed else "solid")
    return dot
