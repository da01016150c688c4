"""pyroute2's rtnetlink client, loaded alone, and event loops.

``import pyroute2`` runs the package's ``__init__``, which imports every netlink family the
library knows (IPDB, NDB, conntrack, ethtool, nl80211, IPVS, WireGuard...): 163 modules, where
``IPRoute`` needs 99 — on the CLI's path of every ``run`` on a bridge. ``_rtnetlink_only``
registers the package as a module object whose ``__init__`` has not run (importlib's
``module_from_spec``, the documented recipe of a lazy import), so ``from pyroute2.iproute
import IPRoute`` loads that subpackage and what it imports, nothing more. Anyone who later asks
the package itself for a name (``from pyroute2 import IPRoute``, as the notebooks, viz/network.py
and lab 08 do) reaches its module ``__getattr__`` (PEP 562), which runs the real ``__init__``
then: the same module, every name there, ``IPRoute`` the same class.

``IPRoute`` (pyroute2 ≥ 0.9) drives its netlink socket with an
asyncio loop of its own, which Python refuses to start inside a running one — and a Jupyter
kernel runs every cell inside one. ``outside_event_loop`` runs a function that talks netlink
in a worker thread when the caller's thread has a running loop, and directly otherwise (the
CLI, the monitor, the tests): the same code for both, and the notebooks can call the engine.

Man pages: netlink(7), rtnetlink(7).
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import asyncio
import functools
import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor


def _rtnetlink_only() -> None:
    """Put pyroute2 in ``sys.modules`` without running its ``__init__`` (unless it is there)."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    package = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not run

    def __getattr__(name: str):
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            raise AttributeError(name)  # a subpackage: the import system loads it next
        del package.__getattr__  # from now on a plain module
        spec.loader.exec_module(package)  # the real __init__, into the same module
        return getattr(package, name)

    package.__getattr__ = __getattr__
    sys.modules["pyroute2"] = package


_rtnetlink_only()
from pyroute2.iproute import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError", "outside_event_loop"]


def outside_event_loop(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop here: the common case
            return function(*args, **kwargs)
        with ThreadPoolExecutor(max_workers=1) as worker:
            return worker.submit(function, *args, **kwargs).result()
    return wrapper
