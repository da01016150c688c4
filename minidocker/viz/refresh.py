"""Re-execute notebooks in place, so that their committed outputs are what a fresh run prints.

    python -m minidocker.viz.refresh notebooks/*.ipynb      (``sudo ./kit notebooks``)

CI checks the notebooks with strict nbval inside the test session's *lab host*: a private mount
and network namespace with a throwaway tmpfs state root holding the busybox image (see the
repository's ``conftest.py``). To store outputs that nbval will see again, this command runs
the kernels in the same kind of lab host: it calls that same ``conftest.py``'s
``enter_lab_host()``, and its ``leaks()`` afterwards, so a notebook that leaves a process or a
mount behind is refused here too; what a failing notebook left (its state root, a cluster lab)
is taken down at once (``viz.store.remove_abandoned_roots``). Each notebook's kernel starts in
the notebook's directory, as under nbval.
Specs: nbformat (the .ipynb format), nbval (how CI compares outputs). Man pages:
mount_namespaces(7), network_namespaces(7) (the lab host).
Used by: ``sudo ./kit notebooks``, for every notebook in notebooks/.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from minidocker import kernel

KERNEL_NAME = "python3"
CELL_TIMEOUT = 300  # seconds, as ./kit test gives nbval


def load_conftest(repo: Path):
    """The repository's root conftest.py, imported as a plain module."""
    path = repo / "conftest.py"
    if not path.exists():
        sys.exit(f"refresh: {path} is missing: run this from a minidocker source checkout "
                 "(the notebooks are refreshed in the same lab host as the tests)")
    spec = importlib.util.spec_from_file_location("minidocker_lab_host", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def execute(path: Path) -> float:
    """Run every cell of one notebook in a fresh kernel and write it back; return seconds."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    client = NotebookClient(notebook, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT,
                            record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(stderr=subprocess.DEVNULL)  # as nbval does: the kernel's own log is noise
    nbformat.write(notebook, path)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minidocker.viz.refresh",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files to refresh")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("refresh: the notebooks make containers, which needs root: "
                 "run 'sudo ./kit notebooks'")
    notebooks = [p.resolve() for p in args.notebooks]
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        sys.exit(f"refresh: no such notebook: {', '.join(missing)}")
    lab_host = load_conftest(Path(__file__).resolve().parents[2])
    lab_host.enter_lab_host()  # must come first: unshare(CLONE_NEWNS) needs a single thread
    from minidocker.viz.store import remove_abandoned_roots

    root = os.environ["MINIDOCKER_ROOT"]
    failed = 0
    try:
        for path in notebooks:
            print(f"refresh: {path.name} ...", end=" ", flush=True)
            try:
                print(f"{execute(path):.1f} s", flush=True)
            except Exception as exc:  # a failing cell: report it, leave the file as it was
                failed += 1
                print(f"FAILED\n{exc}", flush=True)
                remove_abandoned_roots()  # its lab would outlive this lab host
        left = lab_host.leaks()
        if left:
            failed += 1
            print("refresh: the notebooks leaked:\n  " + "\n  ".join(left))
    finally:
        kernel.umount2(root, kernel.MNT_DETACH)
        os.rmdir(root)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
