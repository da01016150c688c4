"""The notebooks that read the store print what they stored on a store that is not empty.

A student runs the README's tour first: the store then holds another image (``mine:1``,
committed from the stopped container ``c1``), a volume (``data``) and a network. Notebooks
05-07 work in a state root of their own (``minidocker/viz/store.py``); 00 and 09 keep to their
own containers; 08 works in the real store (it shows the machine's bridges) and prunes the
networks nobody uses first. This test fills a store like that and runs those notebooks on it
under strict nbval, as CI runs them on an empty one.

It runs the notebooks in a pytest of their own, inside a fresh mount and network namespace
(``unshare``), so that the filled store (a tmpfs mounted there) and every bridge and rule the
notebooks make vanish with it; ``MINIDOCKER_LAB_HOST`` set to that pytest's own PID tells the
root ``conftest.py`` that it is already in its lab host, so it keeps this store.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT_SCALE

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["00-tour", "05-images", "06-container-lifecycle", "07-volumes", "08-networking",
             "09-security"]

# Run by sh inside the new namespaces: fill the store as the README's tour leaves it, then
# become (exec, same PID) the pytest that runs the notebooks.
FILL_AND_RUN = r"""
set -e
ip link set lo up
mount -t tmpfs -o mode=711 tmpfs "$MINIDOCKER_ROOT"
md() { "$PYTHON" -m minidocker.cli "$@"; }
md setup > /dev/null
md run --name c1 busybox sh -c 'echo hi > /new; rm /bin/true'
md commit c1 mine:1 > /dev/null
md run --rm -v data:/data busybox sh -c 'date > /data/when'
md network create tournet > /dev/null
md images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' '
md ps -a --format '{{.Names}}:{{.Status}}' | cut -d' ' -f1 | tr '\n' ' '
md volume ls --format '{{.Name}}' | tr '\n' ' '
md network ls --format '{{.Name}}' | tr '\n' ' '
echo
export MINIDOCKER_LAB_HOST=$$
exec "$PYTHON" -m pytest "$@"
"""


@pytest.mark.slow
def test_the_notebooks_pass_strict_nbval_on_a_store_after_the_tour():
    root = tempfile.mkdtemp(prefix="minidocker-test-")  # the name sanitize.cfg knows
    env = {**os.environ, "MINIDOCKER_ROOT": root, "PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    notebooks = [f"notebooks/{name}.ipynb" for name in NOTEBOOKS]
    try:
        result = subprocess.run(
            ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", FILL_AND_RUN,
             "sh", *notebooks, "--nbval", "--nbval-sanitize-with", "notebooks/sanitize.cfg",
             "--nbval-cell-timeout", str(int(300 * TIMEOUT_SCALE)), "-q", "-p", "no:cacheprovider"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900 * TIMEOUT_SCALE)
    finally:
        os.rmdir(root)  # its tmpfs went with the mount namespace
    store = result.stdout.splitlines()[0] if result.stdout else ""
    assert "mine:1" in store and "c1:Exited" in store and "data" in store and "tournet" in store, \
        result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
