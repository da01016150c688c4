"""What the CLI does around the engine: run a container in the foreground (stdio, terminal,
signals, exit code) and show containers and images as Docker's tables do."""

import contextlib
import os
import signal
import socket
import sys
from datetime import UTC, datetime

from minidocker import cgroups
from minidocker.container import ContainerSpec, records
from minidocker.container import run as run_container
from minidocker.container import tty as terminal
from minidocker.container.start import release
from minidocker.errors import Conflict, MinidockerError
from minidocker.image.reference import parse_reference
from minidocker.image.store import Image, ImageStore, human_size
from minidocker.namespaces import SIGNALS_TO_FORWARD, Stdio, receive_console


def run_in_foreground(spec: ContainerSpec) -> int:
    """``docker run`` without ``-d``: our stdio is the container's; returns its exit code."""
    ours, theirs = socket.socketpair() if spec.tty else (None, None)
    stdin = 0 if spec.interactive else os.open(os.devnull, os.O_RDONLY)
    proxy = SignalProxy(raw_terminal=spec.tty and spec.interactive)
    container = run_container(spec, Stdio(stdin, 1, 2, console=theirs))
    proxy.deliver_to(container.process)
    try:
        if ours is not None:
            theirs.close()
            master = receive_console(ours)
            terminal.copy_window_size(0, master)
            terminal.relay(master, spec.interactive)
            os.close(master)
    finally:
        code = container.wait()  # whatever happened: the record and cgroup are finalised
    if container.oom_killed:
        limit = spec.limits.memory or 0
        print(f"minidocker: container {container.record.Name} was killed by the kernel's OOM "
              f"killer: it went over its memory limit ({limit // 2**20} MiB, -m). Give it "
              "more memory or make it use less.", file=sys.stderr)
    return code


class SignalProxy:
    """docker run's --sig-proxy: signals sent to the CLI go on to the container's PID 1.
    Installed before the container starts; what arrives early is held and delivered later."""

    def __init__(self, raw_terminal: bool):
        self.process, self.pending = None, []
        proxied = [s for s in SIGNALS_TO_FORWARD if s != signal.SIGWINCH]
        if raw_terminal:  # Ctrl-C arrives as a byte through the raw pty: pass on only
            proxied = [signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2]
        for signum in proxied:
            signal.signal(signum, self._received)

    def _received(self, signum, _frame) -> None:
        if self.process is None:
            self.pending.append(signum)
        else:
            self.process.signal(signum)

    def deliver_to(self, process) -> None:
        self.process = process
        for signum in self.pending:
            process.signal(signum)


def list_containers(show_all: bool, quiet: bool) -> str:
    rows = []
    for record in records.all_records():
        refresh_state(record)
        if record.State["Status"] != "running" and not show_all:
            continue
        rows.append(record)
    if quiet:
        return "".join(f"{r.Id[:12]}\n" for r in rows)
    table = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for r in rows:
        command = " ".join(r.Config["Cmd"])
        command = f'"{command[:19]}…"' if len(command) > 20 else f'"{command}"'
        table.append((r.Id[:12], r.Config["Image"], command, f"{ago(r.Created)} ago", status(r), "",
                      r.Name))
    return format_table(table)


def refresh_state(record: records.ContainerRecord) -> None:
    """A record that says "running" for a process that is gone (its shim was killed, the
    machine rebooted) is corrected to "exited": the record follows the kernel's truth."""
    if record.State["Status"] == "running" and not alive(record):
        record.mark_exited(record.State.get("ExitCode") or 137)
        release(record)


def alive(record: records.ContainerRecord) -> bool:
    """Is the container's PID 1 still there? Asked of its cgroup, not of the PID alone: after a
    reboot or PID reuse the same number may name somebody else's process."""
    return record.State["Pid"] in cgroups.for_container(record.Id).pids()


def status(record: records.ContainerRecord) -> str:
    state = record.State
    if state["Status"] == "running":
        return f"Up {ago(state['StartedAt'])}"
    if state["Status"] == "exited":
        return f"Exited ({state['ExitCode']}) {ago(state['FinishedAt'])} ago"
    return state["Status"].capitalize()


def ago(timestamp: str) -> str:
    if not timestamp:
        return "?"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit}"
    if seconds < 1:
        return "Less than a second"
    return "1 second" if int(seconds) == 1 else f"{int(seconds)} seconds"


def remove_container(name: str, force: bool) -> str:
    record = records.find(name)
    refresh_state(record)
    if record.State["Status"] == "running":
        if not force:
            raise Conflict(f"You cannot remove a running container {record.Id[:12]}. Stop it "
                           "first, or use 'minidocker rm -f'.")
    release(record)  # kills through the cgroup: every process of the container, nobody else
    record.remove()
    return name


def list_images(quiet: bool = False) -> str:
    """``docker images``: one row per tag; an untagged image shows as <none>."""
    rows = []
    for image in ImageStore().images():
        for tag in image.tags or ["<none>:<none>"]:
            repository, _, name = tag.rpartition(":")
            rows.append((repository, name, image.short_id, f"{ago(image.config.get('created', ''))} ago",
                         human_size(image.size)))
    if quiet:
        return "".join(dict.fromkeys(f"{row[2]}\n" for row in rows))
    return format_table([("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), *rows])


def users_of(image: Image) -> list[records.ContainerRecord]:
    return [r for r in records.all_records() if r.Image == image.id]


def remove_image(name: str, force: bool) -> list[str]:
    """``docker rmi``: untag the name given (every name, for an ID); delete the image when its
    last name goes, unless a container still uses it."""
    store = ImageStore()
    image = store.get(name)
    tag = _tag_named(name, image)
    if tag is None and len(image.tags) > 1 and not force:
        raise Conflict(f"unable to delete {image.short_id} (must be forced) - image is "
                       f"referenced in multiple repositories: {', '.join(image.tags)}")
    untag = [tag] if tag else list(image.tags)
    last_name = set(untag) >= set(image.tags)
    users = users_of(image)
    if last_name and users and not force:
        raise Conflict(f"unable to remove {name} (must force) - container "
                       f"{users[0].Id[:12]} is using its referenced image {image.short_id}; "
                       "remove the container first ('minidocker rm')")
    for name_to_drop in untag:
        store.untag(name_to_drop)
    done = [f"Untagged: {t}" for t in untag]
    if last_name and not users:
        store.delete(image)
        done.append(f"Deleted: {image.id}")
    return done


def _tag_named(name: str, image: Image) -> str | None:
    """The tag of ``image`` that ``name`` spells (``busybox`` is ``busybox:latest``)."""
    candidates = {name}
    with contextlib.suppress(MinidockerError):
        candidates.add(str(parse_reference(name)))
    return next((t for t in image.tags if t in candidates), None)


def prune_images(everything: bool) -> list[str]:
    """``docker image prune``: untagged images no container uses (``-a``: every unused)."""
    store, removed = ImageStore(), []
    for image in store.images():
        if (everything or not image.tags) and not users_of(image):
            store.delete(image)
            removed.append(f"Deleted: {image.id}")
    store.collect_garbage()  # also sweeps what killed writers left
    return removed


def history(name: str) -> str:
    """``docker history``: one row per history entry, newest first; an entry that made a layer
    shows that layer's size, an ``empty_layer`` one (a config change) shows 0B."""
    image = ImageStore().get(name)
    sizes = iter(layer["size"] for layer in image.manifest["layers"])
    rows = []
    for entry in image.config.get("history", []):  # oldest first, like the layers
        size = 0 if entry.get("empty_layer") else next(sizes, 0)
        rows.append(["<missing>", f"{ago(entry.get('created', ''))} ago",
                     entry.get("created_by", "")[:45], human_size(size),
                     entry.get("comment", "")])
    rows.reverse()
    if rows:
        rows[0][0] = image.short_id
    return format_table([("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"), *rows])


def format_table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "".join("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
                   for row in rows)


def inspect(names: list[str]) -> str:
    """``docker inspect``: containers by name or ID, else images; JSON like Docker's."""
    import json

    found = []
    for name in names:
        try:
            record = records.find(name)
            refresh_state(record)
            found.append({**vars(record), "Path": record.Config["Cmd"][0],
                          "Args": record.Config["Cmd"][1:]})
            continue
        except MinidockerError:
            pass
        image = ImageStore().get(name)
        found.append({"Id": image.id, "RepoTags": image.tags,
                      "RepoDigests": [], "Created": image.config.get("created"),
                      "Author": image.config.get("author", ""),
                      "Architecture": image.config.get("architecture"),
                      "Os": image.config.get("os"), "Size": image.size,
                      "Config": image.config.get("config", {}),
                      "RootFS": {"Type": "layers", "Layers": image.diff_ids},
                      "Manifest": image.manifest_digest})
    return json.dumps(found, indent=4)
