"""The daemon against Docker's: ``docker run --rm busybox true`` through each, and what a detached
container costs in memory.

Issue 14, item 9: "``docker run --rm busybox true`` through minidocker's daemon vs through
dockerd (both with ``--network none`` and with their default bridge), and N detached
containers: memory per container (daemon + monitors, PSS) vs dockerd + containerd-shims and vs
podman + conmon. Targets: run ≤ 1.0× dockerd; memory per detached container ≤ 0.5×
dockerd+shim and ≤ 1.0× conmon."

1. The same docker CLI (``/usr/local/bin/docker``) times ``docker run --rm [--network none]
   busybox true`` against minidocker's daemon and against Debian's dockerd 20.10, in rounds
   (each case once per round, every other round reversed; the first rounds a warm-up; the
   median counts). dockerd runs in mount and network namespaces of its own (``viz/engines.py``:
   its data root on a tmpfs, its own ``docker0``), loaded with the same busybox
   (``minidocker save | docker load``).
2. N detached containers (``docker run -d --network none busybox sleep 3600``, default 50)
   through each daemon, and N through podman (``podman run -d``, its own store): with all N
   running, the PSS (``/proc/<pid>/smaps_rollup``) of what runs besides the containers —
   minidocker's daemon and each container's monitor and shim; dockerd, containerd and each
   ``containerd-shim-runc-v2``; each ``conmon`` (podman has no daemon) — divided by N. The
   daemons' own share is shown apart; and the *growth*: what the whole weighed with the first
   container running, against all N — what one more container costs, the daemons' own
   bookkeeping included.

Ratios (reported, not enforced): run through minidocker's daemon / through dockerd, for
``--network none`` and for the default bridge (target ≤ 1.0×); memory per detached container,
minidocker / dockerd (target ≤ 0.5×) and minidocker / conmon (target ≤ 1.0×). The containers
started through minidocker's daemon share its one monitor host (issue 14, item 6): a monitor
PID that several containers share is counted once, with the daemon.

All of it runs in a private mount and network namespace (bench/lifecycle.py's), with a
temporary state root, cgroup parents and podman store, removed at the end.

Usage: bench/daemon.py [--runs N] [--warmup N] [--pause S] [-n N] [--skip podman]
                       [--json PATH]      (as root; ``sudo ./kit bench``)
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import common  # bench/common.py: options, workspace, report
import lifecycle  # bench/lifecycle.py: private namespaces, the reaper, minidocker, podman
import peers  # bench/peers.py: the workspace and its failures
from rich.console import Console
from rich.table import Table

from minidocker.viz.daemon import pss_kib, tree_pids
from minidocker.viz.engines import DOCKER, Dockerd

NETWORKS = ("none", "bridge")
RUN_TARGET, DOCKERD_TARGET, CONMON_TARGET = 1.0, 0.5, 1.0
COMMAND = ["sleep", "3600"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/daemon.py needs root (daemons, namespaces, mounts): sudo ./kit bench",
              file=sys.stderr)
        return 1
    missing = [what for what, there in ((f"the docker CLI at {DOCKER}", Path(DOCKER).exists()),
                                        ("dockerd (docker.io)", shutil.which("dockerd")))
               if not there]
    if missing:  # nothing to compare with: the other benchmarks of ./kit bench go on
        print(f"bench/daemon.py skipped: it needs {' and '.join(missing)}")
        return 0
    lifecycle.private_namespaces()
    lifecycle.reap_orphans()
    console = Console(width=None if sys.stdout.isatty() else 120)
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": args.runs,
              "warmup": args.warmup, "containers": args.n, "skipped": {},
              "versions": {**common.tool_versions(("podman",)), "dockerd": dockerd_version()}}

    def bench(ws: peers.Workspace) -> None:
        console.print(f"setting up in {ws.path}")
        daemons = {"minidocker": MinidockerDaemon(ws), "dockerd": DockerdPeer(ws)}
        daemons["dockerd"].load(daemons["minidocker"].save())
        console.print(f"run --rm: {args.runs} rounds (+{args.warmup} warm-up) of "
                      f"{len(daemons) * len(NETWORKS)} cases")
        report["run_ms"] = time_runs(daemons, args)
        for name, daemon in daemons.items():
            console.print(f"{name}: {args.n} × docker run -d busybox {' '.join(COMMAND)}")
            report[name] = daemon.detached(args.n)
        podman = lifecycle.podman_figures(ws, daemons["minidocker"].engine.image_root, args,
                                          report, console)
        if podman:
            conmon = podman["memory_kb"]["conmon"]["pss"]
            report["podman"] = {"per_container_kb": round(conmon, 1), "once_kb": 0}

    return common.measure_and_show("bench/daemon.py", bench, console, report, args, show, ratios)


def dockerd_version() -> str:
    """``20.10.24+dfsg1`` from ``Docker version 20.10.24+dfsg1, build 5d6db84``."""
    try:
        line = subprocess.run(["dockerd", "--version"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "not installed"
    return line.split(",")[0].rsplit(" ", 1)[-1]


def parse_args(argv: list[str] | None):
    parser = common.argument_parser("bench/daemon.py", __doc__)
    common.add_round_options(parser, runs=10, warmup=2, runs_help="rounds counted")
    parser.add_argument("-n", "--containers", dest="n", type=int, default=50, metavar="N",
                        help="detached containers per engine (default 50)")
    parser.add_argument("--skip", action="append", default=[], choices=["podman"],
                        help="leave podman out")
    args = parser.parse_args(argv)
    if args.n < 1 or args.runs < 1:
        parser.error("-n and --runs must be at least 1")
    return args


# --- the two daemons ---------------------------------------------------------------------------

class MinidockerDaemon:
    """``minidocker daemon`` on a socket of the workspace, with lifecycle.py's state root and
    cgroup parent."""

    def __init__(self, ws: peers.Workspace):
        self.engine = lifecycle.Minidocker(ws)
        self.socket = ws.path / "minidocker.sock"
        with open(ws.path / "minidocker-daemon.log", "ab") as log:
            self.proc = subprocess.Popen([*self.engine.cli, "daemon", "--host",
                                          f"unix://{self.socket}", "--log-level", "warning"],
                                         env=self.engine.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        ws.undo.callback(self.stop)
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise peers.BenchError("minidocker's daemon did not start: "
                                       + (ws.path / "minidocker-daemon.log").read_text()[-300:])
            time.sleep(0.05)
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                    "DOCKER_CONFIG": str(ws.dir("docker-config"))}

    def save(self) -> bytes:
        return subprocess.run([*self.engine.cli, "save", "busybox"], env=self.engine.env,
                              capture_output=True, check=True).stdout

    def docker(self, *args: str) -> tuple[float, str]:
        return lifecycle.timed([DOCKER, *args], env=self.env)

    def detached(self, n: int) -> dict:
        ids = [run_detached(self)]
        first = sum(self.watchers_pss(ids)[:2])
        ids += [run_detached(self) for _ in range(n - 1)]
        once, per_container, shared, own = self.watchers_pss(ids)
        result = memory_figures(once, per_container, n, first)
        result["processes_per_container"] = own / n
        result["shared_watchers"] = shared
        self.docker("rm", "-f", *ids)
        return result

    def watchers_pss(self, ids: list[str]) -> tuple[int, int, int, int]:
        """kB of the daemon with the monitor processes that several containers share, kB of
        those that watch one container each, and how many processes of each kind."""
        _, out = self.engine.run("inspect", "--format", "{{.State.MonitorPid}} {{.State.Pid}}",
                                 *ids)
        shared, own = watchers([tuple(map(int, line.split()))
                                for line in out.strip().splitlines()])
        return (pss_kib(self.proc.pid) + sum(pss_kib(p) for p in shared),
                sum(pss_kib(p) for p in own), len(shared), len(own))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.engine.remove_all()


def watchers(monitors: list[tuple[int, int]]) -> tuple[set[int], set[int]]:
    """What watches the containers, from their (``State.MonitorPid``, ``State.Pid``) pairs,
    without the containers' own processes: the processes a monitor PID shared by several
    containers runs (the daemon's one monitor host, counted once), and those of monitors that
    watch one container each (a monitor per container, and its shim)."""
    containers = {p for _, pid1 in monitors for p in tree_pids(pid1)}
    counts = {m: sum(1 for other, _ in monitors if other == m) for m, _ in monitors}
    shared = {p for m, n in counts.items() if n > 1 for p in tree_pids(m)} - containers
    own = {p for m, n in counts.items() if n == 1 for p in tree_pids(m)} - containers
    return shared, own


class DockerdPeer:
    """dockerd (viz/engines.py) with its default bridge, inside the benchmark's namespaces."""

    def __init__(self, ws: peers.Workspace):
        self.dockerd = Dockerd(ws.path / "dockerd", bridge=True)
        ws.undo.callback(self.dockerd.stop)
        try:
            self.dockerd.start()
        except Exception as exc:
            raise peers.BenchError(f"dockerd: {exc}") from exc
        self.env = self.dockerd.env

    def load(self, archive: bytes) -> None:
        self.dockerd.load(archive)

    def docker(self, *args: str) -> tuple[float, str]:
        return lifecycle.timed([DOCKER, *args], env=self.env)

    def detached(self, n: int) -> dict:
        ids = [run_detached(self)]
        first = sum(self.daemons_and_shims_pss())
        ids += [run_detached(self) for _ in range(n - 1)]
        once, shims = self.daemons_and_shims_pss()
        result = memory_figures(once, shims, n, first)
        result["processes_per_container"] = len(self.dockerd.shims()) / n
        self.docker("rm", "-f", *ids)
        return result

    def daemons_and_shims_pss(self) -> tuple[int, int]:
        """kB of dockerd and its containerd, and of every containerd-shim."""
        return (sum(pss_kib(p) for p in tree_pids(self.dockerd.pid)),
                sum(pss_kib(p) for p in self.dockerd.shims()))


def run_detached(daemon) -> str:
    return daemon.docker("run", "-d", "--network", "none", "busybox", *COMMAND)[1].strip()


def memory_figures(once_kb: int, containers_kb: int, n: int, first_kb: int) -> dict:
    """kB: the daemon's own PSS, the per-container processes' PSS per container, the total
    divided by N; and what each container after the first added to the whole (``first_kb``:
    all of it with one container running) — the daemons' growth included."""
    total = once_kb + containers_kb
    return {"once_kb": once_kb, "per_container_kb": round(containers_kb / n, 1),
            "total_per_container_kb": round(total / n, 1),
            "growth_per_container_kb": round((total - first_kb) / (n - 1), 1) if n > 1 else None}


# --- run --rm, in rounds -------------------------------------------------------------------------

def time_runs(daemons: dict, args) -> dict:
    cases = [(name, network) for name in daemons for network in NETWORKS]
    samples: dict[str, list[float]] = {f"{name}-{network}": [] for name, network in cases}
    for round_number in range(args.warmup + args.runs):
        ordered = cases if round_number % 2 == 0 else list(reversed(cases))
        for name, network in ordered:
            time.sleep(args.pause)
            started = perf_counter()
            flags = ["--network", "none"] if network == "none" else []
            daemons[name].docker("run", "--rm", *flags, "busybox", "true")
            if round_number >= args.warmup:
                samples[f"{name}-{network}"].append((perf_counter() - started) * 1000)
    return {key: {"median": round(statistics.median(values), 1),
                  "min": round(min(values), 1), "max": round(max(values), 1),
                  "samples": [round(v, 1) for v in values]}
            for key, values in samples.items()}


# --- the report ----------------------------------------------------------------------------------

def ratio(value: float, target: float | None) -> dict:
    return {"value": round(value, 2), "target": target,
            "met": None if target is None else value <= target}


def ratios(report: dict) -> dict:
    run = report["run_ms"]
    found = {f"run_{network}_minidocker_over_dockerd": ratio(
        run[f"minidocker-{network}"]["median"] / run[f"dockerd-{network}"]["median"], RUN_TARGET)
        for network in NETWORKS}
    mine = report["minidocker"]["total_per_container_kb"]
    found["memory_minidocker_over_dockerd"] = ratio(
        mine / report["dockerd"]["total_per_container_kb"], DOCKERD_TARGET)
    growth = report["minidocker"].get("growth_per_container_kb")
    if growth is not None and report["dockerd"]["growth_per_container_kb"] > 0:
        # what one more container adds, the daemons' growth included (a few containers: noise)
        found["memory_growth_minidocker_over_dockerd"] = ratio(
            growth / report["dockerd"]["growth_per_container_kb"], DOCKERD_TARGET)
    if "podman" in report:
        conmon = report["podman"]["per_container_kb"]
        found["memory_minidocker_over_conmon"] = ratio(mine / conmon, CONMON_TARGET)
        if growth is not None:
            found["memory_growth_minidocker_over_conmon"] = ratio(growth / conmon, CONMON_TARGET)
    return found


def show(console: Console, report: dict) -> None:
    run = Table(title="docker run --rm busybox true, through each daemon (ms)")
    for column in ("daemon", "network", "median", "min", "max"):
        run.add_column(column)
    for key, figures in report["run_ms"].items():
        name, network = key.split("-")
        run.add_row(name, network, *(f"{figures[k]:.1f}" for k in ("median", "min", "max")))
    console.print(run)
    n = report["containers"]
    memory = Table(title=f"{n} detached containers: PSS of what runs besides them (MiB)")
    for column in ("engine", "daemon(s), once", "per container", "total / N",
                   "growth / container"):
        memory.add_column(column)
    for name in ("minidocker", "dockerd", "podman"):
        if name in report:
            figures = report[name]
            total = figures.get("total_per_container_kb", figures["per_container_kb"])
            growth = figures.get("growth_per_container_kb", figures["per_container_kb"])
            memory.add_row(name, f"{figures['once_kb'] / 1024:.1f}",
                           f"{figures['per_container_kb'] / 1024:.1f}", f"{total / 1024:.1f}",
                           "-" if growth is None else f"{growth / 1024:.2f}")
    console.print(memory)
    verdicts = Table(title="Ratios (targets reported, not enforced)")
    for column in ("ratio", "value", "target", "met"):
        verdicts.add_column(column)
    for key, value in report["ratios"].items():
        verdicts.add_row(key, f"{value['value']:.2f}×",
                         "-" if value["target"] is None else f"≤ {value['target']}×",
                         {True: "yes", False: "no", None: "-"}[value["met"]])
    console.print(verdicts)
    for name, reason in report["skipped"].items():
        console.print(f"skipped {name}: {reason}")


if __name__ == "__main__":
    sys.exit(main())
