"""Does a refactor slow down ``minidocker`` start-up? Whole commands, timed for one checkout or two.

Issue 11, item 8: "``minidocker run`` start-up is not slower (bench before/after in the PR
note)". Three cases, each a new process of the venv's ``minidocker`` entry point with
``PYTHONPATH=<checkout>``, so that the same venv runs whichever checkout is given:

    help     minidocker --help                                  the interpreter + the CLI's imports
    none     minidocker run --rm --network none busybox true    a whole container, no networking
    bridge   minidocker run --rm busybox true                   the same on the default bridge

Each case of each checkout runs once per round, every other round in reverse order, a short
pause before each run; the first rounds are not counted. Reported: median, min and max (ms),
and with two checkouts the median of the per-round ratios first / second, per case.

Everything runs in a private mount and network namespace (no link or rule reaches this
machine's network), below a parent that reaps orphans (bench/lifecycle.py), with a temporary
``MINIDOCKER_ROOT`` per checkout (each made by that checkout's own ``minidocker setup``) and a
cgroup parent of its own. Afterwards the namespace's links, addresses and iptables rules must be
what they were, and no cgroup of the benchmark may be left.

Before/after a change, from the new checkout (as root):

    git archive BEFORE_COMMIT | (mkdir /tmp/before && tar -x -C /tmp/before)
    .venv/bin/python bench/startup.py --checkout . --checkout /tmp/before

Usage: bench/startup.py [--checkout DIR]... [--runs N] [--warmup N] [--pause S] [--json PATH]
"""

import contextlib
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import common  # bench/common.py: options, the workspace and its failures, the report
import lifecycle  # bench/lifecycle.py: private namespaces, the reaper, timed commands
import network  # bench/network.py: the namespace's links, addresses and rules
import peers  # bench/peers.py: the workspace, cgroup clean-up
from rich.console import Console
from rich.table import Table

CASES = {
    "help": ["--help"],
    "none": ["run", "--rm", "--network", "none", "busybox", "true"],
    "bridge": ["run", "--rm", "busybox", "true"],
}
ENTRY_POINT = Path(sys.executable).with_name("minidocker")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = common.lab_host("bench/startup.py", "namespaces, links, iptables, cgroups")
    if console is None:
        return 1
    checkouts = [str(Path(c).resolve()) for c in args.checkout]
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": args.runs,
              "warmup": args.warmup, "pause_s": args.pause, "checkouts": checkouts,
              "host": lifecycle.host_info()}
    pristine = network.kernel_state()
    cgroup_parent = f"minidocker-bench-{os.getpid()}-startup"

    def bench(ws: peers.Workspace) -> None:
        ws.undo.callback(lifecycle._remove_cgroup_parent, cgroup_parent)
        envs = []
        for number, checkout in enumerate(checkouts):
            # Bytecode is written and reused, as an installed package's is, whatever the
            # caller's PYTHONDONTWRITEBYTECODE says: only the warm-up rounds compile.
            env = {**os.environ, "PYTHONPATH": checkout, "PYTHONDONTWRITEBYTECODE": "",
                   "MINIDOCKER_ROOT": str(ws.dir(f"state-{number}")),
                   "MINIDOCKER_CGROUP_PARENT": cgroup_parent}
            ws.undo.callback(remove_networking, env)
            console.print(f"setting up {checkout}")
            peers.check([str(ENTRY_POINT), "setup"], env=env)
            envs.append(env)
        console.print(f"{args.warmup} warm-up + {args.runs} rounds of {', '.join(CASES)}")
        report["samples_ms"] = measure(envs, args.runs, args.warmup, args.pause)

    if not ENTRY_POINT.exists():
        print(f"bench/startup.py: no {ENTRY_POINT}; run it with the kit's .venv/bin/python",
              file=sys.stderr)
        return 1
    failed, _ = common.in_workspace("bench/startup.py", bench)
    if failed:
        return failed
    left = network.kernel_state()
    report["left_behind"] = {key: sorted(set(left[key]) - set(pristine[key])) for key in left}
    report["left_behind"]["cgroups"] = [str(Path(h, cgroup_parent)) for h in
                                        peers._cgroup_mounts() if Path(h, cgroup_parent).exists()]
    report["figures"] = figures(report["samples_ms"], checkouts)
    show(console, report)
    if args.json:
        common.write_json(console, args.json, report)
    return 1 if any(report["left_behind"].values()) else 0


def parse_args(argv: list[str] | None):
    parser = common.argument_parser("bench/startup.py", __doc__)
    common.add_round_options(parser, runs=20, warmup=3, runs_help="measured rounds")
    parser.add_argument("--checkout", action="append", metavar="DIR",
                        help="a checkout of minidocker to run (PYTHONPATH); give two to compare "
                             "them (default: this one)")
    args = parser.parse_args(argv)
    args.checkout = args.checkout or [str(Path(__file__).resolve().parent.parent)]
    if len(args.checkout) > 2 or args.runs < 1 or args.warmup < 0:
        parser.error("at most two --checkout; --runs at least 1, --warmup at least 0")
    return args


def measure(envs: list[dict[str, str]], runs: int, warmup: int,
            pause: float) -> list[dict[str, list[float]]]:
    """Rounds of every (checkout, case); per checkout, each case's counted samples in ms."""
    order = [(n, case) for n in range(len(envs)) for case in CASES]
    samples: list[dict[str, list[float]]] = [{case: [] for case in CASES} for _ in envs]
    for round_number in range(warmup + runs):
        for n, case in order if round_number % 2 == 0 else reversed(order):
            time.sleep(pause)
            seconds, _ = lifecycle.timed([str(ENTRY_POINT), *CASES[case]], env=envs[n])
            if round_number >= warmup:
                samples[n][case].append(round(seconds * 1000, 1))
    return samples


def figures(samples: list[dict[str, list[float]]], checkouts: list[str]) -> dict[str, dict]:
    result = {}
    for case in CASES:
        row = {"checkouts": [{"median_ms": round(statistics.median(s[case]), 1),
                              "min_ms": min(s[case]), "max_ms": max(s[case])} for s in samples]}
        if len(checkouts) == 2:
            pairs = zip(samples[0][case], samples[1][case], strict=True)
            row["ratio_first_over_second"] = round(statistics.median(a / b for a, b in pairs), 3)
        result[case] = row
    return result


def remove_networking(env: dict[str, str]) -> None:
    """What a checkout's runs leave in the namespace: the default bridge and minidocker's
    chains, removed by that checkout's own code (``network.prune`` takes them when nothing is
    attached)."""
    code = "from minidocker import network; network.prune()"
    with contextlib.suppress(subprocess.CalledProcessError):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)


def show(console: Console, report: dict) -> None:
    checkouts = report["checkouts"]
    table = Table(title="minidocker start-up, whole process (wall time, ms)")
    table.add_column("case")
    table.add_column("command")
    for number, _ in enumerate(checkouts):
        for column in ("median", "min", "max"):
            table.add_column(f"{column} [{number + 1}]", justify="right")
    if len(checkouts) == 2:
        table.add_column("[1] / [2]", justify="right")
    for case, row in report["figures"].items():
        cells = [f"{c[key]:.1f}" for c in row["checkouts"]
                 for key in ("median_ms", "min_ms", "max_ms")]
        if "ratio_first_over_second" in row:
            cells.append(f"{row['ratio_first_over_second']:.3f}×")
        table.add_row(case, "minidocker " + " ".join(CASES[case]), *cells)
    console.print(table)
    for number, checkout in enumerate(checkouts):
        console.print(f"[{number + 1}] {checkout}")
    left = {key: value for key, value in report["left_behind"].items() if value}
    console.print(f"[red]left behind: {left}[/]" if left else "nothing left behind")


if __name__ == "__main__":
    sys.exit(main())
