"""Stage 6 — the container lifecycle: the spec (spec.py), IDs and names (names.py), the record
on disk (records.py), the start story (start.py) with its network (networking.py) and shared
and user namespaces (sharing.py), the monitor (monitor.py), logs (logs.py), attach
(attach.py), exec (exec.py), the state machine and the user's moves (lifecycle.py), and the
terminal (tty.py)."""

from minidocker.container.spec import ContainerSpec
from minidocker.container.start import Container, create, run, start

__all__ = ["Container", "ContainerSpec", "create", "run", "start"]
