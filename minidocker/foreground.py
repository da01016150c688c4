"""What the CLI does around the engine: run a container in the foreground (stdio, terminal,
signals, exit code) and show containers and images as Docker's tables do."""

import contextlib
import os
import signal
import socket
import sys
from datetime import UTC, datetime

from minidocker.container import ContainerSpec, records
from minidocker.container import run as run_container
from minidocker.container import tty as terminal
from minidocker.container.start import release
from minidocker.errors import Conflict
from minidocker.image.reference import parse_reference
from minidocker.image.store import image_root
from minidocker.image.store import list_images as image_names
from minidocker.namespaces import SIGNALS_TO_FORWARD, Stdio, receive_console


def run_in_foreground(spec: ContainerSpec) -> int:
    """``docker run`` without ``-d``: our stdio is the container's; returns its exit code."""
    ours, theirs = socket.socketpair() if spec.tty else (None, None)
    stdin = 0 if spec.interactive else os.open(os.devnull, os.O_RDONLY)
    proxy = SignalProxy(tty=spec.tty)
    container = run_container(spec, Stdio(stdin, 1, 2, console=theirs))
    proxy.deliver_to(container.process)
    if ours is not None:
        theirs.close()
        master = receive_console(ours)
        terminal.copy_window_size(0, master)
        terminal.relay(master, spec.interactive)
        os.close(master)
    code = container.wait()
    if container.oom_killed:
        limit = spec.limits.memory or 0
        print(f"minidocker: container {container.record.Name} was killed by the kernel's OOM "
              f"killer: it went over its memory limit ({limit // 2**20} MiB, -m). Give it "
              "more memory or make it use less.", file=sys.stderr)
    return code


class SignalProxy:
    """docker run's --sig-proxy: signals sent to the CLI go on to the container's PID 1.
    Installed before the container starts; what arrives early is held and delivered later."""

    def __init__(self, tty: bool):
        self.process, self.pending = None, []
        proxied = [s for s in SIGNALS_TO_FORWARD if s != signal.SIGWINCH]
        if tty:  # Ctrl-C arrives as a byte through the pty; only signals sent to us go on
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
        table.append((r.Id[:12], r.Image, command, f"{ago(r.Created)} ago", status(r), "",
                      r.Name))
    return format_table(table)


def refresh_state(record: records.ContainerRecord) -> None:
    """A record that says "running" for a process that is gone (its shim was killed, the
    machine rebooted) is corrected to "exited": the record follows the kernel's truth."""
    if record.State["Status"] == "running" and not _alive(record.State["Pid"]):
        record.mark_exited(record.State.get("ExitCode") or 137)
        release(record)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.State["Pid"], signal.SIGKILL)
    release(record)
    record.remove()
    return name


def list_images() -> str:
    table = [("REPOSITORY", "TAG", "SIZE")]
    for name in image_names():
        reference = parse_reference(name)
        table.append((reference.repository, reference.tag, human_size(du(image_root(reference)))))
    return format_table(table)


def du(path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        total += sum(os.lstat(os.path.join(dirpath, f)).st_size for f in files)
    return total


def human_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{size:.3g}TB"


def format_table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "".join("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
                   for row in rows)
