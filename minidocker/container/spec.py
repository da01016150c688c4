"""What a container is made of, as data: the image, the command and the flags of ``run``.

``create()`` (start.py) combines a spec with the image's config the way Docker does:

* the command is ``Entrypoint + Cmd``; arguments after the image name replace the image's Cmd;
  ``--entrypoint`` replaces the Entrypoint *and* drops the image's Cmd;
* the environment is the image's Env, then ``--env-file`` lines, then ``-e`` (later wins);
* ``-w``, ``-u`` and ``--stop-signal`` override WorkingDir, User and StopSignal;
* each path in the image's Volumes becomes an anonymous volume unless a mount covers it.
"""

import os
import signal
from dataclasses import dataclass, field

from minidocker.cgroups import Limits
from minidocker.cgroups.limits import parse_bytes
from minidocker.errors import MinidockerError
from minidocker.image import DEFAULT_PATH

RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")


@dataclass
class ContainerSpec:
    """Everything ``minidocker run``/``create`` was asked for; the engine turns it into
    syscalls."""

    image: str
    command: list[str] = field(default_factory=list)  # empty: the image's Cmd
    entrypoint: str | None = None  # --entrypoint: None keeps the image's, "" clears it
    name: str | None = None
    hostname: str | None = None  # default: the first 12 hex digits of the container ID
    env: list[str] = field(default_factory=list)  # "KEY=VALUE" as given to -e
    env_files: list[str] = field(default_factory=list)  # --env-file
    workdir: str | None = None  # None: the image's WorkingDir, or /
    user: str | None = None  # -u: None: the image's User, or root
    readonly: bool = False
    interactive: bool = False
    tty: bool = False
    remove: bool = False  # --rm
    init: bool = False  # --init: tini as PID 1, which reaps orphans
    limits: Limits = field(default_factory=Limits)  # -m, --cpus, --pids-limit, ...
    restart: str = "no"  # --restart no|on-failure[:N]|always|unless-stopped
    stop_signal: str | None = None  # --stop-signal: None: the image's StopSignal, or SIGTERM
    stop_timeout: int | None = None  # --stop-timeout: seconds before SIGKILL (default 10)
    volumes: list[str] = field(default_factory=list)  # -v
    mounts: list[str] = field(default_factory=list)  # --mount
    volumes_from: list[str] = field(default_factory=list)  # --volumes-from
    tmpfs: list[str] = field(default_factory=list)  # --tmpfs
    log_opts: list[str] = field(default_factory=list)  # --log-opt max-size=10m, max-file=3
    extra: dict = field(default_factory=dict)  # options of later stages (network, security)

    def resolved_env(self) -> list[str]:
        """``--env-file`` lines, then each ``-e``, as KEY=VALUE. ``KEY`` alone copies KEY from
        the caller's environment (dropped if unset). Only the user's flags may do that, never
        an image's Env."""
        items = [line for path in self.env_files for line in read_env_file(path)]
        items += self.env
        return [item if "=" in item else f"{item}={os.environ[item]}"
                for item in items if "=" in item or item in os.environ]


def read_env_file(path: str) -> list[str]:
    """Docker's env file: one KEY=VALUE (or KEY) per line, ``#`` comments and blank lines
    skipped, no quoting rules: the value is the rest of the line."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise MinidockerError(f"cannot read --env-file {path}: {exc.strerror}") from exc
    items = []
    for number, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key = line.split("=", 1)[0]
        if not key or any(c.isspace() for c in key):
            raise MinidockerError(f"{path}, line {number}: variable '{key}' contains "
                                  "whitespaces or is empty; write KEY=VALUE")
        items.append(line)
    return items


def environment(hostname: str, items: list[str], tty: bool = False,
                home: str = "/root") -> dict[str, str]:
    """The process environment, built as Docker builds it: defaults, then ``items`` (the
    image's Env followed by the user's); an item without ``=`` is ignored."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": home}
    if tty:
        env["TERM"] = "xterm"
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


def parse_restart(policy: str) -> dict:
    """``--restart`` as Docker's HostConfig.RestartPolicy: ``{"Name", "MaximumRetryCount"}``."""
    name, _, count = policy.partition(":")
    if name not in RESTART_POLICIES:
        raise MinidockerError(f"invalid restart policy '{policy}': choose no, on-failure[:N], "
                              "always or unless-stopped")
    if count and (name != "on-failure" or not count.isdigit()):
        raise MinidockerError(f"invalid restart policy '{policy}': only on-failure takes a "
                              "maximum retry count, a number (on-failure:3)")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def parse_signal(name: str | int) -> int:
    """A signal given as ``SIGTERM``, ``TERM``, ``term`` or ``15``."""
    text = str(name).upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        raise MinidockerError(f"invalid signal: {name} (use a name like SIGTERM or KILL, or a "
                              "number; 'kill -l' lists them)") from None


def parse_log_opts(options: list[str]) -> dict:
    """``--log-opt max-size=10m --log-opt max-file=3`` for the json-file log."""
    config = {"max-size": "10m", "max-file": "3"}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in config:
            raise MinidockerError(f"unknown log opt '{option}' for the json-file log driver: "
                                  "use max-size=SIZE or max-file=N")
        config[key] = value
    parse_bytes("--log-opt max-size", config["max-size"])  # checked now, not at the start
    if not config["max-file"].isdigit() or int(config["max-file"]) < 1:
        raise MinidockerError(f"--log-opt max-file={config['max-file']}: give a number of "
                              "files, 1 or more")
    return config
