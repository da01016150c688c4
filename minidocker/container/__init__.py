"""Stage 6 — the lifecycle: the typed configuration in the Engine API's words (config.py),
IDs and names (names.py), the record on disk (records.py), create (create.py), the start
story (start.py) with its network (networking.py) and shared and user namespaces
(sharing.py), the one teardown (teardown.py), the monitor (monitor.py) and its lean watcher
(relay.py, watch.py), logs (logs.py, jsonfile.py), attach (attach.py), exec (exec.py), the
state machine and the user's moves (lifecycle.py), and the terminal (tty.py).

The names below load on first use (PEP 562's module ``__getattr__``): importing one small
module of this package — the detached monitor's watcher imports only relay.py and its few
friends — must not load the whole engine. ``create`` and ``start`` are modules here; their
functions are ``create.create`` and ``start.start`` (or ``from minidocker.container.start
import start``).

Spec: the Docker Engine API (ContainerCreate, ContainerStart, ContainerWait, ContainerDelete);
man pages: see each module. Used by: notebooks 00 and 06, lab 06."""

import importlib

_LAZY = {"Config": "config", "HostConfig": "config", "NetworkMode": "config",
         "Container": "start", "run": "start"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
