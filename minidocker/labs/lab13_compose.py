"""Checker of lab 13 — compose: the start order of ``depends_on``, its cycles, and the stop order.

The student writes three functions of a dependency graph (service -> the services it depends
on). Steps 1 and 2 hand them graphs and check the answer against the graph itself: every
service once, each after its dependencies; a cycle given as a real path round the graph.
Step 3 brings a real project up with the student's start order and down with their stop order,
through minidocker's compose (``compose.project``) in the sandbox, on a tmpfs state root of its
own (the busybox image is made there): the engine's own ``StartedAt``/``FinishedAt`` of each
container must follow the dependencies.

Spec: the Compose Specification, ``depends_on``. Used by: ``minidocker lab check 13``; the lab
is labs/13-compose/.
"""

import os
from pathlib import Path

from minidocker.labs.framework import Lab, Step, function, scratch_workspace
from minidocker.labs.sandbox import CheckFailed, mount_scratch

CHAIN = {"web": ["app"], "app": ["db"], "db": [], "cache": []}
DIAMOND = {"web": ["api", "auth"], "api": ["db"], "auth": ["db"], "db": [], "admin": ["web"]}
CYCLES = [{"a": ["b"], "b": ["c"], "c": ["a"]}, {"solo": ["solo"]},
          {"x": [], "y": ["x"], "p": ["q"], "q": ["r", "x"], "r": ["p"]}]
PROJECT = """
services:
  web: {image: busybox, init: true, command: sleep 60, network_mode: none, depends_on: [app]}
  app: {image: busybox, init: true, command: sleep 60, network_mode: none, depends_on: [db]}
  db: {image: busybox, init: true, command: sleep 60, network_mode: none}
  cache: {image: busybox, init: true, command: sleep 60, network_mode: none}
"""


def misplaced(order, depends: dict, before: bool) -> str:
    """What is wrong with ``order`` for ``depends`` ("" when nothing): each service once, and
    each one after (``before`` False) or before (True) the services it depends on."""
    if not isinstance(order, list):
        return f"it returned {order!r}, not a list of services"
    if sorted(order) != sorted(depends):
        return f"it returned {order}: each of {list(depends)} must be there once"
    for service, needs in depends.items():
        for dependency in needs:
            if (order.index(service) < order.index(dependency)) != before:
                where = "before" if order.index(service) < order.index(dependency) else "after"
                return (f"it returned {order}: {service} comes {where} {dependency}, which it "
                        "depends on")
    return ""


def check_start_order(student, _workspace) -> str:
    start_order = function(student, "start_order")
    for graph in (CHAIN, DIAMOND):
        given = {k: list(v) for k, v in graph.items()}
        problem = misplaced(start_order(given), graph, before=False)
        if problem:
            raise CheckFailed(f"start_order({graph}): {problem}")
        if given != graph:
            raise CheckFailed("start_order() changed the graph it was given: leave it as it is")
    return (f"{start_order(dict(CHAIN))} for {CHAIN}; {start_order(dict(DIAMOND))} for the "
            "diamond web -> api, auth -> db")


def is_cycle(path, graph: dict) -> bool:
    return (isinstance(path, list) and len(path) >= 2 and path[0] == path[-1]
            and len(set(path[:-1])) == len(path) - 1
            and all(b in graph.get(a, []) for a, b in zip(path, path[1:], strict=False)))


def check_find_cycle(student, _workspace) -> str:
    find_cycle = function(student, "find_cycle")
    for graph in (CHAIN, DIAMOND):
        found = find_cycle(dict(graph))
        if found is not None:
            raise CheckFailed(f"find_cycle({graph}) returned {found!r}, but this graph has no "
                              "cycle: return None")
    shown = []
    for graph in CYCLES:
        found = find_cycle(dict(graph))
        if not is_cycle(found, graph):
            raise CheckFailed(f"find_cycle({graph}) returned {found!r}: give the path round "
                              "the cycle, each step a dependency, the first service again at "
                              "the end (like ['a', 'b', 'a'])")
        shown.append(" -> ".join(found))
    return "the cycles found: " + "; ".join(shown)


def check_stop_order(student, scratch: str) -> str:
    start_order, stop_order = function(student, "start_order"), function(student, "stop_order")
    problem = misplaced(stop_order(dict(DIAMOND)), DIAMOND, before=True)
    if problem:
        raise CheckFailed(f"stop_order({DIAMOND}): {problem}")
    graph = {"web": ["app"], "app": ["db"], "db": [], "cache": []}
    started, stopped = up_and_down(scratch, start_order(dict(graph)), stop_order(dict(graph)))
    problem = misplaced(started, graph, before=False) or misplaced(stopped, graph, before=True)
    if problem:
        raise CheckFailed(f"the engine's clocks disagree: {problem}")
    return (f"the engine started {', '.join(started)} (by State.StartedAt) and stopped "
            f"{', '.join(stopped)} (by State.FinishedAt)")


def up_and_down(scratch: str, start: list[str], stop: list[str]) -> tuple[list, list]:
    """The project up, one service at a time in ``start``, then stopped in ``stop`` order and
    removed; the services in the order the engine's own timestamps give."""
    mount_scratch(scratch)  # a state root of our own: gone with the sandbox
    os.environ["MINIDOCKER_ROOT"] = f"{scratch}/state"
    from minidocker.compose import loader, project
    from minidocker.container import lifecycle
    from minidocker.image.busybox import create_busybox_image

    create_busybox_image()
    Path(scratch, "compose.yaml").write_text(PROJECT)
    model = loader.load(loader.Options(files=["compose.yaml"], cwd=scratch, environ={},
                                       project_name="lab13"))
    try:
        for service in start:
            project.up(model, project.UpOptions([service], no_deps=True), lambda _line: None)
        for service in stop:
            for record in project.containers("lab13", [service]):
                lifecycle.stop(record)
        records = [r.reload() for r in project.containers("lab13")]
    finally:
        project.down("lab13", None, lambda _line: None)

    def by(key: str) -> list[str]:
        ordered = sorted(records, key=lambda r: r.State[key])
        return [r.Config.Labels["com.docker.compose.service"] for r in ordered]

    return by("StartedAt"), by("FinishedAt")


LAB = Lab(
    directory="13-compose",
    steps=(
        Step(1, "the start order of depends_on", check_start_order),
        Step(2, "a cycle in depends_on, found and shown", check_find_cycle),
        Step(3, "a project up and down in your orders, on the real engine", check_stop_order),
    ),
    workspace=lambda: scratch_workspace("13"),
)
