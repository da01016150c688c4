"""Stage 6 — the lifecycle: the typed configuration in the Engine API's words (config.py),
IDs and names (names.py), the record on disk (records.py), create (create.py), the start
story (start.py) with its network (networking.py) and shared and user namespaces
(sharing.py), the one teardown (teardown.py), the monitor (monitor.py), logs (logs.py),
attach (attach.py), exec (exec.py), the state machine and the user's moves (lifecycle.py), and
the terminal (tty.py).

Spec: the Docker Engine API (ContainerCreate, ContainerStart, ContainerWait, ContainerDelete);
man pages: see each module. Used by: notebooks 00 and 06, lab 06."""

from minidocker.container.config import Config, HostConfig, NetworkMode
from minidocker.container.create import create
from minidocker.container.start import Container, run, start

__all__ = ["Config", "Container", "HostConfig", "NetworkMode", "create", "run", "start"]
