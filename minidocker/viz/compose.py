"""Notebook 13's pictures: a Compose file next to what it became, and a project's timeline.

``project_graph(project, records)`` puts the services of the file (left) beside the engine's
objects they turned into (right): each container with its replica number, the networks it is on
under which aliases, the volumes it mounts where. Everything on the right is read from the
containers' records (their labels, ``NetworkSettings``, ``Mounts``), nothing from the file, so
the picture shows what the engine holds. ``timeline(records)`` gives each container's start and
end from ``State.StartedAt``/``FinishedAt`` (seconds after the first start), which
``draw_timeline`` plots: ``depends_on`` seen as an order in time.

Spec: the Compose Specification (services, networks, volumes); the graphviz DOT language.
Used by: notebooks/13-compose.ipynb.
"""

from datetime import datetime

from minidocker.viz.graph import Graph, GraphNode, course_digraph, dot_names

SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
STYLE = {"service": {"shape": "note", "style": "filled", "fillcolor": "lightyellow"},
         "container": {"shape": "box", "style": "rounded,filled", "fillcolor": "lightblue"},
         "network": {"shape": "ellipse", "style": "filled", "fillcolor": "palegreen"},
         "volume": {"shape": "cylinder", "style": "filled", "fillcolor": "wheat"}}


def project_graph(project, records) -> Graph:
    """The file's services, and the containers, networks and volumes the engine holds."""
    nodes = {f"service:{name}": GraphNode(f"service:{name}", f"service {name}", "service")
             for name in project.services}
    edges = []
    for record in records:
        labels = record.Config.Labels
        container = f"container:{record.Name}"
        nodes[container] = GraphNode(container, record.Name, "container")
        edges.append((f"service:{labels.get(SERVICE)}", container, f"#{labels.get(NUMBER)}"))
        for network, settings in (record.NetworkSettings.get("Networks") or {}).items():
            nodes.setdefault(f"network:{network}", GraphNode(f"network:{network}", network,
                                                             "network"))
            aliases = [a for a in settings.get("Aliases") or [] if a != record.Id[:12]]
            edges.append((container, f"network:{network}", ", ".join(aliases)))
        for mount in record.Mounts:
            if mount.get("Type") == "volume" and mount.get("Name"):
                name = mount["Name"] if len(mount["Name"]) != 64 else "(anonymous)"
                nodes.setdefault(f"volume:{name}", GraphNode(f"volume:{name}", name, "volume"))
                edges.append((container, f"volume:{name}", mount.get("Destination", "")))
    return Graph(list(nodes.values()), edges)


def draw_project(project, records, title: str = ""):
    """The picture of ``project_graph`` (a graphviz object the notebook displays)."""
    graph = project_graph(project, records)
    dot = course_digraph("compose", title, ranksep="0.8")
    name = dot_names(graph.nodes)
    with dot.subgraph(name="cluster_file") as box:
        box.attr(label="the Compose file", style="dashed", color="gray50")
        for node in graph.nodes:
            if node.kind == "service":
                box.node(name[node.id], node.label, **STYLE["service"])
    for node in graph.nodes:
        if node.kind != "service":
            dot.node(name[node.id], node.label, **STYLE[node.kind])
    for source, target, label in graph.edges:
        if source in name:
            dot.edge(name[source], name[target], label=label, color="gray40")
    return dot


def seconds(timestamp: str) -> float | None:
    if not timestamp:
        return None
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def timeline(records) -> list[tuple[str, float, float | None]]:
    """``(container, started, finished or None)`` in seconds after the first start, in the
    order the containers started."""
    rows = [(r.Name, seconds(r.State.get("StartedAt", "")),
             seconds(r.State.get("FinishedAt", "")) if r.State.get("Status") == "exited"
             else None) for r in records]
    rows = [row for row in rows if row[1] is not None]
    first = min((start for _, start, _ in rows), default=0.0)
    return sorted(((name, start - first, None if end is None else end - first)
                   for name, start, end in rows), key=lambda row: row[1])


def draw_timeline(records, now: float | None = None):
    """A bar per container from its start to its end (or to ``now``, still running)."""
    import matplotlib.pyplot as plt

    rows = timeline(records)
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(rows) + 1))
    end_of_plot = max([end or start for _, start, end in rows] + [now or 0.0]) + 0.5
    for index, (name, start, end) in enumerate(reversed(rows)):
        axes.barh(index, (end if end is not None else end_of_plot) - start, left=start,
                  color="lightgray" if end is not None else "lightblue", edgecolor="gray")
        axes.text(start, index, f" {name}" + ("" if end is None else " (exited)"),
                  va="center", fontsize=9)
    axes.set_yticks([])
    axes.set_xlabel("seconds after the first container started")
    plt.close(figure)
    return figure
