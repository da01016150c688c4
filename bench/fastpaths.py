"""Issue 18's targets, all from one bench run: the fast paths against podman and GNU tar.

The figures come from four benchmarks, run here one after the other (nothing else should run
on the machine meanwhile), each writing its JSON into one directory; the table at the end reads
them back, one row per target:

- bridge - none per ``run --rm`` (bench/network.py, median of the per-round differences):
  <= 50 ms;
- ``run --rm --network none``, minidocker / podman (bench/network.py): <= 0.8x;
- ``run --rm`` on the default bridge, minidocker / podman on its bridge (bench/network.py):
  <= 1.0x;
- ``run -d``, median of 20, minidocker / podman (bench/lifecycle.py): <= 1.0x;
- the monitor + shim PSS per detached container (bench/lifecycle.py): <= 7.4 MiB;
- ``commit`` of 10,000 small files and of a 200 MB file, and the extraction of the same
  layers, against GNU ``tar -czf`` / ``tar -xzf`` (bench/layers.py): <= 1.5x.

bench/run.py's command-line ratio (``run --rm --network none`` against podman, median of 20
with runc and the in-process API beside it) is shown too, as context for the first ratio.

    sudo .venv/bin/python bench/fastpaths.py --out bench/results/fastpaths-$(date +%F)

Each benchmark cleans up after itself and says what it left (nothing, or it fails).
"""

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import common  # bench/common.py: the console, the JSON report
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RUNS = [  # (name, script, arguments)
    ("run", "run.py", []),
    ("network", "network.py", ["--per-run-only"]),
    ("lifecycle", "lifecycle.py", ["-n", "20", "--skip", "daemon"]),
    ("layers", "layers.py", []),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    console = common.console()
    began = datetime.now(UTC).isoformat(timespec="seconds")
    for name, script, extra in RUNS:
        console.rule(f"bench/{script}")
        code = subprocess.call([sys.executable, str(BENCH / script), *extra,
                                "--json", str(args.out / f"{name}.json")])
        if code:
            console.print(f"bench/{script} failed (exit {code}): no table")
            return code
    reports = {name: json.loads((args.out / f"{name}.json").read_text()) for name, *_ in RUNS}
    rows = targets(reports)
    console.print(table(rows, began))
    summary = {"began": began, "ended": datetime.now(UTC).isoformat(timespec="seconds"),
               "targets": [dict(zip(("target", "figure", "goal", "met"), row, strict=True))
                           for row in rows]}
    common.write_json(console, args.out / "fastpaths.json", summary)
    return 0


def targets(reports: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, this run's figure, the goal, met?) for each of issue 18's targets."""
    network, lifecycle, layers = reports["network"], reports["lifecycle"], reports["layers"]
    rows = [("bridge - none, run --rm", f"{network['per_run']['added_ms']} ms", "<= 50 ms",
             network["per_run"]["met"])]
    for mode, label in (("none", "run --rm --network none / podman"),
                        ("bridge", "run --rm (bridge) / podman (its bridge)")):
        ratio = network.get("ratios", {}).get(f"run_{mode}_minidocker_over_podman")
        rows.append(ratio_row(label, ratio))
    cli = reports["run"].get("ratios", {}).get("cli_minidocker_over_podman")
    rows.append(ratio_row("(context) bench/run.py: run --rm --network none / podman", cli,
                          context=True))
    start = lifecycle.get("ratios", {}).get("start_median_minidocker_over_podman")
    rows.append(ratio_row("run -d / podman, median of 20", start and {**start, "target": 1.0}))
    pss = lifecycle["minidocker"]["memory_kb"]["monitor_shim"]["pss"] / 1024
    rows.append(("monitor + shim PSS per container", f"{pss:.2f} MiB", "<= 7.4 MiB", pss <= 7.4))
    for dataset, cases in layers["datasets"].items():
        for case in ("commit", "extract"):
            if case in cases:
                figure = cases[case]
                rows.append((f"{case}, {dataset} / GNU tar",
                             f"{figure['ratio']:.2f}x (CPU {figure['cpu_ratio']:.2f}x)",
                             "<= 1.5x", figure["ratio"] <= 1.5))
    return rows


def ratio_row(label: str, ratio: dict | None, context: bool = False):
    if ratio is None:
        return label, "not measured (see that benchmark's skip reason)", "", None
    goal = "" if context or ratio.get("target") is None else f"<= {ratio['target']}x"
    return label, f"{ratio['value']:.2f}x", goal, None if context else ratio["value"] <= ratio["target"]


def table(rows, began: str) -> Table:
    shown = Table(title=f"Issue 18's targets, one bench run from {began}")
    for column in ("target", "this run", "goal", "verdict"):
        shown.add_column(column)
    for target, figure, goal, met in rows:
        verdict = "" if met is None else ("met" if met else "missed")
        shown.add_row(target, figure, goal, verdict)
    return shown


if __name__ == "__main__":
    sys.exit(main())
