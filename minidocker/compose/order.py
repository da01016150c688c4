"""Stage 13 — the start order of a project: ``depends_on`` as a graph, sorted, cycles refused.

``web`` depends on ``app``, which depends on ``db``: ``up`` starts db, app, web (and ``down``
stops them the other way round). That is a topological sort of the graph "service -> the
services it depends on", done here depth first: a service is placed once everything it
depends on is placed. Meeting a service again while its own dependencies are still being
placed (it is "in progress") means the graph has a cycle, which no order can satisfy; the
error names it, ``a -> b -> a``. Among services that do not depend on each other, the order
of the file is kept, so the same file always starts the same way.

Spec: the Compose Specification, ``depends_on`` (05-services.md). Used by: project.py, lab
13-compose (the student writes ``start_order``).
"""

from collections.abc import Mapping

from minidocker.errors import MinidockerError


class DependencyCycle(MinidockerError):
    """``depends_on`` goes round in a circle."""


def start_order(depends: Mapping[str, list[str]]) -> list[str]:
    """The services in an order that starts each one after the services it depends on."""
    placed: list[str] = []
    state: dict[str, str] = {}  # service -> "in progress" | "placed"

    def visit(service: str, path: list[str]) -> None:
        if state.get(service) == "placed":
            return
        if state.get(service) == "in progress":
            cycle = path[path.index(service):] + [service]
            raise DependencyCycle(f"depends_on has a cycle: {' -> '.join(cycle)} (a service "
                                  "cannot wait for itself: remove one of these dependencies)")
        state[service] = "in progress"
        for dependency in depends.get(service, []):
            visit(dependency, [*path, service])
        state[service] = "placed"
        placed.append(service)

    for service in depends:
        visit(service, [])
    return placed
