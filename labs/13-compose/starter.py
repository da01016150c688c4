"""Lab 13 — compose: the start order of a project, as ``depends_on`` says it.

A Compose file says which service needs which: ``web`` depends on ``app``, ``app`` on ``db``.
``compose up`` must start ``db`` first, ``web`` last; ``compose down`` stops them the other way
round; and a file whose ``depends_on`` goes round in a circle can never start. You write these
three rules as functions of a *graph*: a dict from each service to the list of services it
depends on, in the order of the file::

    {"web": ["app"], "app": ["db"], "db": [], "cache": []}

Check your work (step 3 brings a real project up and down with your order, in a sandbox):

    sudo minidocker lab check 13                # this file
    sudo minidocker lab check 13 PATH           # a copy of it

Steps and hints: labs/13-compose/README.md. Spec: the Compose Specification, ``depends_on``.
"""


def start_order(depends: dict[str, list[str]]) -> list[str]:
    """Step 1: every service once, each one after all the services it depends on; services
    that do not depend on each other keep the order of the file (of ``depends``)."""
    # TODO Step 1: place a service only once everything it depends on is placed.
    raise NotImplementedError("Step 1: start_order() is not written yet")


def find_cycle(depends: dict[str, list[str]]) -> list[str] | None:
    """Step 2: a cycle of ``depends_on`` as the path that goes round it, the first service
    repeated at the end (``["a", "b", "a"]``), or None when there is none."""
    # TODO Step 2: walk the graph; meeting a service again while you are still below it means
    #              a cycle.
    raise NotImplementedError("Step 2: find_cycle() is not written yet")


def stop_order(depends: dict[str, list[str]]) -> list[str]:
    """Step 3: the order in which ``compose down`` stops the services: each one before the
    services it depends on."""
    # TODO Step 3: which services may still need a service while it stops?
    raise NotImplementedError("Step 3: stop_order() is not written yet")
