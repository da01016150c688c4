"""What the CLI does around the engine: run a container in the foreground (stdio, terminal,
signals, exit code) and show containers and images as Docker's tables do."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from minidocker.container import lifecycle, logs, records
from minidocker.container.lifecycle import refresh
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.namespaces import SIGNALS_TO_FORWARD

if TYPE_CHECKING:  # names for the annotations only: the modules load when a command needs them
    from minidocker.image.store import Image


def run_in_foreground(record: records.ContainerRecord) -> int:
    """``docker run`` without ``-d``: this process is the container's monitor, with our
    terminal attached (output logged too, so ``logs`` works later); returns the exit code."""
    from minidocker.container import tty as terminal
    from minidocker.container.monitor import Monitor, Terminal

    interactive, raw = record.Config.OpenStdin, record.Config.Tty and record.Config.OpenStdin
    proxy = SignalProxy(raw_terminal=raw)
    monitor = Monitor(record, local=Terminal(interactive))
    with terminal.raw_terminal(0) if raw else contextlib.nullcontext():
        code = monitor.run(on_start=lambda container: proxy.deliver_to(container.process))
    if monitor.container and monitor.container.oom_killed:
        limit = record.HostConfig.Resources.memory or 0
        print(f"minidocker: container {record.Name} was killed by the kernel's OOM "
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
    """``docker ps``: running (and paused, restarting) containers; ``-a``: all of them."""
    rows = [r for r in map(refresh, records.all_records())
            if show_all or r.status in ("running", "paused", "restarting")]
    if quiet:
        return "".join(f"{r.Id[:12]}\n" for r in rows)
    table = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for r in rows:
        command = " ".join(r.command)
        command = f'"{command[:19]}…"' if len(command) > 20 else f'"{command}"'
        table.append((r.Id[:12], r.Config.Image, command, f"{ago(r.Created)} ago", status(r),
                      ports_of(r), r.Name))
    return format_table(table)


def ports_of(record: records.ContainerRecord) -> str:
    """The PORTS column: what stage 8 published, as Docker prints it."""
    ports = record.NetworkSettings.get("Ports") or {}
    return ", ".join(f"{b['HostIp']}:{b['HostPort']}->{port}" for port, bindings in ports.items()
                     for b in bindings or [])


def status(record: records.ContainerRecord) -> str:
    """The STATUS column, in Docker's words."""
    state = record.State
    if state["Status"] == "running":
        return f"Up {ago(state['StartedAt'])}"
    if state["Status"] == "paused":
        return f"Up {ago(state['StartedAt'])} (Paused)"
    if state["Status"] == "restarting":
        return f"Restarting ({state['ExitCode']}) {ago(state['FinishedAt'])} ago"
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


def remove_container(record: records.ContainerRecord, force: bool,
                     volumes_too: bool = False) -> None:
    """``docker rm [-f] [-v]``: ``-v`` also removes the container's anonymous volumes."""
    lifecycle.rm(record, force, volumes_too)


def prune_containers() -> list[str]:
    """``docker container prune``: every stopped container goes."""
    return lifecycle.prune()


def system_prune(every_image: bool, volumes_too: bool) -> str:
    """``docker system prune``: stopped containers, then unused images (and volumes)."""
    from minidocker import volumes

    lines = [f"Deleted Containers:\n{chr(10).join(removed)}\n" for removed in
             [prune_containers()] if removed]
    images = prune_images(every_image)
    if images:
        lines.append("Deleted Images:\n" + "\n".join(images) + "\n")
    if volumes_too:
        others = ((r.Name, r.Mounts) for r in records.all_records())
        names, _size = volumes.prune_volumes(volumes.volume_users(others))
        if names:
            lines.append("Deleted Volumes:\n" + "\n".join(names) + "\n")
    return "\n".join(lines) or "Total reclaimed space: 0B\n"


def show_logs(name: str, follow: bool, tail: str, timestamps: bool) -> None:
    """``docker logs [-f] [--tail N] [-t]``: stdout lines to stdout, stderr lines to stderr."""
    record = lifecycle.find(name)
    try:
        count = None if tail == "all" else int(tail)
    except ValueError:
        raise MinidockerError(f"invalid --tail value '{tail}': give a number or 'all'") from None
    path = Path(record.LogPath)

    def show(entry) -> None:
        out = sys.stdout if entry.stream == "stdout" else sys.stderr
        out.write(f"{entry.time} {entry.text}" if timestamps else entry.text)
        out.flush()

    def running() -> bool:
        try:
            return lifecycle.refresh(record.reload()).status in lifecycle.ACTIVE
        except MinidockerError:
            return False

    entries = logs.follow(path, running, count) if follow else logs.read_entries(path, count)
    for entry in entries:
        show(entry)


def list_images(quiet: bool = False) -> str:
    """``docker images``: one row per tag; an untagged image shows as <none>."""
    from minidocker.image.store import ImageStore, human_size

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
    from minidocker.image.store import ImageStore

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
    from minidocker.image.reference import parse_reference

    candidates = {name}
    with contextlib.suppress(MinidockerError):
        candidates.add(str(parse_reference(name)))
    return next((t for t in image.tags if t in candidates), None)


def prune_images(everything: bool) -> list[str]:
    """``docker image prune``: untagged images no container uses (``-a``: every unused)."""
    from minidocker.image.store import ImageStore

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
    from minidocker.image.store import ImageStore, human_size

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


def inspect(names: list[str], template: str | None = None) -> str:
    """``docker inspect [-f TEMPLATE]``: containers by name or ID, else images; JSON like
    Docker's, or each object formatted with the template."""
    from minidocker.image.store import ImageStore

    found = []
    for name in names:
        try:
            record = lifecycle.find(name)
            found.append({**record.to_dict(), "Name": f"/{record.Name}", "Path": record.command[0],
                          "Args": record.command[1:]})
            continue
        except MinidockerError:
            pass
        try:
            image = ImageStore().get(name)
        except NotFound:
            raise NotFound(f"No such object: {name} (neither a container, see 'minidocker "
                           "ps -a', nor an image, see 'minidocker images')") from None
        found.append({"Id": image.id, "RepoTags": image.tags,
                      "RepoDigests": [], "Created": image.config.get("created"),
                      "Author": image.config.get("author", ""),
                      "Architecture": image.config.get("architecture"),
                      "Os": image.config.get("os"), "Size": image.size,
                      "Config": image.config.get("config", {}),
                      "RootFS": {"Type": "layers", "Layers": image.diff_ids},
                      "Manifest": image.manifest_digest})
    if template is not None:
        return "\n".join(render(template, obj) for obj in found)
    return json.dumps(found, indent=4)


# --- the common cases of Go templates, for inspect -f -----------------------------------------

ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")


def render(template: str, obj) -> str:
    """``{{.State.Status}}``, ``{{json .Mounts}}``, ``{{index .Config.Labels "k"}}``,
    ``{{range .Mounts}}{{.Source}} {{end}}`` — the forms people type after ``inspect -f``."""
    out, pos = [], 0
    for match in ACTION.finditer(template):
        if match.start() < pos:
            continue
        out.append(template[pos:match.start()])
        action, pos = match.group(1), match.end()
        if action.startswith("range "):
            end = template.find("{{end}}", pos)
            if end < 0:
                raise MinidockerError("template: {{range}} without {{end}}")
            body, pos = template[pos:end], end + len("{{end}}")
            out += [render(body, item) for item in _value(action[6:].strip(), obj) or []]
            continue
        out.append(_show(_value(action, obj)))
    out.append(template[pos:])
    return "".join(out)


TOKEN = re.compile(r'\(|\)|"[^"]*"|[^\s()]+')


def _value(expression: str, obj):
    """Evaluate one action: ``.A.B``, ``json X``, ``index X KEY...``, parentheses, and a
    field of a parenthesised value: ``(index .List 0).Field``."""
    value, rest = _call(TOKEN.findall(expression), obj, expression)
    if rest:
        raise _cannot(expression)
    return value


def _call(tokens: list[str], obj, expression: str):
    if tokens and tokens[0] in ("json", "index"):
        name, args, tokens = tokens[0], [], tokens[1:]
        while tokens and tokens[0] != ")":
            arg, tokens = _term(tokens, obj, expression)
            args.append(arg)
        if name == "json" and len(args) == 1:
            return json.dumps(args[0]), tokens
        if name == "index" and len(args) >= 2:
            value = args[0]
            for key in args[1:]:
                value = value[key] if isinstance(value, list) else (value or {}).get(str(key))
            return value, tokens
        raise _cannot(expression)
    return _term(tokens, obj, expression)


def _term(tokens: list[str], obj, expression: str):
    if not tokens:
        raise _cannot(expression)
    head, tokens = tokens[0], tokens[1:]
    if head == "(":
        value, tokens = _call(tokens, obj, expression)
        tokens = tokens[1:]  # the ")"
        if tokens and tokens[0].startswith("."):  # (expression).Field
            value, tokens = _field(value, tokens[0], expression), tokens[1:]
        return value, tokens
    if head.startswith('"'):
        return head[1:-1], tokens
    if head.lstrip("-").isdigit():
        return int(head), tokens
    if head.startswith("."):
        return _field(obj, head, expression), tokens
    raise _cannot(expression)


def _field(value, path: str, expression: str):
    for part in filter(None, path.split(".")):
        if not isinstance(value, dict) or part not in value:
            raise MinidockerError(f"template: no field {part!r} in {expression} (see the JSON "
                                  "from 'minidocker inspect' without -f)")
        value = value[part]
    return value


def _cannot(expression: str) -> MinidockerError:
    return MinidockerError(f"template: cannot evaluate '{expression}': use .Field.Sub, "
                           'json .Field, index .Map "key", (index .List 0).Field or range .List')


def _show(value) -> str:
    """Values as Go prints them: true/false, <no value>, maps as map[k:v]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<no value>"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_show(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_show(v) for v in value) + "]"
    return str(value)
