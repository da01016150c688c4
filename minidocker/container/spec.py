"""What a container is made of, as data: the image, the command and the flags of ``run``."""

import os
from dataclasses import dataclass, field

from minidocker.cgroups import Limits

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ContainerSpec:
    """Everything ``minidocker run`` was asked for; the engine turns it into syscalls."""

    image: str
    command: list[str] = field(default_factory=list)  # empty: the image's Cmd
    name: str | None = None
    hostname: str | None = None  # default: the first 12 hex digits of the container ID
    env: list[str] = field(default_factory=list)  # "KEY=VALUE" as given to -e
    workdir: str | None = None  # None: the image's WorkingDir, or /
    readonly: bool = False
    interactive: bool = False
    tty: bool = False
    remove: bool = False  # --rm
    init: bool = False  # --init: a tiny init as PID 1 that reaps orphans
    limits: Limits = field(default_factory=Limits)  # -m, --cpus, --pids-limit, ...

    def environment(self, hostname: str, items: list[str]) -> dict[str, str]:
        """The process environment, built as Docker builds it: defaults, then ``items`` (the
        image's Env followed by each ``-e``). ``-e KEY`` with no ``=`` copies KEY from the
        caller's environment, if it is set."""
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": "/root"}
        if self.tty:
            env["TERM"] = "xterm"
        for item in items:
            key, sep, value = item.partition("=")
            if sep:
                env[key] = value
            elif key in os.environ:
                env[key] = os.environ[key]
        return env
