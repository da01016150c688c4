"""What does bridge networking cost a container, and does it slow down as a bridge fills up?

Issue 6: "cost of bridge networking per run — the median of ``minidocker run --rm --network
bridge busybox true`` minus ``--network none`` (target ≤ 50 ms) — and with 50 detached
containers on one bridge, the time of the 50th attach vs the 1st."

1. **Per run.** ``minidocker run --rm --network none busybox true`` and the same with
   ``--network bridge``, in rounds (each once per round, every other round in reverse order,
   a short pause before each run, warm-up rounds not counted). Reported: both medians and the
   median of the per-round differences, against the target.
2. **Where the difference goes**, measured in this process: ``import
   minidocker.network.endpoints`` (pyroute2's rtnetlink messages with it) in a fresh interpreter that has already imported what ``run`` imports;
   then ``network.attach`` + ``write_container_files`` + ``release`` of a process in a new
   network namespace, with the time spent in iptables (and the number of ``iptables`` commands),
   in bridge netlink, in the veth (netlink, in the container's namespace too) and in the hosts
   files; the rest is records and locks.
3. **50 on one bridge.** ``minidocker run -d --network bridge busybox sleep 3600`` N times
   (default 50), each timed; then, in-process, N processes attached one after the other to the
   default bridge and to a user network (where every attach rewrites the hosts file of every
   peer), each ``attach`` timed. Reported: the 1st, 10th and last, the median, last / 1st.
4. Everything is removed, and the kernel's links, addresses and iptables rules must be what
   they were before the benchmark made anything.

All of it runs in a private mount and network namespace (nothing touches this machine's
network), with a temporary ``MINIDOCKER_ROOT`` and cgroup parent, below a parent that reaps
orphans at once (see bench/lifecycle.py).

Usage: bench/network.py [--runs N] [--warmup N] [--pause S] [-n N] [--json PATH]   (as root)
"""

import argparse
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import common  # bench/common.py: options, the workspace and its failures, the report
import lifecycle  # bench/lifecycle.py: private namespaces, the reaper, the minidocker workspace
import peers  # bench/peers.py: the workspace
from rich.console import Console
from rich.table import Table

TARGET_MS = 50.0  # bridge − none, per run
RUN = ["run", "--rm", "busybox", "true"]
# What ``minidocker run`` imports before it knows it needs networking (see bench/run.py).
RUN_IMPORTS = "import minidocker.cli, minidocker.container.lifecycle, minidocker.container.start"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = common.lab_host("bench/network.py", "namespaces, links, iptables")
    if console is None:
        return 1
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": args.runs,
              "warmup": args.warmup, "pause_s": args.pause, "containers": args.n,
              "host": lifecycle.host_info() | {
                  "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}}
    pristine = kernel_state()

    def bench(ws: peers.Workspace) -> None:
        console.print(f"setting up in {ws.path}")
        md = lifecycle.Minidocker(ws)
        ws.undo.callback(remove_networking, md)
        console.print(f"per run: {args.warmup} warm-up + {args.runs} rounds of "
                      "run --rm --network none|bridge busybox true")
        report["per_run"] = per_run(md, args.runs, args.warmup, args.pause)
        console.print("where it goes: imports, then attach/release in-process")
        report["imports_ms"] = import_costs(args.runs)
        with lifecycle._environment(md.env):
            report["steps_ms"] = attach_steps(max(args.runs, 3))
        console.print(f"{args.n} × run -d --network bridge busybox sleep 3600")
        report["many"] = many_detached(md, args.n)
        with lifecycle._environment(md.env):
            report["attach_series"] = {
                "bridge": attach_series(args.n, "bridge"),
                "user_network": attach_series(args.n, "benchnet", create=True)}

    failed, _ = common.in_workspace("bench/network.py", bench)
    if failed:
        return failed
    left = kernel_state()
    report["left_behind"] = {key: sorted(set(left[key]) - set(pristine[key])) for key in left}
    show(console, report)
    if args.json:
        common.write_json(console, args.json, report)
    return 1 if any(report["left_behind"].values()) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.argument_parser("bench/network.py", __doc__)
    common.add_round_options(parser, runs=15, warmup=2,
                             runs_help="measured rounds of the per-run cost")
    parser.add_argument("-n", "--containers", dest="n", type=int, default=50, metavar="N",
                        help="containers on one bridge (default 50)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.n < 1 or args.warmup < 0:
        parser.error("--runs and -n must be at least 1, --warmup at least 0")
    return args


# --- the kernel's state ---------------------------------------------------------------------------

def kernel_state() -> dict[str, list[str]]:
    """Links, IPv4 addresses and iptables rules of this (the benchmark's) network namespace."""
    def run(*argv: str) -> list[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout \
            .splitlines()
    return {"links": sorted(line.split(": ")[1].split("@")[0] for line in run("ip", "-o", "link")),
            "addresses": sorted(" ".join(line.split()[1:4])
                                for line in run("ip", "-o", "-4", "addr")),
            "filter": run("iptables", "-w", "-S"), "nat": run("iptables", "-w", "-t", "nat", "-S")}


def remove_networking(md: lifecycle.Minidocker) -> None:
    """Remove every container, then what they leave: the user network, the default bridge and
    minidocker's chains (``network.prune`` takes the last two when nothing is attached)."""
    md.remove_all()
    with lifecycle._environment(md.env):
        from minidocker import network
        from minidocker.network import networks

        with contextlib.suppress(Exception):
            networks.prune()
        network.prune()


# --- 1. per run -----------------------------------------------------------------------------------

def per_run(md: lifecycle.Minidocker, runs: int, warmup: int, pause: float) -> dict:
    """Rounds of none and bridge; the medians and the median of the per-round differences, in
    wall-clock time (the target) and in CPU time (user + system of the CLI and the processes
    it waited for: what a busy machine stretches the least)."""
    modes = ["none", "bridge"]
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    md.run("run", "--rm", "--network", "bridge", "busybox", "true")  # the bridge, the chains
    for round_number in range(warmup + runs):
        for mode in modes if round_number % 2 == 0 else reversed(modes):
            time.sleep(pause)
            before = children_cpu_ms()
            seconds, _ = md.run(*RUN[:2], "--network", mode, *RUN[2:])
            if round_number >= warmup:
                samples[mode].append(seconds * 1000)
                cpu[mode].append(children_cpu_ms() - before)
    added = [b - n for b, n in zip(samples["bridge"], samples["none"], strict=True)]
    added_cpu = [b - n for b, n in zip(cpu["bridge"], cpu["none"], strict=True)]
    return {"samples_ms": {m: [round(s, 1) for s in v] for m, v in samples.items()},
            "none_ms": round(statistics.median(samples["none"]), 1),
            "bridge_ms": round(statistics.median(samples["bridge"]), 1),
            "added_ms": round(statistics.median(added), 1), "target_ms": TARGET_MS,
            "met": statistics.median(added) <= TARGET_MS,
            "cpu_ms": {m: round(statistics.median(v), 1) for m, v in cpu.items()},
            "added_cpu_ms": round(statistics.median(added_cpu), 1)}


def children_cpu_ms() -> float:
    """User + system CPU time of every child this process has waited for, so far (ms)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (used.ru_utime + used.ru_stime) * 1000


# --- 2. where it goes -----------------------------------------------------------------------------

IMPORT_PROBE = f"""
from time import perf_counter
{RUN_IMPORTS}
t = perf_counter()
import minidocker.network.endpoints  # what attach loads (minidocker.network itself is lazy)
print((perf_counter() - t) * 1000)
"""


def import_costs(runs: int) -> dict:
    """``import minidocker.network.endpoints`` after the run's own imports, and ``import
    pyroute2`` (the whole package) alone, each in a fresh interpreter (medians, ms)."""
    def probe(code: str) -> float:
        out = peers.check([sys.executable, "-c", code]).stdout
        return float(out.strip())
    alone = "from time import perf_counter\nt = perf_counter()\nimport pyroute2\n" \
            "print((perf_counter() - t) * 1000)"
    times = max(3, min(runs, 7))
    return {"network_after_run_imports": round(statistics.median(
                probe(IMPORT_PROBE) for _ in range(times)), 1),
            "pyroute2_alone": round(statistics.median(probe(alone) for _ in range(times)), 1)}


class Timers:
    """Wrap module functions so that each call adds its time (and count) to a category."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self.calls: dict[str, int] = {}  # every category, 0 when not called
        self._undo = contextlib.ExitStack()

    def wrap(self, module, name: str, category: str) -> None:
        original = getattr(module, name)

        def timed(*args, **kwargs):
            started = perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.ms[category] = self.ms.get(category, 0) + (perf_counter() - started) * 1000
                self.calls[category] = self.calls.get(category, 0) + 1
        setattr(module, name, timed)
        self._undo.callback(setattr, module, name, original)
        self.ms.setdefault(category, 0.0)
        self.calls.setdefault(category, 0)

    def reset(self) -> None:
        self.ms = dict.fromkeys(self.ms, 0.0)
        self.calls = dict.fromkeys(self.calls, 0)

    def __enter__(self) -> "Timers":
        return self

    def __exit__(self, *exc_info) -> None:
        self._undo.close()


def timers_for_steps() -> Timers:
    from minidocker.network import bridge, firewall, hosts, veth

    timers = Timers()
    timers.wrap(firewall, "iptables", "iptables")
    timers.wrap(firewall, "_restore", "iptables")  # a container's rules, in one batch
    timers.wrap(bridge, "ensure_bridge", "bridge (netlink + sysctl)")
    timers.wrap(veth, "plug", "veth plug (netlink, both namespaces)")
    timers.wrap(veth, "unplug", "veth unplug (netlink)")
    timers.wrap(hosts, "refresh_peers", "hosts files")
    timers.wrap(hosts, "write_container_files", "hosts files")
    return timers


def sleeper() -> "object":
    """A stand-in for a container's PID 1: ``sleep`` in a network namespace of its own."""
    from minidocker import namespaces

    return namespaces.spawn(["sleep", "3600"], {"net"})


def stop(process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.signal(signal.SIGKILL)
    process.wait()


def attach_steps(runs: int) -> dict:
    """attach + write_container_files + release on the default bridge, in-process, by step
    (medians over ``runs``; the bridge and the chains exist already, as in a run)."""
    from minidocker import network
    from minidocker.network import hosts
    from minidocker.network.store import new_id

    totals: dict[str, list[float]] = {}
    calls: dict[str, int] = {}
    with timers_for_steps() as timers, _tempdir() as files:
        for _ in range(runs):
            process = sleeper()
            container_id = new_id()
            timers.reset()
            try:
                t0 = perf_counter()
                network.attach(container_id, process.pid, network.NetworkRequest("bridge"))
                hosts.write_container_files(container_id, files / container_id[:12])
                t1 = perf_counter()
                network.release(container_id)
                t2 = perf_counter()
            finally:
                stop(process)
                network.release(container_id)
            steps = {"attach + files": (t1 - t0) * 1000, "release": (t2 - t1) * 1000,
                     **timers.ms}
            steps["the rest (records, locks, IPAM)"] = (
                steps["attach + files"] + steps["release"] - sum(timers.ms.values()))
            for key, value in steps.items():
                totals.setdefault(key, []).append(value)
            calls = dict(timers.calls)
    return {"median_ms": {k: round(statistics.median(v), 1) for k, v in totals.items()},
            "calls_per_run": calls}


@contextlib.contextmanager
def _tempdir():
    import tempfile

    with tempfile.TemporaryDirectory(prefix="minidocker-bench-files-") as path:
        yield Path(path)


# --- 3. many on one bridge ------------------------------------------------------------------------

def figures(ms: list[float]) -> dict:
    ms = [round(x, 1) for x in ms]
    return {"samples_ms": ms, "first_ms": ms[0], "tenth_ms": ms[9] if len(ms) >= 10 else None,
            "last_ms": ms[-1], "median_ms": round(statistics.median(ms), 1),
            "last_over_first": round(ms[-1] / ms[0], 2),
            "last5_over_first5": round(statistics.median(ms[-5:]) / statistics.median(ms[:5]),
                                       2)}


def many_detached(md: lifecycle.Minidocker, n: int) -> dict:
    """``run -d --network bridge`` N times, each timed; then ``rm -f`` of all of them."""
    starts, ids = [], []
    try:
        for _ in range(n):
            seconds, out = md.run("run", "-d", "--network", "bridge", "busybox", "sleep", "3600")
            starts.append(seconds * 1000)
            ids.append(out.strip())
        veths = [line for line in kernel_state()["links"] if line.startswith("veth")]
        if len(veths) != n:
            raise peers.BenchError(f"{n} containers on the bridge, but {len(veths)} veths")
        removal = lifecycle.remove_timed([*md.cli, "rm", "-f", *ids], md.env)
    finally:
        md.remove_all()
    return {"start": figures(starts), **removal}


def attach_series(n: int, network_name: str, create: bool = False) -> dict:
    """N processes attached one after the other to one network (in-process, files written as
    ``run`` writes them), each attach timed; then all released."""
    from minidocker import network
    from minidocker.network import networks
    from minidocker.network.store import new_id

    if create:
        networks.create(network_name)
    processes, ids, times = [], [], []
    try:
        with _tempdir() as files:
            for number in range(n):
                process = sleeper()
                processes.append(process)
                ids.append(new_id())
                request = network.NetworkRequest(network_name, name=f"c{number}")
                started = perf_counter()
                network.attach(ids[-1], process.pid, request)
                network.write_container_files(ids[-1], files / ids[-1][:12])
                times.append((perf_counter() - started) * 1000)
            started = perf_counter()
            for container_id in ids:
                network.release(container_id)
            release_all = (perf_counter() - started) * 1000
    finally:
        for process in processes:
            stop(process)
        for container_id in ids:
            network.release(container_id)
        if create:
            networks.remove(network_name)
    return {"attach": figures(times), "release_all_ms": round(release_all, 1)}


# --- the report -------------------------------------------------------------------------------------

def show(console: Console, report: dict) -> None:
    run = report["per_run"]
    table = Table(title=f"minidocker run --rm --network MODE busybox true ({report['runs']} "
                        "rounds, ms)")
    for column in ("", "median", "min", "max", "CPU (median)"):
        table.add_column(column, justify="left" if not column else "right")
    for mode in ("none", "bridge"):
        s = run["samples_ms"][mode]
        table.add_row(f"--network {mode}", f"{statistics.median(s):.1f}", f"{min(s):.1f}",
                      f"{max(s):.1f}", f"{run['cpu_ms'][mode]:.1f}")
    verdict = "[green]met[/]" if run["met"] else "[red]missed[/]"
    table.add_row("[bold]bridge − none[/] (median of per-round differences)",
                  f"[bold]{run['added_ms']:.1f}[/]", "", f"target ≤ {TARGET_MS:.0f}: {verdict}",
                  f"{run['added_cpu_ms']:.1f}")
    console.print(table)

    steps = Table(title="Where bridge networking goes (medians, ms)")
    steps.add_column("step")
    steps.add_column("ms", justify="right")
    steps.add_column("calls", justify="right")
    imports = report["imports_ms"]
    steps.add_row("import minidocker.network.endpoints (after run's imports), fresh "
                  "interpreter",
                  f"{imports['network_after_run_imports']:.1f}", "")
    steps.add_row("… (context) import pyroute2 alone", f"{imports['pyroute2_alone']:.1f}", "")
    median, calls = report["steps_ms"]["median_ms"], report["steps_ms"]["calls_per_run"]
    for key, value in median.items():
        steps.add_row(key, f"{value:.1f}", str(calls.get(key, "")))
    console.print(steps)

    many = Table(title=f"{report['containers']} containers on one bridge (ms)")
    for column in ("", "1st", "10th", "last", "median", "last / 1st", "last 5 / first 5", "all"):
        many.add_column(column, justify="left" if not column else "right")
    rows = [("run -d --network bridge", report["many"]["start"],
             f"rm -f {report['many']['remove_all_ms']:.0f}"),
            ("attach, default bridge", report["attach_series"]["bridge"]["attach"],
             f"release {report['attach_series']['bridge']['release_all_ms']:.0f}"),
            ("attach, user network", report["attach_series"]["user_network"]["attach"],
             f"release {report['attach_series']['user_network']['release_all_ms']:.0f}")]
    for label, f, total in rows:
        tenth = "—" if f["tenth_ms"] is None else f"{f['tenth_ms']:.1f}"
        many.add_row(label, f"{f['first_ms']:.1f}", tenth, f"{f['last_ms']:.1f}",
                     f"{f['median_ms']:.1f}", f"{f['last_over_first']:.2f}×",
                     f"{f['last5_over_first5']:.2f}×", total)
    console.print(many)
    if report["many"].get("remove_all_error"):
        console.print(f"[yellow]rm -f failed:[/] {report['many']['remove_all_error']}")
    left = {k: v for k, v in report["left_behind"].items() if v}
    console.print("[red]left behind:[/] " + json.dumps(left) if left else
                  "nothing left behind: links, addresses and iptables rules as before")


if __name__ == "__main__":
    sys.exit(main())
