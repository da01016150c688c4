"""What every benchmark script does around its measurements: the round options, the workspace
and its failures, the versions of the tools compared, the JSON report.

Used by: bench/run.py, bench/lifecycle.py, bench/network.py, bench/startup.py, bench/build.py.
"""

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import peers  # bench/peers.py: the workspace
from rich.console import Console

T = TypeVar("T")


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
