"""What every benchmark script does around its measurements: a lab host to run in (root, a
private mount and network namespace, a reaper of orphans), the round options, the workspace and
its failures, the versions of the tools compared, the ratio table, the JSON report.

Used by: bench/run.py, bench/lifecycle.py, bench/network.py, bench/startup.py, bench/build.py.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import peers  # bench/peers.py: the workspace
from rich.console import Console
from rich.table import Table

T = TypeVar("T")


def lab_host(prog: str, needs: str) -> Console | None:
    """The start of a benchmark that runs containers: root (else None, after saying why), a
    private mount and network namespace, a reaper of orphans; then the console to report on."""
    if os.geteuid() != 0:
        print(f"{prog} needs root ({needs}): sudo ./kit bench", file=sys.stderr)
        return None
    private_namespaces()
    reap_orphans()
    return console()


def console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 120)


def private_namespaces() -> None:
    """A private mount and network namespace for this process and all it starts: the
    containers' mounts, podman's overlay and any link or firewall rule stay in here."""
    from minidocker import kernel

    kernel.unshare(kernel.CLONE_NEWNS | kernel.CLONE_NEWNET)
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def reap_orphans() -> None:
    """Fork: the child runs the benchmark, this process reaps the orphans below it, as init
    does on a normal machine. A detached monitor (or conmon) is an orphan once the command that
    started it exits; when it exits in turn it stays a zombie until someone reaps it, and
    ``minidocker rm -f`` waits for its monitor to be gone. This machine's PID 1 reaps orphans
    about a second late, which alone made every ``rm -f`` a second slower."""
    from minidocker import kernel

    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    bench = os.fork()
    if bench == 0:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the benchmark: it cleans up
    while True:
        pid, status = os.wait()
        if pid == bench:
            os._exit(os.waitstatus_to_exitcode(status) % 256)


def ratio_table(title: str, ratios: dict) -> Table:
    """The verdicts: each ratio (``a_over_b``), its target (None: context only) and whether it
    was met."""
    verdicts = Table(title=title)
    for column in ("comparison", "ratio", "target", "verdict"):
        verdicts.add_column(column)
    for key, r in ratios.items():
        target = f"≤ {r['target']:.1f}×" if r.get("target") else "(context)"
        verdict = "" if r.get("met") is None else "[green]met[/]" if r["met"] else \
            "[red]missed[/]"
        verdicts.add_row(key.replace("_over_", " / ").replace("_", " "), f"{r['value']:.2f}×",
                         target, verdict)
    return verdicts


def argument_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A script's parser: its name, the first line of its docstring, and ``--json PATH``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def add_round_options(parser: argparse.ArgumentParser, runs: int, warmup: int,
                      runs_help: str) -> None:
    """``--runs``, ``--warmup`` and ``--pause``: cases timed in rounds, the first ones not
    counted, a short pause before each run."""
    parser.add_argument("--runs", type=int, default=runs, metavar="N",
                        help=f"{runs_help} (default {runs})")
    parser.add_argument("--warmup", type=int, default=warmup, metavar="N",
                        help=f"rounds run first and not counted (default {warmup})")
    parser.add_argument("--pause", type=float, default=0.05, metavar="S",
                        help="seconds to wait before each run, so that none starts in the wake "
                             "of the one before (default 0.05; see bench/README.md)")


def in_workspace(prog: str, measure: Callable[[peers.Workspace], T]) -> tuple[int, T | None]:
    """Run ``measure`` in a new workspace, which removes everything it holds at the end,
    whatever happened. Returns 0 and what ``measure`` returned when it ran through; 1 when a
    ``BenchError`` stopped it and 130 on Ctrl-C (each said in one line on stderr), and None."""
    try:
        with peers.Workspace() as ws:
            return 0, measure(ws)
    except peers.BenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1, None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (everything it created is removed)", file=sys.stderr)
        return 130, None


def measure_and_show(prog: str, measure: Callable[[peers.Workspace], None], console: Console,
                     report: dict, args: argparse.Namespace, show: Callable,
                     ratios: Callable[[dict], dict]) -> int:
    """A benchmark's end: ``measure`` in a workspace (it fills ``report``), then the ratios,
    the tables and ``--json``. Returns the exit code (``in_workspace``'s on a failure)."""
    failed, _ = in_workspace(prog, measure)
    if failed:
        return failed
    report["ratios"] = ratios(report)
    show(console, report)
    if args.json:
        write_json(console, args.json, report)
    return 0


def tool_versions(tools: tuple[str, ...]) -> dict[str, str]:
    """Each tool's version, as the last word of the first line of ``TOOL --version``."""
    versions = {}
    for tool in tools:
        try:
            out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
            versions[tool] = out.splitlines()[0].split()[-1] if out else "?"
        except FileNotFoundError:
            versions[tool] = "not installed"
    return versions


def write_json(console: Console, path: str, report: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"written: {path}")
