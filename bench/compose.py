"""How fast does ``minidocker compose`` bring a 5-service project up and down?

Issue 15: "``up -d`` and ``down`` of a 5-service project, minidocker compose vs docker-compose
through minidocker's daemon vs podman-compose on podman, in one run as ratios (target ≤ 1.0×
each)."

The project (written into the workspace): ``db`` with a named volume, ``cache``, ``api``,
``worker`` and ``web`` (a published port), busybox each, ``init: true`` (so a stop takes no
grace period), on the project's default network. Each engine brings it up with ``up -d`` and
takes it down with ``down -v``, both timed from the start of the command to its exit, in
rounds (each engine once per round, every other round in reverse order; the first rounds are
not counted). The engines:

* ``minidocker compose`` (the command line, a new Python process each time);
* ``docker-compose`` 1.29 talking to ``minidocker daemon`` (the Engine API over a socket);
* ``podman-compose`` (PyPI, a dev dependency) on podman 4.3 with a store of its own (as in
  bench/lifecycle.py), ``--in-pod false`` (a container each on the project network, as Compose
  makes them; podman-compose's default is one pod for the project), tini for ``init: true``
  (podman's catatonit is not packaged here);
* for reference, ``docker-compose`` 1.29 on the real dockerd 20.10 (its own data root, no
  iptables, its own cgroup parent).

An engine that is not installed, or that cannot bring the project up here, is skipped with the
reason. Everything runs in a private mount and network namespace with a temporary state root
and cgroup parent (bench/lifecycle.py), and is removed at the end.

Usage: bench/compose.py [--runs N] [--warmup N] [--skip ENGINE] [--json PATH]   (as root)
"""

import contextlib
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import common  # bench/common.py: options, the workspace and its failures, the report
import lifecycle  # bench/lifecycle.py: private namespaces, the reaper, the minidocker workspace
import peers  # bench/peers.py: the workspace
from rich.console import Console
from rich.table import Table

PROJECT = """\
services:
  db: {image: busybox, init: true, command: sleep 3600, volumes: ["data:/data"]}
  cache: {image: busybox, init: true, command: sleep 3600}
  api: {image: busybox, init: true, command: sleep 3600, depends_on: [db, cache]}
  worker: {image: busybox, init: true, command: sleep 3600, depends_on: [db]}
  web: {image: busybox, init: true, command: sleep 3600, ports: ["8080:80"], depends_on: [api]}
volumes:
  data:
"""
ENGINES = ("minidocker", "daemon", "podman", "dockerd")
LABELS = {"minidocker": "minidocker compose", "daemon": "docker-compose → minidocker daemon",
          "podman": "podman-compose → podman", "dockerd": "docker-compose → dockerd (reference)"}


def main(argv: list[str] | None = None) -> int:
    parser = common.argument_parser("bench/compose.py", __doc__)
    common.add_round_options(parser, runs=5, warmup=1, runs_help="counted rounds")
    parser.add_argument("--skip", action="append", default=[], choices=ENGINES[1:],
                        help="leave an engine out")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/compose.py needs root: sudo ./kit bench", file=sys.stderr)
        return 1
    lifecycle.private_namespaces()
    lifecycle.reap_orphans()
    console = Console(width=None if sys.stdout.isatty() else 120)
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "services": 5,
              "host": lifecycle.host_info(), "skipped": {}}

    def bench(ws: peers.Workspace) -> None:
        (ws.dir("project") / "compose.yaml").write_text(PROJECT)
        engines = {"minidocker": MinidockerCompose(ws)}
        for name, make in (("daemon", DaemonCompose), ("podman", PodmanCompose),
                           ("dockerd", DockerdCompose)):
            if name in args.skip:
                report["skipped"][name] = "--skip"
                continue
            try:
                console.print(f"setting up {LABELS[name]}")
                engines[name] = make(ws, engines["minidocker"])
                engines[name].cycle()  # it must work here before it is timed
            except peers.Skipped as exc:
                report["skipped"][name] = str(exc)
                engines.pop(name, None)
        report["results"] = measure(engines, args.runs, args.warmup, args.pause, console)

    failed, _ = common.in_workspace("bench/compose.py", bench)
    if failed:
        return failed
    report["ratios"] = ratios(report["results"])
    show(console, report)
    if args.json:
        common.write_json(console, args.json, report)
    return 0


def measure(engines: dict, runs: int, warmup: int, pause: float, console) -> dict:
    samples = {name: {"up": [], "down": []} for name in engines}
    order = list(engines)
    for round_number in range(warmup + runs):
        console.print(f"round {round_number + 1}/{warmup + runs}")
        for name in order if round_number % 2 == 0 else reversed(order):
            time.sleep(pause)
            up, down = engines[name].cycle()
            if round_number >= warmup:
                samples[name]["up"].append(up)
                samples[name]["down"].append(down)
    return {name: {step: {"median_ms": round(statistics.median(values) * 1000, 1),
                          "min_ms": round(min(values) * 1000, 1),
                          "max_ms": round(max(values) * 1000, 1)}
                   for step, values in steps.items()} for name, steps in samples.items()}


def ratios(results: dict) -> dict:
    ours = results["minidocker"]
    return {f"{step}: minidocker / {name}": {
        "ratio": round(ours[step]["median_ms"] / results[name][step]["median_ms"], 2),
        "target": 1.0} for name in results if name != "minidocker" for step in ("up", "down")}


def show(console: Console, report: dict) -> None:
    table = Table(title="compose up -d / down -v of a 5-service project (ms)")
    for column in ("engine", "up median", "up min", "up max", "down median", "down min",
                   "down max"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for name, steps in report["results"].items():
        table.add_row(LABELS[name], *(f"{steps[step][key]:.0f}" for step in ("up", "down")
                                      for key in ("median_ms", "min_ms", "max_ms")))
    console.print(table)
    for label, ratio in report["ratios"].items():
        mark = "ok" if ratio["ratio"] <= ratio["target"] else "over the target"
        console.print(f"{label} = {ratio['ratio']:.2f}× (target ≤ {ratio['target']}×: {mark})")
    for name, reason in report["skipped"].items():
        console.print(f"skipped {LABELS[name]}: {reason}")


# --- the engines ------------------------------------------------------------------------------

class Engine:
    """One way to run ``compose up -d`` and ``down -v`` on the project."""

    argv: list[str]
    env: dict[str, str]

    def __init__(self, ws: peers.Workspace):
        self.project = ws.dir("project")

    def compose(self, *args: str) -> float:
        started = time.perf_counter()
        result = subprocess.run([*self.argv, *args], cwd=self.project, env=self.env,
                                capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - started
        if result.returncode:
            self.compose_quietly("down", "-v")
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise peers.Skipped(f"'{' '.join(args)}' failed: {lines[-1] if lines else '?'}")
        return seconds

    def compose_quietly(self, *args: str) -> None:
        subprocess.run([*self.argv, *args], cwd=self.project, env=self.env,
                       capture_output=True, timeout=300)

    def cycle(self) -> tuple[float, float]:
        return self.compose("up", "-d"), self.compose("down", "-v")


class MinidockerCompose(Engine):
    def __init__(self, ws: peers.Workspace):
        super().__init__(ws)
        self.minidocker = lifecycle.Minidocker(ws)
        self.env = self.minidocker.env
        self.argv = [*self.minidocker.cli, "compose", "-p", "bench"]
        ws.undo.callback(self.compose_quietly, "down", "-v")


class Daemon:
    """A daemon process on a socket in the workspace, stopped by its PID."""

    def __init__(self, ws: peers.Workspace, name: str, argv: list[str], env: dict):
        self.socket = ws.dir(name) / "sock"
        log = open(ws.dir(name) / "log", "w")
        self.process = subprocess.Popen([*argv, "-H", f"unix://{self.socket}"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        ws.undo.callback(self.stop)
        ws.undo.callback(log.close)
        deadline = time.monotonic() + 60
        while not self.socket.exists() or subprocess.run(
                ["docker", "-H", f"unix://{self.socket}", "version"],
                capture_output=True).returncode:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise peers.Skipped(f"{argv[0]} did not start: see {ws.dir(name) / 'log'}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class DaemonCompose(Engine):
    def __init__(self, ws: peers.Workspace, ours: MinidockerCompose):
        super().__init__(ws)
        if not shutil.which("docker-compose"):
            raise peers.Skipped("docker-compose is not installed")
        daemon = Daemon(ws, "daemon", [*ours.minidocker.cli, "daemon", "--log-level",
                                       "warning"], ours.env)
        self.env = {**ours.env, "DOCKER_HOST": f"unix://{daemon.socket}"}
        self.argv = ["docker-compose", "-p", "benchd"]
        ws.undo.callback(self.compose_quietly, "down", "-v")


class DockerdCompose(Engine):
    def __init__(self, ws: peers.Workspace, ours: MinidockerCompose):
        super().__init__(ws)
        for tool in ("dockerd", "docker-compose", "docker"):
            if not shutil.which(tool):
                raise peers.Skipped(f"{tool} is not installed")
        root = ws.dir("dockerd")
        parent = f"{ours.minidocker.cgroup_parent}-dockerd"
        ws.undo.callback(lifecycle._remove_cgroup_parent, parent)
        daemon = Daemon(ws, "dockerd-run", [
            "dockerd", "--data-root", f"{root}/data", "--exec-root", f"{root}/exec",
            "--pidfile", f"{root}/pid", "--iptables=false", "--ip-masq=false",
            "--bridge=none", "--cgroup-parent", parent, "--containerd-namespace",
            "minidocker-bench", "--log-level", "error"], dict(os.environ))
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.socket}",
                    "DOCKER_CONFIG": str(root / "config")}
        self.argv = ["docker-compose", "-p", "benchref"]
        image = subprocess.run([*ours.minidocker.cli, "save", "busybox"], env=ours.env,
                               capture_output=True)
        subprocess.run(["docker", "load"], input=image.stdout, env=self.env,
                       capture_output=True, check=True)
        ws.undo.callback(self.compose_quietly, "down", "-v")


class PodmanCompose(Engine):
    """podman-compose (PyPI, beside this Python) on podman with a store of its own: the busybox
    root imported and tagged ``docker.io/library/busybox`` (so ``image: busybox`` finds it and
    nothing is pulled), podman's global flags through ``--podman-args`` and the sandbox's run
    flags through ``--podman-run-args`` (podman-compose creates, then starts)."""

    def __init__(self, ws: peers.Workspace, ours: MinidockerCompose):
        super().__init__(ws)
        tool = shutil.which("podman-compose", path=f"{Path(sys.executable).parent}:"
                            f"{os.environ.get('PATH', '')}")
        if not tool:
            raise peers.Skipped("podman-compose is not installed (pip install podman-compose)")
        peers.private_podman_network_dirs(ws)  # the project network's leases and netns
        podman = lifecycle.Podman(ws, ours.minidocker.image_root)
        peers.check([*podman.podman, "tag", peers.PODMAN_IMAGE, "docker.io/library/busybox"],
                    env=podman.env)
        run_flags = [flag for flag in podman.flags if flag not in ("--network", "none")]
        if shutil.which("tini-static"):  # --init: podman's catatonit is not packaged here
            run_flags += ["--init-path", shutil.which("tini-static")]
        self.env = podman.env
        self.argv = [tool, "--in-pod", "false", "--podman-path", podman.podman[0],
                     "--podman-args", shlex.join(podman.podman[1:]),
                     "--podman-run-args", shlex.join(run_flags), "-p", "benchp"]
        ws.undo.callback(self.compose_quietly, "down", "-v")


if __name__ == "__main__":
    sys.exit(main())
