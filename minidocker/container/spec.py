"""What a container is made of, as data: the image, the command and the flags of ``run``."""

import os
from dataclasses import dataclass, field

from minidocker.cgroups import Limits
from minidocker.image.store import DEFAULT_PATH


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

    def resolved_env(self) -> list[str]:
        """Each ``-e`` as KEY=VALUE: ``-e KEY`` alone copies KEY from the caller's environment
        (and is dropped if unset). Only the user's flags may do that, never an image's Env."""
        return [item if "=" in item else f"{item}={os.environ[item]}"
                for item in self.env if "=" in item or item in os.environ]

    def environment(self, hostname: str, items: list[str]) -> dict[str, str]:
        """The process environment, built as Docker builds it: defaults, then ``items`` (the
        image's Env followed by the resolved ``-e``); an item without ``=`` is ignored."""
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": "/root"}
        if self.tty:
            env["TERM"] = "xterm"
        for item in items:
            key, sep, value = item.partition("=")
            if sep:
                env[key] = value
        return env
