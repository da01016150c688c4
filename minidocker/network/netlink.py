"""pyroute2 and event loops: ``IPRoute`` (pyroute2 ≥ 0.9) drives its netlink socket with an
asyncio loop of its own, which Python refuses to start inside a running one — and a Jupyter
kernel runs every cell inside one. ``outside_event_loop`` runs a function that talks netlink
in a worker thread when the caller's thread has a running loop, and directly otherwise (the
CLI, the monitor, the tests): the same code for both, and the notebooks can call the engine.

Man pages: netlink(7), rtnetlink(7).
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor


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
