"""A build as a picture: each step, the container it ran in, the image and the layer it made,
and which steps the cache answered.

The classic builder's output says it all, line by line (``Step N/M : ...``, ``---> Running in
<container>``, ``---> Using cache``, ``---> <image>``); ``parse_build`` reads those lines back
into ``BuildStep``s, ``step_layers`` asks the store which of the step images added a layer (a
RUN, COPY or ADD) and which only changed the config (an ``empty_layer`` history entry), and
``build_graph`` turns both into nodes and edges: step -> container -> image (-> layer), the
images chained parent to child. A cache hit has no container, and its image is filled in gold.

Spec: the classic builder's output (moby builder/dockerfile); the image config's ``history``
(opencontainers/image-spec config.md).
Used by: notebook 10-builds (``draw_build``).
"""

import re
from dataclasses import dataclass

from minidocker.image.store import Image, human_size
from minidocker.viz.graph import FITS_THE_COLUMN, Graph, GraphNode

STEP = re.compile(r"^Step (\d+)/\d+ : (.*)$")
RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]{12})$")
RESULT = re.compile(r"^ ---> ([0-9a-f]{12})$")


@dataclass(frozen=True)
class BuildStep:
    number: int
    instruction: str  # as the Step line shows it
    image: str = ""  # the short ID of the image the step ended with
    container: str = ""  # the short ID of the RUN's container, "" when none was started
    cached: bool = False  # "---> Using cache"


@dataclass(frozen=True)
class StepLayer:
    """What a step's image added to its parent: a layer (its short diff_id and gzip size), or
    nothing but config (``empty_layer``)."""

    diff_id: str = ""
    size: int = 0


def parse_build(output: str) -> list[BuildStep]:
    """The steps of a plain (``--progress=plain``) build output, in order."""
    steps: list[BuildStep] = []
    for line in output.splitlines():
        if match := STEP.match(line):
            steps.append(BuildStep(int(match.group(1)), match.group(2)))
        elif not steps:
            continue
        elif match := RUNNING.match(line):
            steps[-1] = replace(steps[-1], container=match.group(1))
        elif line == " ---> Using cache":
            steps[-1] = replace(steps[-1], cached=True)
        elif match := RESULT.match(line):
            steps[-1] = replace(steps[-1], image=match.group(1))
    return steps


def replace(step: BuildStep, **changes) -> BuildStep:
    return BuildStep(**{**step.__dict__, **changes})


def step_layers(steps: list[BuildStep], images: list[Image]) -> dict[str, StepLayer]:
    """For each step image (by short ID): the layer it added on top of the step before, or an
    empty StepLayer when its last history entry is ``empty_layer``."""
    by_short = {image.short_id: image for image in images}
    found = {}
    for step in steps:
        image = by_short.get(step.image)
        if image is None:
            continue
        history = image.config.get("history") or [{}]
        if history[-1].get("empty_layer") or not image.diff_ids:
            found[step.image] = StepLayer()
        else:
            found[step.image] = StepLayer(short(image.diff_ids[-1]),
                                          image.manifest["layers"][-1]["size"])
    return found


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def build_graph(steps: list[BuildStep], layers: dict[str, StepLayer]) -> Graph:
    """step -> container (a RUN that ran) -> image -> layer (when it made one); each image
    points at the next step's image as its parent. A cache hit's image is marked shared (gold):
    it was made by an earlier build, and this one only found it."""
    nodes, edges = [], []
    previous = ""
    for step in steps:
        step_id, image_id = f"step:{step.number}", f"image:{step.image}"
        nodes.append(GraphNode(step_id, f"Step {step.number}\n{clip(step.instruction)}", "step"))
        if step.container:
            container_id = f"container:{step.container}"
            nodes.append(GraphNode(container_id, f"container\n{step.container}", "container"))
            edges += [(step_id, container_id, "runs in"), (container_id, image_id, "commit")]
        else:
            edges.append((step_id, image_id, "Using cache" if step.cached else ""))
        if not any(node.id == image_id for node in nodes):
            nodes.append(GraphNode(image_id, f"image\n{step.image}", "image", shared=step.cached))
        layer = layers.get(step.image)
        if layer is not None and layer.diff_id:
            layer_id = f"layer:{layer.diff_id}"
            if not any(node.id == layer_id for node in nodes):
                nodes.append(GraphNode(layer_id, f"layer {layer.diff_id}\n"
                                       f"{human_size(layer.size)} gzip", "layer"))
            edges.append((image_id, layer_id, "adds"))
        if previous and previous != image_id:
            edges.append((previous, image_id, "parent of"))
        previous = image_id
    return Graph(nodes, edges)


def clip(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


STYLE = {"step": {"shape": "box", "style": "filled", "fillcolor": "white"},
         "container": {"shape": "box", "style": "rounded,filled", "fillcolor": "honeydew"},
         "image": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "aliceblue"},
         "layer": {"shape": "box3d", "style": "filled", "fillcolor": "white"}}


def rows(graph: Graph) -> list[list[str]]:
    """The graph as the build's rows, one per step: [step, container or "", image, layer or
    ""], following the edges out of each step node."""
    out: dict[str, list[tuple[str, str]]] = {}
    for source, target, label in graph.edges:
        out.setdefault(source, []).append((target, label))
    kinds = {node.id: node.kind for node in graph.nodes}
    found = []
    for node in graph.nodes:
        if node.kind != "step":
            continue
        row, current = [node.id, "", "", ""], node.id
        for column, kind in ((1, "container"), (2, "image"), (3, "layer")):
            nxt = next((t for t, label in out.get(current, []) if kinds[t] == kind
                        and label != "parent of"), "")
            if nxt:
                row[column], current = nxt, nxt
        found.append(row)
    return found


def to_digraph(graph: Graph, title: str = ""):
    """One row per step, top to bottom: the instruction, its container, its image, its layer;
    the images chained down the middle, each the parent of the next."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    dot = graphviz.Digraph("build", graph_attr={"rankdir": "TB", "size": FITS_THE_COLUMN,
                                                "label": title, "labelloc": "t",
                                                "fontname": "Helvetica", "nodesep": "0.3",
                                                "ranksep": "0.25", "newrank": "true"},
                           node_attr={"fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    name = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    nodes = {node.id: node for node in graph.nodes}
    previous_step = ""
    for number, row in enumerate(rows(graph)):
        with dot.subgraph(name=f"row{number}") as line:
            line.attr(rank="same")
            for column, node_id in enumerate(row):
                if not node_id:  # keep the columns straight: an invisible stand-in
                    line.node(f"gap{number}_{column}", "", style="invis", width="1.2")
                    continue
                style = dict(STYLE[nodes[node_id].kind])
                if nodes[node_id].shared:
                    style["fillcolor"] = "gold"
                line.node(name[node_id], nodes[node_id].label, **style)
        if previous_step:
            dot.edge(name[previous_step], name[row[0]], style="invis")
        previous_step = row[0]
    for source, target, label in graph.edges:
        dot.edge(name[source], name[target], label=label, color="gray40",
                 **({"style": "dashed"} if label == "parent of" else {}))
    return dot


def draw_build(output: str, images: list[Image], title: str = ""):
    """The live picture of a build from its output (``minidocker("build", ...).output``) and
    the store's images (``ImageStore().images()``)."""
    steps = parse_build(output)
    return to_digraph(build_graph(steps, step_layers(steps, images)), title)
