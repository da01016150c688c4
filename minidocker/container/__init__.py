"""Stage 6 — the container lifecycle: the spec (spec.py), IDs and names (names.py), the record
on disk (records.py), the start story (start.py) and the terminal (tty.py)."""

from minidocker.container.spec import ContainerSpec
from minidocker.container.start import Container, create, run, start

__all__ = ["Container", "ContainerSpec", "create", "run", "start"]
