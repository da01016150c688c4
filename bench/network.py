"""What does bridge networking cost a container, and does it slow down as a bridge fills up?

Issue 6: "cost of bridge networking per run — the median of ``minidocker run --rm --network
bridge busybox true`` minus ``--network none`` (target ≤ 50 ms) — and with 50 detached
containers on one bridge, the time of the 50th attach vs the 1st."

1. **Per run.** ``minidocker run --rm --network none busybox true`` and the same with
   ``--network bridge``, and ``podman run --rm`` of the same busybox root with ``--network
   none`` and on podman's own default bridge (issue 18 item 3: "``run --rm`` (bridge) ≤ 1.0×
   podman on its bridge, in one run"), in rounds (each case once per round, every other round
   in reverse order, a short pause before each run, warm-up rounds not counted). Reported:
   the medians, each engine's bridge − none (the median of the per-round differences; for
   minidocker against the target) and minidocker / podman on each network (target ≤ 1.0× on
   the bridge). podman is skipped, with the reason, when it is missing or cannot start
   containers here.
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
   they were before the benchmark made anything (podman's bridge and chains too: podman keeps
   its default network's when its last container goes, so the benchmark removes them).

All of it runs in a private mount and network namespace (nothing touches this machine's
network), with a temporary ``MINIDOCKER_ROOT`` and cgroup parent, podman's store in the
workspace (bench/lifecycle.py's ``Podman``), and a tmpfs of that mount namespace over the two
directories podman's bridge writes on the host whatever its flags say
(``peers.PODMAN_NETWORK_DIRS``),
below a parent that reaps orphans at once (see bench/lifecycle.py).

Usage: bench/network.py [--runs N] [--warmup N] [--pause S] [-n N] [--skip podman]
                        [--per-run-only] [--json PATH]   (as root)
"""

import argparse
import contextlib
import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import common  # bench/common.py: options, the workspace and its failures, the report
import lifecycle  # bench/lifecycle.py: private namespaces, the reaper, the minidocker workspace
import peers  # bench/peers.py: the workspace
from rich.console import Console
from rich.table import Table

TARGET_MS = 50.0  # bridge − none, per run
# minidocker / podman, run --rm on each network: issue 18 item 3 (the bridge's is this
# benchmark's; --network none's is bench/run.py's, shown here as context of the same run)
RATIO_TARGETS = {"bridge": 1.0, "none": 0.8}
MODES = ("none", "bridge")
RUN = ["run", "--rm", "busybox", "true"]
# The chains podman's bridge adds, by its backend's prefix (CNI's plugins, or netavark's).
PODMAN_CHAINS = ("CNI-", "NETAVARK")
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
                  "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
                  "load_average": {"start": load_average()}},
              "skipped": {}}
    pristine = kernel_state()

    def bench(ws: peers.Workspace) -> None:
        console.print(f"setting up in {ws.path}")
        md = lifecycle.Minidocker(ws)
        ws.undo.callback(remove_networking, md)
        runners = {"minidocker": lambda mode: md.run(*RUN[:2], "--network", mode, *RUN[2:])[0]}
        if podman := podman_peer(ws, md.image_root, args, report):
            runners["podman"] = podman.run_rm
        console.print(f"per run: {args.warmup} warm-up + {args.runs} rounds of "
                      f"run --rm --network none|bridge busybox true, by {' and '.join(runners)}")
        md.run(*RUN[:2], "--network", "bridge", *RUN[2:])  # the bridge, the chains
        per_engine = per_run(runners, args.runs, args.warmup, args.pause)
        report["per_run"] = per_engine["minidocker"]
        report["per_run"]["target_ms"] = TARGET_MS
        report["per_run"]["met"] = report["per_run"]["added_ms"] <= TARGET_MS
        if podman:
            report["podman_per_run"] = per_engine["podman"]
            report["ratios"] = ratios(per_engine)
            report["podman"] = podman.describe()
        report["host"]["load_average"]["after_per_run"] = load_average()
        if args.per_run_only:
            return
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
    if "podman" in report:  # its tmpfs is gone now: what it held when podman's rounds ended
        report["left_behind"] |= {"podman_netns": report["podman"]["netns_left"],
                                  "podman_leases": report["podman"]["leases_left"]}
    show(console, report)
    if args.json:
        common.write_json(console, args.json, report)
    return 1 if any(report["left_behind"].values()) else 0


def load_average() -> list[float]:
    """The machine's load average over 1, 5 and 15 minutes: how busy the runs' rounds were."""
    return [round(load, 2) for load in os.getloadavg()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.argument_parser("bench/network.py", __doc__)
    common.add_round_options(parser, runs=15, warmup=2,
                             runs_help="measured rounds of the per-run cost")
    parser.add_argument("-n", "--containers", dest="n", type=int, default=50, metavar="N",
                        help="containers on one bridge (default 50)")
    parser.add_argument("--skip", action="append", default=[], choices=["podman"],
                        help="leave podman out of the per-run rounds")
    parser.add_argument("--per-run-only", action="store_true",
                        help="only the per-run rounds (minidocker and podman, none and bridge)")
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

def per_run(runners: dict[str, Callable[[str], float]], runs: int, warmup: int,
            pause: float) -> dict[str, dict]:
    """Rounds of every engine on none and on its bridge (``runners[engine](mode)`` runs
    ``run --rm`` once and returns its wall time in seconds). For each engine: the medians and
    the median of the per-round differences, in wall-clock time and in CPU time (user + system
    of the command and the processes it waited for: what a busy machine stretches the least)."""
    cases = [(engine, mode) for engine in runners for mode in MODES]
    samples: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    cpu: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    for round_number in range(warmup + runs):
        for engine, mode in cases if round_number % 2 == 0 else reversed(cases):
            time.sleep(pause)
            before = children_cpu_ms()
            seconds = runners[engine](mode)
            if round_number >= warmup:
                samples[engine, mode].append(seconds * 1000)
                cpu[engine, mode].append(children_cpu_ms() - before)
    return {engine: summary({m: samples[engine, m] for m in MODES},
                            {m: cpu[engine, m] for m in MODES}) for engine in runners}


def summary(samples: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict:
    """One engine's rounds: the samples, both medians and bridge − none (the median of the
    per-round differences), in wall-clock and in CPU time."""
    added = [b - n for b, n in zip(samples["bridge"], samples["none"], strict=True)]
    added_cpu = [b - n for b, n in zip(cpu["bridge"], cpu["none"], strict=True)]
    return {"samples_ms": {m: [round(s, 1) for s in v] for m, v in samples.items()},
            "none_ms": round(statistics.median(samples["none"]), 1),
            "bridge_ms": round(statistics.median(samples["bridge"]), 1),
            "added_ms": round(statistics.median(added), 1),
            "cpu_ms": {m: round(statistics.median(v), 1) for m, v in cpu.items()},
            "added_cpu_ms": round(statistics.median(added_cpu), 1)}


def ratios(per_engine: dict[str, dict]) -> dict[str, dict]:
    """minidocker / podman on each network: the ratio of the medians (the verdict, as in
    bench/run.py) and, next to it, the median of the per-round ratios (both ran in the same
    round)."""
    mine, theirs = per_engine["minidocker"], per_engine["podman"]
    found = {}
    for mode in ("bridge", "none"):
        value = mine[f"{mode}_ms"] / theirs[f"{mode}_ms"]
        per_round = statistics.median(
            a / b for a, b in zip(mine["samples_ms"][mode], theirs["samples_ms"][mode],
                                  strict=True))
        found[f"run_{mode}_minidocker_over_podman"] = {
            "value": round(value, 2), "per_round": round(per_round, 2),
            "target": RATIO_TARGETS[mode], "met": value <= RATIO_TARGETS[mode]}
    return found


# --- podman on its own bridge ---------------------------------------------------------------------

class PodmanBridge:
    """``podman run --rm`` on ``--network none`` and on podman's default bridge network: rootful
    podman with its store in the workspace (bench/lifecycle.py's ``Podman``: its own
    ``--root``, ``--runroot``, ``--tmpdir``, ``--network-config-dir``, cgroup parent), its bridge,
    veths, netns and iptables rules in the benchmark's private network namespace."""

    def __init__(self, ws: peers.Workspace, image_root: Path):
        peers.private_podman_network_dirs(ws)
        self.bridge: str | None = None
        ws.undo.callback(self.remove_network)  # after podman's containers are gone (LIFO)
        self.peer = lifecycle.Podman(ws, image_root)  # Skipped: missing, or cannot run here
        at = self.peer.flags.index("--network")  # "--network none": given per run here
        self.flags = self.peer.flags[:at] + self.peer.flags[at + 2:]
        try:
            self.run_rm("bridge")  # the first run on the bridge makes it, and the chains
        except peers.BenchError as exc:
            raise peers.Skipped(f"podman cannot start a container on its bridge: {exc}") from exc
        self.bridge = self.info("network", "inspect", "podman", "--format",
                                "{{.NetworkInterface}}")

    def run_rm(self, mode: str) -> float:
        seconds, _ = self.peer.run("run", "--rm", "--network", mode, *self.flags,
                                   peers.PODMAN_IMAGE, "true")
        return seconds

    def info(self, *argv: str) -> str:
        return self.peer.run(*argv)[1].strip()

    def describe(self) -> dict:
        """What the bridge figures depend on: the network backend, the bridge, iptables'."""
        iptables = subprocess.run(["iptables", "-V"], capture_output=True, text=True).stdout
        return {"version": self.info("version", "--format", "{{.Client.Version}}"),
                "network_backend": self.info("info", "--format", "{{.Host.NetworkBackend}}"),
                "bridge": self.bridge, "iptables": iptables.strip(),
                "netns_left": os.listdir("/run/netns"), "leases_left": cni_leases()}

    def remove_network(self) -> None:
        """podman keeps its default network's bridge and chains when its last container goes
        (and ``podman network rm`` refuses the default network): remove them, so that the
        namespace is left as it was found."""
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for table in ("filter", "nat"):
            remove_chains(table, PODMAN_CHAINS)


def podman_peer(ws: peers.Workspace, image_root: Path, args: argparse.Namespace,
                report: dict) -> PodmanBridge | None:
    """podman for the per-run rounds, or None (``--skip podman``, missing, or unable to start
    a container on its bridge here), with the reason in ``report["skipped"]``."""
    if "podman" in args.skip:
        report["skipped"]["podman"] = "--skip"
        return None
    try:
        return PodmanBridge(ws, image_root)
    except peers.Skipped as exc:
        report["skipped"]["podman"] = str(exc)
        return None


def cni_leases() -> list[str]:
    """The addresses CNI's host-local IPAM still holds (a file per address; none when every
    container's network was torn down)."""
    leases = Path("/var/lib/cni/networks")
    return sorted(str(path.relative_to(leases)) for path in leases.glob("*/*")
                  if path.name not in ("lock", "last_reserved_ip.0")) if leases.is_dir() else []


def remove_chains(table: str, prefixes: tuple[str, ...]) -> None:
    """Remove the chains of ``table`` whose names start with one of ``prefixes``: the rules
    that jump to them from other chains, then their rules, then the chains."""
    def iptables(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["iptables", "-w", "-t", table, *argv], capture_output=True,
                              text=True)
    rules = iptables("-S").stdout.splitlines()
    chains = [line.split()[1] for line in rules
              if line.startswith("-N ") and line.split()[1].startswith(prefixes)]
    for rule in rules:
        words = shlex.split(rule)
        if words[0] == "-A" and words[1] not in chains and \
                words[-1] in chains and words[-2] in ("-j", "-g"):
            iptables("-D", *words[1:])
    for flag in ("-F", "-X"):
        for chain in chains:
            iptables(flag, chain)


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
    show_per_run(console, report)
    if "steps_ms" in report:  # not with --per-run-only
        show_where_and_many(console, report)
    left = {k: v for k, v in report["left_behind"].items() if v}
    console.print("[red]left behind:[/] " + json.dumps(left) if left else
                  "nothing left behind: links, addresses and iptables rules as before")


def show_per_run(console: Console, report: dict) -> None:
    table = Table(title=f"ENGINE run --rm --network MODE busybox true ({report['runs']} "
                        "rounds, ms)")
    for column in ("", "median", "min", "max", "CPU (median)"):
        table.add_column(column, justify="left" if not column else "right")
    engines = {"minidocker": report["per_run"], "podman": report.get("podman_per_run")}
    for engine, run in engines.items():
        if run is None:
            continue
        mark = "" if engine == "minidocker" else "¹"
        for mode in MODES:
            s = run["samples_ms"][mode]
            table.add_row(f"{engine} --network {mode}", f"{statistics.median(s):.1f}",
                          f"{min(s):.1f}", f"{max(s):.1f}", f"{run['cpu_ms'][mode]:.1f}{mark}")
        verdict = ""
        if engine == "minidocker":
            verdict = f"target ≤ {TARGET_MS:.0f}: " + ("[green]met[/]" if run["met"] else
                                                      "[red]missed[/]")
        table.add_row(f"[bold]{engine} bridge − none[/] (median of per-round differences)",
                      f"[bold]{run['added_ms']:.1f}[/]", "", verdict,
                      f"{run['added_cpu_ms']:.1f}{mark}")
    console.print(table)
    if "podman_per_run" in report:
        console.print("¹ podman and the processes it waited for (the CNI plugins, iptables); "
                      "not conmon and runc, orphans it never waits for")
    if "ratios" in report:
        console.print(common.ratio_table("minidocker / podman, run --rm (ratio of the medians)",
                                         report["ratios"]))
        podman = report["podman"]
        console.print(f"podman {podman['version']}: {podman['network_backend']} backend, bridge "
                      f"{podman['bridge']}, {podman['iptables']}; netns left "
                      f"{podman['netns_left']}, leases left {podman['leases_left']}")
    for name, reason in report["skipped"].items():
        console.print(f"[yellow]{name} skipped:[/] {reason}")


def show_where_and_many(console: Console, report: dict) -> None:

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


if __name__ == "__main__":
    sys.exit(main())
