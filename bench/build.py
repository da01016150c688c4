"""How fast does minidocker build, cold and from the cache, next to buildah?

Issue 12: "a 5-instruction Dockerfile (FROM busybox, ENV, WORKDIR, COPY of 100 files, RUN,
CMD) cold and fully cached, minidocker vs ``buildah bud`` in one run, as ratios. Targets: cold
<= 1.0x, cached <= 0.5x (a cache hit needs no container at all)."

Four cases, in rounds (each case once per round, every other round in reverse order, a short
pause before each run; the warm-up rounds are not counted), the median of the rest reported,
and each ratio as the median of its per-round ratios:

* ``minidocker build --no-cache`` (cold: every step done: one container for the COPY, one
  for the RUN, two layers committed) and ``minidocker build`` (every step a cache hit);
* ``buildah bud --layers --no-cache`` and ``buildah bud --layers``, the same Dockerfile and
  context, as INTEROP.md says buildah runs here: ``--isolation chroot --network host`` inside
  this private network namespace, ``--format docker``, ``--pull=never``, its storage in the
  workspace (``--root``/``--runroot``, the overlay driver), busybox loaded from ``minidocker
  save``.

Both sides print only the image ID (``-q``) and run as a new process, as a user types them.
minidocker's bytecode is written and reused, as an installed package's is.
Everything runs in a private mount and network namespace, with a temporary ``MINIDOCKER_ROOT``
and cgroup parent, below a parent that reaps orphans (see bench/lifecycle.py).

Usage: bench/build.py [--runs N] [--warmup N] [--pause S] [--skip buildah] [--json PATH]
(as root; ``sudo ./kit bench``)
"""

import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import common  # bench/common.py: options, the workspace and its failures, the report
import lifecycle  # bench/lifecycle.py: private namespaces, the reaper, the minidocker workspace
import peers  # bench/peers.py: the workspace, Skipped
from rich.console import Console
from rich.table import Table

DOCKERFILE = """\
FROM busybox
ENV APP=/srv/app
WORKDIR $APP
COPY files/ ./files/
RUN ls files | wc -l > count.txt
CMD ["cat", "count.txt"]
"""
FILES = 100
# (key, numerator case, denominator case, target)
RATIOS = [("cold_minidocker_over_buildah", "minidocker-cold", "buildah-cold", 1.0),
          ("cached_minidocker_over_buildah", "minidocker-cached", "buildah-cached", 0.5)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = common.lab_host("bench/build.py", "containers, mounts")
    if console is None:
        return 1
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": args.runs,
              "warmup": args.warmup, "pause_s": args.pause, "files": FILES,
              "host": lifecycle.host_info() | {"buildah": buildah_version()},
              "skipped": {}, "results": {}, "ratios": {}}

    def bench(ws: peers.Workspace) -> None:
        console.print(f"setting up in {ws.path}")
        context = write_context(ws.dir("context"))
        cases = minidocker_cases(lifecycle.Minidocker(ws), context)
        if "buildah" in args.skip:
            report["skipped"]["buildah"] = "--skip"
        else:
            try:
                cases |= buildah_cases(ws, context, cases["minidocker-cold"].env)
            except peers.Skipped as exc:
                report["skipped"]["buildah"] = str(exc)
        for case in cases.values():
            case.run()  # once, untimed: it works, and the cache is warm for "cached"
        console.print(f"timing {len(cases)} cases: {args.warmup} warm-up round(s), then "
                      f"{args.runs} measured round(s), {args.pause:g} s before each run")
        samples = measure(cases, args.runs, args.warmup, args.pause)
        report["results"] = {key: figures(values) for key, values in samples.items()}
        report["ratios"] = ratios(samples)

    failed, _ = common.in_workspace("bench/build.py", bench)
    if failed:
        return failed
    show(console, report)
    if args.json:
        common.write_json(console, args.json, report)
    return 0


def parse_args(argv: list[str] | None):
    parser = common.argument_parser("bench/build.py", __doc__)
    common.add_round_options(parser, runs=7, warmup=1,
                             runs_help="measured rounds; the median is reported")
    parser.add_argument("--skip", action="append", default=[], choices=["buildah"],
                        help="leave buildah out")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.pause < 0:
        parser.error("--runs must be at least 1, --warmup and --pause at least 0")
    return args


def write_context(folder: Path) -> Path:
    """The Dockerfile and the 100 small files its COPY takes."""
    (folder / "Dockerfile").write_text(DOCKERFILE)
    files = folder / "files"
    files.mkdir()
    for number in range(FILES):
        (files / f"file-{number:03d}.txt").write_text(f"file {number}\n" * 20)
    return folder


class Case:
    """One command line, timed as a new process; it must print an image ID."""

    def __init__(self, key: str, argv: list[str], env: dict[str, str] | None):
        self.key, self.argv, self.env = key, argv, env

    def run(self) -> float:
        started = time.perf_counter()
        done = subprocess.run(self.argv, env=self.env, capture_output=True, text=True)
        took = time.perf_counter() - started
        if done.returncode != 0 or not done.stdout.strip():
            raise peers.BenchError(f"{self.key}: {' '.join(self.argv[:3])} ... failed "
                                   f"({done.returncode}): {done.stderr.strip()[-500:]}")
        return took


def minidocker_cases(md: lifecycle.Minidocker, context: Path) -> dict[str, Case]:
    # Bytecode is written and reused, as an installed package's is, whatever the caller's
    # PYTHONDONTWRITEBYTECODE says (as in bench/startup.py): only the first runs compile.
    env = {**md.env, "PYTHONDONTWRITEBYTECODE": ""}
    build = [*md.cli, "build", "-q", "--network", "none", "-t", "bench-build"]
    return {"minidocker-cold": Case("minidocker-cold", [*build, "--no-cache", str(context)],
                                    env),
            "minidocker-cached": Case("minidocker-cached", [*build, str(context)], env)}


def buildah_cases(ws: peers.Workspace, context: Path, md_env: dict[str, str]) -> dict:
    """buildah with storage of its own in the workspace and busybox from minidocker."""
    if subprocess.run(["which", "buildah"], capture_output=True).returncode != 0:
        raise peers.Skipped("buildah is not installed (apt-get install buildah)")
    where = ws.dir("buildah")
    base = ["buildah", "--root", str(where / "root"), "--runroot", str(where / "run"),
            "--storage-driver", "overlay"]
    ws.undo.callback(remove_buildah_storage, base, where)
    archive = where / "busybox.tar"
    peers.check([sys.executable, "-m", "minidocker.cli", "save", "-o", str(archive), "busybox"],
                env=md_env)
    pulled = peers.check([*base, "pull", "-q", f"docker-archive:{archive}"])
    peers.check([*base, "tag", pulled.stdout.split()[-1], "docker.io/library/busybox:latest"])
    bud = [*base, "bud", "--isolation", "chroot", "--network", "host", "--format", "docker",
           "--pull=never", "--layers", "-q", "-t", "bench-build"]
    return {"buildah-cold": Case("buildah-cold", [*bud, "--no-cache", str(context)], None),
            "buildah-cached": Case("buildah-cached", [*bud, str(context)], None)}


def buildah_version() -> str:
    """``buildah version 1.28.2 (image-spec ...)`` -> ``1.28.2``."""
    try:
        words = subprocess.run(["buildah", "--version"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "not installed"
    return words.split()[2] if len(words.split()) > 2 else "?"


def remove_buildah_storage(base: list[str], where: Path) -> None:
    subprocess.run([*base, "rm", "--all"], capture_output=True)
    subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True)
    subprocess.run(["umount", "-R", str(where / "root")], capture_output=True)


def measure(cases: dict[str, Case], runs: int, warmup: int, pause: float) -> dict:
    samples: dict[str, list[float]] = {key: [] for key in cases}
    for round_number in range(warmup + runs):
        order = list(cases.values())
        if round_number % 2:
            order.reverse()
        for case in order:
            time.sleep(pause)
            took = case.run()
            if round_number >= warmup:
                samples[case.key].append(took)
    return samples


def figures(seconds: list[float]) -> dict:
    return {"median_ms": round(statistics.median(seconds) * 1000, 1),
            "min_ms": round(min(seconds) * 1000, 1), "max_ms": round(max(seconds) * 1000, 1),
            "samples_ms": [round(s * 1000, 1) for s in seconds]}


def ratios(samples: dict[str, list[float]]) -> dict:
    """minidocker / buildah: the median of the per-round ratios (both sides of a ratio ran in
    the same round, so a slow moment of the machine weighs on both)."""
    found = {}
    for key, mine, theirs, target in RATIOS:
        if mine in samples and theirs in samples:
            value = statistics.median(a / b for a, b in zip(samples[mine], samples[theirs],
                                                             strict=True))
            found[key] = {"value": round(value, 2), "target": target, "met": value <= target}
    return found


def show(console: Console, report: dict) -> None:
    table = Table(title=f"build of a 5-instruction Dockerfile (COPY of {FILES} files), "
                        "wall time per command (ms)")
    for column in ("case", "median", "min", "max"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for key, r in report["results"].items():
        table.add_row(key, f"{r['median_ms']:.0f}", f"{r['min_ms']:.0f}", f"{r['max_ms']:.0f}")
    console.print(table)
    if report["ratios"]:
        console.print(common.ratio_table("minidocker / buildah (median of the per-round ratios)",
                                         report["ratios"]))
    for name, reason in report["skipped"].items():
        console.print(f"[yellow]{name} skipped:[/] {reason}")


if __name__ == "__main__":
    sys.exit(main())
