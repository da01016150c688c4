"""How fast are minidocker's layers, next to GNU tar? And is a shared base stored once?

1. ``commit`` of a container that wrote 10,000 small files, against ``tar -czf`` of the same
   upper dir (GNU tar does the same work minus the store: walk, tar, gzip). Target (reported,
   not enforced): commit <= 1.5x tar.
2. Disk used by two images that share the busybox base: the base layer must be counted once
   (``du`` of the store vs the sum of the images' sizes).

Everything happens in a temporary ``MINIDOCKER_ROOT`` inside a private mount namespace.
Usage: bench/images.py [--files N] [--runs N] [--json PATH]     (as root; ``sudo ./kit bench``)
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/images.py needs root: sudo ./kit bench", file=sys.stderr)
        return 1
    private_state_root()
    minidocker = [sys.executable, "-m", "minidocker.cli"]
    subprocess.run([*minidocker, "setup"], check=True, capture_output=True)
    results = {"commit_vs_tar": commit_vs_tar(minidocker, args.files, args.runs),
               "shared_base": shared_base(minidocker)}
    show(results, args.files)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json")
    return parser.parse_args(argv)


def private_state_root() -> None:
    """A private mount namespace and a tmpfs state root: nothing reaches the host."""
    from minidocker import kernel

    kernel.unshare(kernel.CLONE_NEWNS)
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    root = tempfile.mkdtemp(prefix="minidocker-bench-")
    kernel.mount("tmpfs", root, "tmpfs", 0, "mode=711")
    os.environ["MINIDOCKER_ROOT"] = root
    os.environ["MINIDOCKER_CGROUP_PARENT"] = f"minidocker-bench-{os.getpid()}"
    import atexit

    def cleanup():
        kernel.umount2(root, kernel.MNT_DETACH)
        os.rmdir(root)

    atexit.register(cleanup)


def commit_vs_tar(minidocker: list[str], files: int, runs: int) -> dict:
    script = f"mkdir /many && cd /many && for i in $(seq 1 {files}); do echo $i > f$i; done"
    subprocess.run([*minidocker, "run", "--network", "none", "--name", "many", "busybox", "sh", "-c", script],
                   check=True)
    upper = next(Path(os.environ["MINIDOCKER_ROOT"], "containers").glob("*/upper"))
    commit, tar = [], []
    for run in range(runs):
        started = perf_counter()
        image = subprocess.run([*minidocker, "commit", "many", f"many:{run}"], check=True,
                               capture_output=True, text=True).stdout.strip()
        commit.append(perf_counter() - started)
        subprocess.run([*minidocker, "rmi", image], check=True, capture_output=True)
        with tempfile.TemporaryDirectory() as scratch:
            started = perf_counter()
            subprocess.run(["tar", "-czf", f"{scratch}/upper.tgz", "-C", str(upper), "."],
                           check=True)
            tar.append(perf_counter() - started)
    subprocess.run([*minidocker, "rm", "many"], check=True, capture_output=True)
    commit_ms, tar_ms = statistics.median(commit) * 1000, statistics.median(tar) * 1000
    return {"commit_ms": round(commit_ms, 1), "tar_ms": round(tar_ms, 1),
            "ratio": round(commit_ms / tar_ms, 2), "target": TARGET}


def shared_base(minidocker: list[str]) -> dict:
    for name in ("a", "b"):
        subprocess.run([*minidocker, "run", "--network", "none", "--name", name, "busybox", "sh", "-c",
                        f"head -c 1m /dev/urandom > /{name}"], check=True)
        subprocess.run([*minidocker, "commit", name, f"shared-{name}"], check=True,
                       capture_output=True)
    from minidocker.image.store import ImageStore

    store = ImageStore()
    images = [store.get(f"shared-{name}") for name in ("a", "b")]
    sum_of_images = sum(image.size for image in images)
    blobs_on_disk = sum(p.stat().st_size for p in (store.root / "blobs" / "sha256").iterdir())
    base = store.get("busybox").size
    for name in ("a", "b"):
        subprocess.run([*minidocker, "rm", name], check=True, capture_output=True)
        subprocess.run([*minidocker, "rmi", f"shared-{name}"], check=True, capture_output=True)
    return {"sum_of_image_sizes": sum_of_images, "blobs_on_disk": blobs_on_disk,
            "base_layer": base, "base_counted_once": blobs_on_disk < sum_of_images - base / 2}


def show(results: dict, files: int) -> None:
    c, s = results["commit_vs_tar"], results["shared_base"]
    verdict = "meets" if c["ratio"] <= TARGET else "misses"
    print(f"commit of {files} small files: {c['commit_ms']} ms; tar -czf of the same upper "
          f"dir: {c['tar_ms']} ms; ratio {c['ratio']}x ({verdict} the target <= {TARGET}x)")
    print(f"two images on one busybox base: their sizes add up to {s['sum_of_image_sizes']} "
          f"bytes; the store holds {s['blobs_on_disk']} bytes of blobs (base layer "
          f"{s['base_layer']} bytes, counted once: {s['base_counted_once']})")


if __name__ == "__main__":
    shutil.which("tar") or sys.exit("bench/images.py needs GNU tar")
    sys.exit(main())
