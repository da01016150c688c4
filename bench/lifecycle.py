"""Many detached containers: does start-up slow down, and what does a container's monitor cost?

Issue 5: "50 detached containers — start time of the 50th vs the 1st, and memory per container
of the monitor against podman's conmon (target ≤ 2×)."

1. ``minidocker run -d busybox sleep 3600`` N times (default 50), one after the other, each
   timed from the start of the command to its exit (the container runs then). Reported: the
   1st, 10th and last start, the median, last / 1st, and the median of the last five over the
   median of the first five (one sample each is noisy; five are less so).
2. With all N running: the memory of each container's monitor (``python -m
   minidocker.container.monitor``) and of its shim, if one stays (the monitor's forked child,
   the parent of PID 1; 0 since the monitor adopts PID 1 itself), from ``/proc/<pid>/smaps_rollup``: PSS (each shared page divided among the processes
   that map it: the fair share, since the N monitors share the interpreter's pages), USS (pages
   only this process maps) and RSS (every page it maps, shared or not).
3. The same with ``podman run -d`` (its own store, ``--runtime runc``) and its per-container
   monitor ``conmon`` (``podman inspect --format {{.State.ConmonPid}}``). podman is skipped,
   with the reason, when it is not installed or cannot start containers here.
4. Everything is removed: ``minidocker rm -f`` (all N in one command) and ``podman rm -f -t 0
   -a``, both timed; then nothing of the benchmark may be left: processes, mounts, cgroups,
   state directories.

Ratios (reported, not enforced): memory per container minidocker / conmon for PSS, USS and
RSS — the monitor alone and monitor + shim — with the target ≤ 2× on PSS; and the median start
``minidocker run -d`` / ``podman run -d``. Two context rows: an idle ``python`` and an idle
``python`` that has imported the monitor's module, measured while the N monitors run.

All of it runs in a private mount and network namespace, with a temporary ``MINIDOCKER_ROOT``,
cgroup parent and podman store, below a parent process that reaps orphans at once as a normal
init does (``reap_orphans``; this machine's PID 1 is about a second late).

Usage: bench/lifecycle.py [-n N] [--skip podman] [--json PATH]     (as root; ``sudo ./kit bench``)
"""

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import common  # bench/common.py: the workspace and its failures, the report
import peers  # bench/peers.py: the workspace, podman's set-up helpers
from rich.console import Console
from rich.table import Table

TARGET = 2.0  # memory per container, minidocker / conmon (PSS)
COMMAND = ["sleep", "3600"]
FIELDS = ("pss", "uss", "rss")  # kB, from smaps_rollup
PODMAN_LOG = ["--log-driver", "k8s-file"]  # conmon writes the log file, as the monitor does


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = common.lab_host("bench/lifecycle.py", "containers need namespaces and mounts")
    if console is None:
        return 1
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "containers": args.n,
              "command": " ".join(COMMAND), "host": host_info(), "skipped": {}}

    def bench(ws: peers.Workspace) -> None:
        console.print(f"setting up in {ws.path}")
        minidocker = Minidocker(ws)
        console.print(f"minidocker: {args.n} × run -d busybox {' '.join(COMMAND)}")
        report["minidocker"] = minidocker.measure(args.n, context=True)
        if "daemon" not in args.skip:
            console.print(f"minidocker daemon: {args.n} × create + start through the API")
            report["minidocker_daemon"] = minidocker.measure_daemon(args.n)
        if podman := podman_figures(ws, minidocker.image_root, args, report, console):
            report["podman"] = podman

    return common.measure_and_show("bench/lifecycle.py", bench, console, report, args, show, ratios)


def podman_figures(ws: peers.Workspace, image_root: Path, args: argparse.Namespace,
                   report: dict, console: Console) -> dict | None:
    """podman's figures for ``args.n`` detached containers, or None: skipped (``--skip
    podman``, or podman missing), with the reason in ``report["skipped"]``."""
    if "podman" in args.skip:
        report["skipped"]["podman"] = "--skip"
        return None
    try:
        podman = Podman(ws, image_root)
        console.print(f"podman: {args.n} × run -d <busybox import> {' '.join(COMMAND)}")
        return podman.measure(args.n)
    except peers.Skipped as exc:
        report["skipped"]["podman"] = str(exc)
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.argument_parser("bench/lifecycle.py", __doc__)
    parser.add_argument("-n", "--containers", dest="n", type=int, default=50, metavar="N",
                        help="detached containers to start, per engine (default 50)")
    parser.add_argument("--skip", action="append", default=[], choices=["podman", "daemon"],
                        help="leave podman (or minidocker's daemon mode) out")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("-n must be at least 1")
    return args


private_namespaces, reap_orphans = common.private_namespaces, common.reap_orphans  # older names


def memory(pid: int) -> dict[str, int]:
    """PSS, USS (private clean + private dirty) and RSS of a process, in kB."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    return {"pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"],
            "rss": fields["Rss"]}


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def add(*parts: dict[str, int]) -> dict[str, int]:
    return {key: sum(part[key] for part in parts) for key in FIELDS}


def mean_memory(samples: list[dict[str, int]]) -> dict[str, float]:
    """kB per container: the mean (for PSS the total over all of them, divided by N)."""
    return {key: round(statistics.mean(s[key] for s in samples), 1) for key in FIELDS}


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = perf_counter()
    result = peers.check(argv, env=env)
    return perf_counter() - started, result.stdout


def start_figures(seconds: list[float]) -> dict:
    """The start times (ms): 1st, 10th, last, median, and how the last compare to the first."""
    ms = [round(s * 1000, 1) for s in seconds]
    first5, last5 = statistics.median(ms[:5]), statistics.median(ms[-5:])
    return {"samples_ms": ms, "first_ms": ms[0], "tenth_ms": ms[9] if len(ms) >= 10 else None,
            "last_ms": ms[-1], "median_ms": round(statistics.median(ms), 1),
            "last_over_first": round(ms[-1] / ms[0], 2),
            "last5_over_first5": round(last5 / first5, 2)}


def remove_timed(argv: list[str], env: dict[str, str]) -> dict:
    """Time the command that removes every container; a failure is reported, not fatal (what
    it left is removed afterwards)."""
    started = perf_counter()
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env=env)
    elapsed = round((perf_counter() - started) * 1000, 1)
    error = None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        error = f"'{' '.join(argv[:2])} ...' exited {result.returncode}: " + " / ".join(lines[-3:])
        print("\n".join(lines[-15:]), file=sys.stderr)
    return {"remove_all_ms": elapsed, "remove_all_error": error}


def our_processes(path: Path) -> list[int]:
    """Processes that carry the workspace's path in their command line or environment: the
    monitors (``MINIDOCKER_ROOT``), conmon and podman's cleanup processes (its store)."""
    needle = str(path).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            for name in ("cmdline", "environ"):
                with open(f"/proc/{entry}/{name}", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry))
                        break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def wait_for_none(path: Path, what: str, timeout: float = 15.0) -> None:
    """Wait until no process of the benchmark is left; kill those that stay (by pid)."""
    deadline = time.monotonic() + timeout
    while (left := our_processes(path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if left:
        raise peers.BenchError(f"{what}: {len(left)} process(es) did not exit after removal "
                               f"(killed): {left}")


def idle_python(imports: str) -> dict[str, int]:
    """Memory of a Python process that has run ``imports`` and waits (context rows)."""
    code = f"{imports}; import os; os.write(1, b'r'); os.read(0, 1)"
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    try:
        if process.stdout.read(1) != b"r":
            raise peers.BenchError(f"python -c '{imports}' failed")
        return memory(process.pid)
    finally:
        process.stdin.close()
        process.wait()
        process.stdout.close()


# --- minidocker ------------------------------------------------------------------------------

class Minidocker:
    """minidocker with a state root and a cgroup parent of its own, in the workspace."""

    def __init__(self, ws: peers.Workspace):
        self.ws = ws
        self.state = ws.dir("minidocker")
        self.cgroup_parent = f"minidocker-bench-{os.getpid()}-lifecycle"
        ws.undo.callback(_remove_cgroup_parent, self.cgroup_parent)
        ws.undo.callback(self.remove_all)  # runs first: containers, then their cgroups
        self.env = {**os.environ, "MINIDOCKER_ROOT": str(self.state),
                    "MINIDOCKER_CGROUP_PARENT": self.cgroup_parent}
        entry_point = Path(sys.executable).with_name("minidocker")
        self.cli = [str(entry_point)] if entry_point.exists() else \
            [sys.executable, "-m", "minidocker.cli"]
        with _environment(self.env):
            from minidocker.image.busybox import create_busybox_image

            self.image_root = peers.root_directory(create_busybox_image())

    def run(self, *argv: str) -> tuple[float, str]:
        return timed([*self.cli, *argv], env=self.env)

    def measure(self, n: int, context: bool = False) -> dict:
        self.run("run", "--rm", "--network", "none", "busybox", "true")  # warm-up: caches
        starts, ids = [], []
        for _ in range(n):
            seconds, out = self.run("run", "-d", "--network", "none", "busybox", *COMMAND)
            starts.append(seconds)
            ids.append(out.strip())
        _, out = self.run("inspect", "--format", "{{.State.MonitorPid}} {{.State.Pid}}", *ids)
        per_container = []
        pairs = [line.split() for line in out.strip().splitlines()]
        if len(pairs) != n:
            raise peers.BenchError(f"minidocker inspect listed {len(pairs)} of {n} containers")
        for monitor_pid, pid1 in ((int(a), int(b)) for a, b in pairs):
            below = children(monitor_pid)
            if below == [pid1]:  # the monitor adopted PID 1: no shim stays
                shim = dict.fromkeys(FIELDS, 0)
            elif len(below) == 1 and children(below[0]) == [pid1]:
                shim = memory(below[0])
            else:
                raise peers.BenchError(f"monitor {monitor_pid}: expected PID 1 {pid1} or one "
                                       f"shim, its parent, below it; found {below}")
            monitor = memory(monitor_pid)
            per_container.append({"monitor": monitor, "shim": shim,
                                  "monitor_shim": add(monitor, shim)})
        result = {"start": start_figures(starts),
                  "memory_kb": {part: mean_memory([c[part] for c in per_container])
                                for part in ("monitor", "shim", "monitor_shim")},
                  "per_container_kb": per_container}
        if context:  # while the N monitors run, so PSS shares the interpreter alike
            result["context_kb"] = {
                "python": idle_python("import sys"),
                "python_monitor_imports": idle_python("import minidocker.container.monitor")}
        result.update(remove_timed([*self.cli, "rm", "-f", *ids], self.env))
        self.remove_all()  # what a failed 'rm -f' left
        wait_for_none(self.state, "minidocker's monitors")
        return result

    def measure_daemon(self, n: int) -> dict:
        """Daemon mode: ``minidocker daemon`` on a socket in the workspace, N containers
        created and started through the Engine API; all of them are watched by one monitor
        host. Memory per container: the host's PSS / N, and (host + API server) / N."""
        import httpx

        sock = self.ws.path / "md.sock"
        daemon = subprocess.Popen([*self.cli, "daemon", "--host", f"unix://{sock}",
                                   "--log-level", "warning"], env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        api = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)),
                           base_url="http://docker", timeout=60)
        ids = []
        try:
            wait_for_socket(api, daemon)
            starts = []
            for _ in range(n):
                started = perf_counter()
                created = api.post("/containers/create", json={
                    "Image": "busybox", "Cmd": COMMAND, "HostConfig": {"NetworkMode": "none"}})
                ids.append(created.json()["Id"])
                if api.post(f"/containers/{ids[-1]}/start").status_code != 204:
                    raise peers.BenchError(f"the daemon could not start container {ids[-1]}")
                starts.append(perf_counter() - started)
            _, out = self.run("inspect", "--format", "{{.State.MonitorPid}}", *ids)
            hosts = set(out.split())
            if len(hosts) != 1:
                raise peers.BenchError(f"expected one monitor host, found {sorted(hosts)}")
            host = memory(int(hosts.pop()))
            server = memory(daemon.pid)
            per = {key: round(host[key] / n, 1) for key in FIELDS}
            both = {key: round((host[key] + server[key]) / n, 1) for key in FIELDS}
            result = {"start": start_figures(starts), "host_kb": host, "api_server_kb": server,
                      "memory_kb": {"host_per_container": per,
                                    "host_and_server_per_container": both}}
        finally:
            api.close()
            daemon.terminate()
            daemon.wait()
        result.update(remove_timed([*self.cli, "rm", "-f", *ids], self.env))
        self.remove_all()
        return result

    def remove_all(self) -> None:
        """Whatever is left (an interrupted run): remove every container, wait for the
        monitors to go."""
        containers = self.state / "containers"
        ids = [p.name for p in containers.iterdir()] if containers.is_dir() else []
        if ids:
            subprocess.run([*self.cli, "rm", "-f", *ids], env=self.env, capture_output=True)
        with contextlib.suppress(peers.BenchError):
            wait_for_none(self.state, "minidocker's monitors")
        with _environment(self.env):
            peers._release_cgroups(self.state)


def wait_for_socket(api, daemon: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise peers.BenchError("minidocker daemon exited at start-up")
        with contextlib.suppress(Exception):
            if api.get("/_ping").text == "OK":
                return
        time.sleep(0.1)
    raise peers.BenchError("minidocker daemon did not answer on its socket")


def _remove_cgroup_parent(parent: str) -> None:
    with contextlib.suppress(OSError):
        peers._remove_cgroup_dirs(parent)


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """``MINIDOCKER_ROOT`` and the cgroup parent for in-process calls into minidocker."""
    keys = ("MINIDOCKER_ROOT", "MINIDOCKER_CGROUP_PARENT")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.update({key: env[key] for key in keys})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- podman ----------------------------------------------------------------------------------

class Podman:
    """podman with a store of its own (as in bench/peers.py), the busybox root imported."""

    def __init__(self, ws: peers.Workspace, image_root: Path):
        podman_bin = shutil.which("podman")
        if not podman_bin:
            raise peers.Skipped("podman is not installed (apt-get install podman)")
        self.ws = ws
        home = ws.dir("podman")
        tmp = ws.dir("podman", "tmp")
        self.podman = [podman_bin, "--root", str(home / "root"), "--runroot",
                       str(home / "runroot"), "--tmpdir", str(tmp), "--network-config-dir",
                       str(ws.dir("podman", "networks")), "--events-backend", "file",
                       "--runtime", "runc"]
        self.env = {**os.environ, "TMPDIR": str(tmp)}
        existed = {path: os.path.lexists(path) for path in peers.PODMAN_HOST_PATHS}
        ws.undo.callback(peers._remove_new_host_paths, existed)
        ws.undo.callback(subprocess.run, [*self.podman, "rmi", "-af"], capture_output=True,
                         env=self.env)
        self.flags = list(peers.PODMAN_RUN_FLAGS) + PODMAN_LOG
        try:
            peers._import(self.podman, image_root, self.env)
            manager = peers.check([*self.podman, "info", "--format",
                                   "{{.Host.CgroupManager}}"], env=self.env)
            if manager.stdout.strip() == "cgroupfs":
                parent = f"minidocker-bench-{os.getpid()}"
                self.flags += ["--cgroup-parent", f"/{parent}"]
                ws.undo.callback(_remove_cgroup_parent, parent)
            ws.undo.callback(self.remove_all)
            # warm-up: the first run creates podman's database and runtime dirs
            self.run("run", "--rm", *self.flags, peers.PODMAN_IMAGE, "true")
        except peers.BenchError as exc:
            raise peers.Skipped(f"podman cannot run containers here: {exc}") from exc

    def run(self, *argv: str) -> tuple[float, str]:
        return timed([*self.podman, *argv], env=self.env)

    def measure(self, n: int) -> dict:
        starts, ids = [], []
        for _ in range(n):
            seconds, out = self.run("run", "-d", *self.flags, peers.PODMAN_IMAGE, *COMMAND)
            starts.append(seconds)
            ids.append(out.strip())
        _, out = self.run("inspect", "--format", "{{.State.ConmonPid}}", *ids)
        pids = [int(line) for line in out.split()]
        if len(pids) != n or 0 in pids:
            raise peers.BenchError(f"podman inspect gave conmon pids {pids} for {n} containers")
        per_container = [{"conmon": memory(pid)} for pid in pids]
        result = {"start": start_figures(starts),
                  "memory_kb": {"conmon": mean_memory([c["conmon"] for c in per_container])},
                  "per_container_kb": per_container}
        result.update(remove_timed([*self.podman, "rm", "-f", "-t", "0", "-a"], self.env))
        self.remove_all()  # what a failed 'rm -f' left
        wait_for_none(self.ws.path / "podman", "podman's conmon")
        return result

    def remove_all(self) -> None:
        subprocess.run([*self.podman, "rm", "-f", "-t", "0", "-a"], capture_output=True,
                       env=self.env)
        with contextlib.suppress(peers.BenchError):
            wait_for_none(self.ws.path / "podman", "podman's conmon")


# --- the report ------------------------------------------------------------------------------

def ratios(report: dict) -> dict[str, dict]:
    """minidocker / podman: memory per container (monitor, monitor + shim, over conmon) and the
    median start."""
    if "podman" not in report:
        return {}
    mine, theirs = report["minidocker"], report["podman"]
    conmon = theirs["memory_kb"]["conmon"]
    found = {}
    for part in ("monitor", "monitor_shim"):
        for key in FIELDS:
            value = mine["memory_kb"][part][key] / conmon[key]
            target = TARGET if key == "pss" else None
            found[f"{key}_{part}_over_conmon"] = {
                "value": round(value, 2), "target": target,
                "met": None if target is None else value <= target}
    found["start_median_minidocker_over_podman"] = {
        "value": round(mine["start"]["median_ms"] / theirs["start"]["median_ms"], 2),
        "target": None, "met": None}
    return found


def show(console: Console, report: dict) -> None:
    n = report["containers"]
    engines = [e for e in ("minidocker", "minidocker_daemon", "podman") if e in report]
    starts = Table(title=f"{n} × run -d busybox {report['command']}, one after the other "
                         "(wall time per command, ms)")
    for column in ("", "1st", "10th", "last", "median", "last / 1st", "last 5 / first 5",
                   f"rm -f all {n}"):
        starts.add_column(column, justify="left" if not column else "right")
    for engine in engines:
        s = report[engine]["start"]
        tenth = "—" if s["tenth_ms"] is None else f"{s['tenth_ms']:.0f}"
        starts.add_row(engine, f"{s['first_ms']:.0f}", tenth, f"{s['last_ms']:.0f}",
                       f"{s['median_ms']:.0f}", f"{s['last_over_first']:.2f}×",
                       f"{s['last5_over_first5']:.2f}×", f"{report[engine]['remove_all_ms']:.0f}")
    console.print(starts)
    for engine in engines:
        if report[engine]["remove_all_error"]:
            console.print(f"[yellow]{engine}: removing all failed (the rest was removed after):[/]"
                          f" {report[engine]['remove_all_error']}")

    table = Table(title=f"Memory per container, mean of {n} running (MiB)")
    for column in ("process", "PSS", "USS", "RSS"):
        table.add_column(column, justify="left" if column == "process" else "right")
    rows = [("minidocker monitor", report["minidocker"]["memory_kb"]["monitor"]),
            ("minidocker shim", report["minidocker"]["memory_kb"]["shim"]),
            ("minidocker monitor + shim", report["minidocker"]["memory_kb"]["monitor_shim"])]
    if "minidocker_daemon" in report:
        daemon = report["minidocker_daemon"]["memory_kb"]
        rows += [("minidocker daemon: monitor host / N", daemon["host_per_container"]),
                 ("minidocker daemon: (host + API server) / N",
                  daemon["host_and_server_per_container"])]
    if "podman" in report:
        rows.append(("podman's conmon", report["podman"]["memory_kb"]["conmon"]))
    context = report["minidocker"].get("context_kb", {})
    for key, label in (("python", "(context) idle python"),
                       ("python_monitor_imports", "(context) idle python + monitor imports")):
        if key in context:
            rows.append((label, context[key]))
    for label, kb in rows:
        table.add_row(label, *(f"{kb[key] / 1024:.2f}" for key in FIELDS))
    console.print(table)

    if report["ratios"]:
        console.print(common.ratio_table("minidocker / podman", report["ratios"]))
    for name, reason in report["skipped"].items():
        console.print(f"[yellow]{name} skipped:[/] {reason}")


def host_info() -> dict[str, str]:
    import platform

    info = {"kernel": platform.release(), "cpus": str(os.cpu_count()),
            "python": platform.python_version()}
    return info | common.tool_versions(("podman", "conmon"))


if __name__ == "__main__":
    sys.exit(main())
