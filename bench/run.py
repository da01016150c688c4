"""How fast does minidocker start a container, next to the real tools? ``sudo ./kit bench``

Every case starts a container from the same busybox root that runs ``true`` and exits, so what
is timed is the engine's own work. Cases run in rounds (each case once per round, so a slow
moment of the machine hits all of them alike; every other round in reverse order), each run
after a short pause (``--pause``) so that none starts in the wake of the one before; the first
rounds are a warm-up, the median of the rest is what counts.

  CLI:  ``minidocker run --rm busybox true``  vs  ``podman run --rm``  vs  ``runc run``;
        and ``minidocker run --rm --runtime runc`` (minidocker's story, runc's spawn)
  API:  ``run(spec).wait()`` inside this Python process  vs  ``runc run``
  cgroups: minidocker (CLI and API) and runc again with -m 64m --pids-limit 100 --cpus 0.5;
        and a container's cgroup work alone (create + limits, join, destroy), in-process

Targets (reported, not enforced): the CLI no slower than podman, the API no slower than runc.
``python -c pass`` is measured too: the floor under any Python command line. What cgroups add
is shown in ms and as a fraction of the run.

Usage: bench/run.py [--runs N] [--warmup N] [--pause S] [--skip podman|runc] [--json PATH]
       bench/run.py --registry [--json PATH]     (the registry's benchmark: bench/registry.py)
"""

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import common  # bench/common.py: options, workspace, report
import peers  # bench/peers.py: the contestants
from rich.console import Console
from rich.table import Table

# Ratios worth a verdict: (key, numerator case, denominator case, target or None).
RATIOS = [
    ("cli_minidocker_over_podman", "minidocker-cli", "podman", 1.0),
    ("cli_minidocker_over_runc", "minidocker-cli", "runc", None),
    ("api_minidocker_over_runc", "minidocker-api", "runc", 1.0),
    ("api_minidocker_limits_over_runc_limits", "minidocker-api-limits", "runc-limits", None),
    ("cli_runtime_runc_over_own_runtime", "minidocker-cli-runc", "minidocker-cli", None),
    ("cli_runtime_runc_over_runc_run", "minidocker-cli-runc", "runc", None),
]
# The cases timed in steps: {case: (table title, {step: what it does})}.
PHASES = {
    "minidocker-api-phases": ("Where the in-process run goes (medians, ms)", {
        "create": "create(): find the image, pick a name, write the record (fsync)",
        "start": "start(): cgroup + limits, fork the shim, unshare, join the cgroup, "
                 "overlay + /proc /sys /dev, pivot_root, exec",
        "wait": "wait(): `true` runs and exits, the shim reaps it, the cgroup and the record "
                "are removed",
    }),
    "minidocker-cgroup": ("A container's cgroup work alone, with limits (medians, ms)", {
        "create": "cgroups.for_container(id); .create(): mkdir in every hierarchy",
        "limits": ".set_limits(-m 64m --pids-limit 100 --cpus 0.5): write the limit files",
        "join": ".add_process(pid): move a process in (cgroup.procs, every hierarchy)",
        "destroy": ".destroy() once the process is gone: thaw, kill what is left, rmdir",
    }),
}
# What the limits add to a run: (key, case with limits, the same without, label).
LIMIT_PAIRS = [
    ("api", "minidocker-api-limits", "minidocker-api", "in-process API: run(spec).wait()"),
    ("cli", "minidocker-cli-limits", "minidocker-cli", "command line: minidocker run"),
    ("runc", "runc-limits", "runc", "runc run (limits in config.json)"),
]
CGROUP_PARTS = [  # (key, steps of the cgroup case, label)
    ("create_limits", ["create", "limits"], "cgroup create + limits"),
    ("limits", ["limits"], "… of which writing the limits"),
    ("join", ["join"], "cgroup join (a process moves in)"),
    ("destroy", ["destroy"], "cgroup destroy"),
    ("all", ["create", "limits", "join", "destroy"], "all of a container's cgroup work"),
]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.registry:  # the registry's benchmark instead: bench/registry.py
        import registry

        return registry.main(["--json", args.json] if args.json else [])
    if os.geteuid() != 0:
        print("bench/run.py: needs root (containers need namespaces and mounts): "
              "run 'sudo ./kit bench'", file=sys.stderr)
        return 1
    console = common.console()
    host = host_info()
    console.print(", ".join(f"{k} {v}" for k, v in host.items()))

    def bench(ws: peers.Workspace) -> tuple:
        cases, skipped = gather_cases(ws, set(args.skip), console)
        console.print(f"timing {len(cases)} cases: {args.warmup} warm-up round(s), "
                      f"then {args.runs} measured round(s), {args.pause:g} s before each run")
        return cases, skipped, *measure(cases, args.runs, args.warmup, args.pause)

    failed, timed = common.in_workspace("bench/run.py", bench)
    if failed:
        return failed
    cases, skipped, samples, phases = timed
    results = summarize(cases, samples)
    ratios = compute_ratios(results)
    phase_medians = {case: {name: ms(statistics.median(values)) for name, values in steps.items()}
                     for case, steps in phases.items()}
    cgroup_cost = compute_cgroup_cost(results, samples, phases)
    show(console, results, ratios, phase_medians, cgroup_cost, skipped)
    if args.json:
        report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "host": host,
                  "runs": args.runs, "warmup": args.warmup, "pause_s": args.pause,
                  "results": results, "ratios": ratios,
                  "api_phases_ms": phase_medians.get("minidocker-api-phases", {}),
                  "cgroup_phases_ms": phase_medians.get("minidocker-cgroup", {}),
                  "cgroup_cost": cgroup_cost, "skipped": skipped}
        common.write_json(console, args.json, report)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.argument_parser("bench/run.py", __doc__)
    common.add_round_options(parser, runs=20, warmup=3,
                             runs_help="measured rounds; the median is reported")
    parser.add_argument("--skip", action="append", default=[], choices=["podman", "runc"],
                        help="leave a peer out (repeatable)")
    parser.add_argument("--registry", action="store_true",
                        help="instead: the registry benchmark (bench/registry.py: skopeo, "
                             "distribution, a 200 MB image, a 1 GiB blob; about a minute)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.pause < 0:
        parser.error("--runs must be at least 1, --warmup and --pause at least 0")
    return args


def gather_cases(ws, skip: set[str], console: Console):
    """Set up every peer; one that is missing or refuses to work is skipped with a reason."""
    console.print(f"setting up in {ws.path}")
    cases = peers.python_cases()
    minidocker, image_root = peers.minidocker_cases(ws)
    cases += minidocker
    skipped: dict[str, str] = {}
    peer_cases = (("runc", lambda: peers.runc_cases(ws, image_root, skipped)),
                  ("podman", lambda: [peers.podman_case(ws, image_root)]))
    for name, make in peer_cases:
        if name in skip:
            skipped[name] = "--skip"
            continue
        try:
            cases += make()
        except peers.Skipped as exc:
            skipped[name] = str(exc)
    return cases, skipped


def measure(cases, runs: int, warmup: int, pause: float):
    """Run every case once per round, every other round in reverse order, each after
    ``pause`` seconds; keep the wall times of the rounds after the warm-up (so the i-th sample
    of every case comes from the same round). A case's own breakdown (``{phase: seconds}``) is
    kept per case and phase."""
    samples: dict[str, list[float]] = {case.key: [] for case in cases}
    phases: dict[str, dict[str, list[float]]] = {}
    for round_number in range(warmup + runs):
        for case in cases if round_number % 2 == 0 else reversed(cases):
            time.sleep(pause)
            started = perf_counter()
            breakdown = case.once()
            elapsed = perf_counter() - started
            if round_number < warmup:
                continue
            samples[case.key].append(elapsed)
            for phase, seconds in (breakdown or {}).items():
                phases.setdefault(case.key, {}).setdefault(phase, []).append(seconds)
    return samples, phases


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def summarize(cases, samples) -> dict[str, dict]:
    return {case.key: {"group": case.group, "label": case.label, "command": case.command,
                       "median_ms": ms(statistics.median(samples[case.key])),
                       "min_ms": ms(min(samples[case.key])),
                       "max_ms": ms(max(samples[case.key])),
                       "samples_ms": [ms(s) for s in samples[case.key]]}
            for case in cases}


def compute_ratios(results: dict[str, dict]) -> dict[str, dict]:
    ratios = {}
    for key, numerator, denominator, target in RATIOS:
        if numerator in results and denominator in results:
            value = results[numerator]["median_ms"] / results[denominator]["median_ms"]
            ratios[key] = {"value": round(value, 2), "target": target,
                           "met": None if target is None else value <= target}
    return ratios


def compute_cgroup_cost(results, samples, phases) -> dict[str, dict]:
    """What cgroups add to a run, in ms and as a fraction of the run.

    ``limits_*``: a run with the limits minus the same run without, as the median of the
    per-round differences (both ran in the same round), over the median run without limits.
    ``cgroup_*``: the in-process cgroup work alone (median of the steps, or of their per-round
    sum), over the median in-process run with the same limits, which contains that work."""
    cost = {}
    for key, limited, plain, label in LIMIT_PAIRS:
        if limited in samples and plain in samples:
            added = statistics.median(a - b for a, b in zip(samples[limited], samples[plain],
                                                            strict=True))
            cost[f"limits_{key}"] = _cost(label + ": with limits − without", added, plain,
                                          results)
    steps = phases.get("minidocker-cgroup", {})
    if steps and "minidocker-api-limits" in results:
        for key, parts, label in CGROUP_PARTS:
            added = statistics.median(sum(round_) for round_ in zip(*(steps[p] for p in parts),
                                                                   strict=True))
            cost[f"cgroup_{key}"] = _cost(label, added, "minidocker-api-limits", results)
    return cost


def _cost(label: str, added: float, run: str, results) -> dict:
    run_ms = results[run]["median_ms"]
    return {"label": label, "added_ms": ms(added), "run": run, "run_ms": run_ms,
            "fraction": round(added * 1000 / run_ms, 3)}


def show(console: Console, results, ratios, phases, cgroup_cost, skipped) -> None:
    table = Table(title="Start a container that runs `true` (wall time, ms)")
    table.add_column("")
    table.add_column("who")
    for column in ("median", "min", "max"):
        table.add_column(column, justify="right")
    table.add_column("what runs")
    groups = {"context": "context", "cli": "command line", "api": "in-process API"}
    for group, title in groups.items():
        for r in results.values():
            if r["group"] == group:
                table.add_row(title, r["label"], f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}",
                              f"{r['max_ms']:.1f}", r["command"])
                title = ""
    console.print(table)

    verdicts = Table(title="Ratios of medians")
    for column in ("comparison", "ratio", "target", "verdict"):
        verdicts.add_column(column)
    for key, r in ratios.items():
        target = f"≤ {r['target']:.1f}×" if r["target"] else "(context)"
        verdict = "" if r["met"] is None else "[green]met[/]" if r["met"] else "[red]missed[/]"
        verdicts.add_row(key.replace("_over_", " / ").replace("_", " "), f"{r['value']:.2f}×",
                         target, verdict)
    if ratios:
        console.print(verdicts)

    for case, (title, texts) in PHASES.items():
        if case in phases:
            steps = Table(title=title)
            steps.add_column("step")
            steps.add_column("median", justify="right")
            for name, text in texts.items():
                steps.add_row(text, f"{phases[case][name]:.2f}")
            console.print(steps)

    if cgroup_cost:
        added = Table(title="What cgroups add to a run")
        for column in ("what", "added (ms)", "of the run", "run (ms)", "fraction"):
            added.add_column(column, justify="left" if column in ("what", "of the run")
                             else "right")
        for c in cgroup_cost.values():
            who = results[c["run"]]
            added.add_row(c["label"], f"{c['added_ms']:+.2f}", f"{who['label']} ({who['group']})",
                          f"{c['run_ms']:.1f}", f"{c['fraction']:+.1%}")
        console.print(added)
    for name, reason in skipped.items():
        console.print(f"[yellow]{name} skipped:[/] {reason}")


def host_info() -> dict[str, str]:
    """What the figures depend on: kernel, cgroup layout, CPUs, versions."""
    from minidocker.cgroups import layout as cgroup_layout

    info = {"kernel": platform.release(), "cgroup_layout": cgroup_layout(),
            "cpus": str(os.cpu_count()), "python": platform.python_version(),
            "os": _os_release()}
    return info | common.tool_versions(("runc", "podman"))


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


if __name__ == "__main__":
    sys.exit(main())
