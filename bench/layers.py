"""How fast does minidocker write and read layers, next to GNU tar doing the same work?

Issue 18, items 4 and 5. Two datasets in a container's upper dir: 10,000 small files
(``small``) and one 200 MB file, half text and half random bytes (``large``). For each, in
rounds (each pair once per round, every other round in the reverse order, the first round not
counted), four pairs timed as whole commands, and the ratio of their medians:

    commit     minidocker commit C IMAGE        tar -czf L.tgz -C UPPER .
    save       minidocker save -o I.tar IMAGE   tar -cf B.tar  (the image's blob files)
    load       minidocker load -i I.tar         tar -xzf L.tgz -C DIR   (the same layer)
    extract    extract_layer(LAYER, DIR)        tar -xzf L.tgz -C DIR   (in this process)

``commit`` also makes the store's unpacked copy of the layer (``cp -a`` of the upper dir), and
every round's commit makes both anew (each round ends with ``rmi``, which takes the layer's
blob and unpacked copy away), as a user's first commit of a container does; and
``load`` hashes and re-compresses the layer before it extracts it: the whole command against
tar's part of it. ``extract`` is the extractor alone, with every safety check, against
``tar -xzf``. Targets (reported, not enforced): commit, save and extraction <= 1.5x tar.

Each side's CPU time (user + system, the process and the children it waited for, from
getrusage(2)) is reported beside its wall time: on a loaded machine the scheduler hands the
two sides different shares (``tar -xzf`` is two processes, tar and gzip, that often sleep on
their pipe), so the CPU ratio says what each side costs when the wall ratio says little.

Everything runs in a private mount and network namespace, on a tmpfs state root.
Usage: bench/layers.py [--runs N] [--files N] [--large-mb N] [--json PATH]   (as root)
"""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import common  # bench/common.py: the lab host, the ratio table, the JSON report
from rich.table import Table

TARGET = 1.5
CASES = ("commit", "save", "load", "extract")


def main(argv: list[str] | None = None) -> int:
    parser = common.argument_parser("bench/layers.py", __doc__)
    parser.add_argument("--runs", type=int, default=3, help="counted rounds (default 3)")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--large-mb", type=int, default=200)
    parser.add_argument("--only", choices=("small", "large"), help="one dataset")
    args = parser.parse_args(argv)
    console = common.lab_host("bench/layers.py", "namespaces, mounts")
    if console is None:
        return 1
    with tmpfs_state_root() as root:
        # -P: the CLI from PYTHONPATH even when run in a checkout (-m puts the cwd first)
        minidocker = [sys.executable, "-P", "-m", "minidocker.cli"]
        subprocess.run([*minidocker, "setup"], check=True, capture_output=True)
        report = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                  "load_average": os.getloadavg(), "runs": args.runs, "datasets": {}}
        fills = {"small": lambda upper: small_files(upper / "many", args.files),
                 "large": lambda upper: large_file(upper / "large", args.large_mb << 20)}
        for dataset, fill in fills.items():
            if args.only in (None, dataset):
                report["datasets"][dataset] = measure(minidocker, root, dataset, fill,
                                                      args.runs)
        report["load_average_after"] = os.getloadavg()
    show(console, report)
    if args.json:
        common.write_json(console, args.json, report)
    return 0


class tmpfs_state_root:
    """A tmpfs ``MINIDOCKER_ROOT`` (and scratch space), unmounted at the end."""

    def __enter__(self) -> Path:
        from minidocker import kernel

        self.root = Path(tempfile.mkdtemp(prefix="minidocker-bench-layers-"))
        kernel.mount("tmpfs", str(self.root), "tmpfs", 0, "mode=711")
        os.environ["MINIDOCKER_ROOT"] = str(self.root / "state")
        os.environ["MINIDOCKER_CGROUP_PARENT"] = f"minidocker-bench-{os.getpid()}"
        return self.root

    def __exit__(self, *exc):
        from minidocker import kernel

        kernel.umount2(str(self.root), kernel.MNT_DETACH)
        os.rmdir(self.root)


def small_files(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        (folder / f"f{i}").write_text(f"{i}\n")


def large_file(path: Path, size: int) -> None:
    """Half words (compressible), half random bytes: neither gzip's best case nor its worst."""
    text = b" ".join(b"layer%d" % i for i in range(8192))[:32768]
    with open(path, "wb") as out:
        for _ in range(size // 65536):
            out.write(text + os.urandom(32768))


def measure(minidocker: list[str], root: Path, dataset: str, fill, runs: int) -> dict:
    """Each pair once per round (the first round not counted); the medians and ratios."""
    subprocess.run([*minidocker, "run", "--network", "none", "--name", dataset, "busybox",
                    "true"], check=True, capture_output=True)
    upper = next(Path(os.environ["MINIDOCKER_ROOT"], "containers").glob("*/upper"))
    fill(upper)
    scratch = root / "scratch"
    times: dict[str, list[tuple[Spent, Spent]]] = {case: [] for case in CASES}
    for round_ in range(runs + 1):
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        flip = round_ % 2 == 1
        for case in CASES:
            pair = one_pair(minidocker, case, dataset, upper, scratch, flip)
            if round_:
                times[case].append(pair)
        subprocess.run([*minidocker, "rmi", "-f", f"{dataset}:bench"], capture_output=True)
    subprocess.run([*minidocker, "rm", "-f", dataset], check=True, capture_output=True)
    shutil.rmtree(scratch, ignore_errors=True)
    result = {}
    for case, pairs in times.items():
        ours, tars = ([statistics.median(s.wall for s in side) * 1000,
                       statistics.median(s.cpu for s in side) * 1000]
                      for side in zip(*pairs, strict=True))
        result[case] = {"minidocker_ms": round(ours[0], 1), "tar_ms": round(tars[0], 1),
                        "ratio": round(ours[0] / tars[0], 2), "target": TARGET,
                        "minidocker_cpu_ms": round(ours[1], 1), "tar_cpu_ms": round(tars[1], 1),
                        "cpu_ratio": round(ours[1] / tars[1], 2) if tars[1] else None}
    return result


class Spent(NamedTuple):
    wall: float  # seconds
    cpu: float  # seconds of user + system time


def one_pair(minidocker, case, dataset, upper, scratch, flip) -> tuple[Spent, Spent]:
    """(minidocker's time, tar's time) for one case, in the round's order."""
    image = f"{dataset}:bench"
    pairs = {
        "commit": lambda: ([*minidocker, "commit", dataset, image],
                           ["tar", "-czf", f"{scratch}/layer.tgz", "-C", str(upper), "."]),
        "save": lambda: ([*minidocker, "save", "-o", f"{scratch}/image.tar", image],
                         ["tar", "-cf", f"{scratch}/blobs.tar", "-C", blob_folder(),
                          *blobs(image)]),
        "load": lambda: ([*minidocker, "load", "-i", f"{scratch}/image.tar"],
                         ["tar", "-xzf", f"{scratch}/layer.tgz", "-C", fresh(scratch / "t1")]),
        "extract": lambda: (lambda: extract(top_layer(image), fresh(scratch / "ours")),
                            ["tar", "-xzf", top_layer(image), "-C", fresh(scratch / "t2")]),
    }
    ours, theirs = pairs[case]()
    if case == "load":  # the image and its unpacked layer go first: load must extract it
        subprocess.run([*minidocker, "rmi", "-f", image], check=True, capture_output=True)
    first, second = (theirs, ours) if flip else (ours, theirs)
    spent = {id(first): timed(first), id(second): timed(second)}
    return spent[id(ours)], spent[id(theirs)]


def timed(command) -> Spent:
    """Wall and CPU time of a command (a subprocess) or a function (in this process)."""
    who = resource.RUSAGE_SELF if callable(command) else resource.RUSAGE_CHILDREN
    before, started = resource.getrusage(who), time.perf_counter()
    if callable(command):
        command()
    else:
        subprocess.run(command, check=True, capture_output=True)
    wall, after = time.perf_counter() - started, resource.getrusage(who)
    return Spent(wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def fresh(folder: Path) -> str:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return str(folder)


def extract(layer: str, dest: str) -> None:
    from minidocker.image.layers import extract_layer

    with open(layer, "rb") as source:
        extract_layer(source, Path(dest))


def blob_folder() -> str:
    from minidocker.image.store import ImageStore

    return str(ImageStore().root / "blobs" / "sha256")


def blobs(image: str) -> list[str]:
    from minidocker.image.store import ImageStore

    found = ImageStore().get(image)
    digests = [found.manifest_digest, found.id, *(d["digest"] for d in found.manifest["layers"])]
    return [digest.split(":")[1] for digest in digests]


def top_layer(image: str) -> str:
    from minidocker.image.store import ImageStore

    store = ImageStore()
    return str(store.blobs.path(store.get(image).manifest["layers"][-1]["digest"]))


def show(console, report: dict) -> None:
    table = Table(title=f"layers vs GNU tar, median of {report['runs']} rounds, ms "
                        f"(load average {report['load_average'][0]:.1f} -> "
                        f"{report['load_average_after'][0]:.1f})")
    for column in ("dataset", "case", "minidocker", "tar", "ratio", "target", "CPU ms",
                   "CPU ratio"):
        table.add_column(column)
    for dataset, cases in report["datasets"].items():
        for case, r in cases.items():
            verdict = "[green]met[/]" if r["ratio"] <= TARGET else "[red]missed[/]"
            cpu = f"{r['cpu_ratio']:.2f}×" if r["cpu_ratio"] else "-"
            table.add_row(dataset, case, f"{r['minidocker_ms']:.0f}", f"{r['tar_ms']:.0f}",
                          f"{r['ratio']:.2f}×", f"≤ {TARGET}× {verdict}",
                          f"{r['minidocker_cpu_ms']:.0f} / {r['tar_cpu_ms']:.0f}", cpu)
    console.print(table)


if __name__ == "__main__":
    shutil.which("tar") or sys.exit("bench/layers.py needs GNU tar")
    sys.exit(main())
