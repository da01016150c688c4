"""A kill -9 in the middle of commit, load or import leaves a store that still works: it lists,
runs and removes images. Every store write is temp file + rename, so a killed writer leaves at
most some unnamed temp files, which the next garbage collection sweeps away."""

import os
import signal
import subprocess
import time

import pytest

from .conftest import MINIDOCKER


@pytest.fixture(scope="module")
def big_container(md_module):
    md_module("run", "--name", "big", "busybox", "sh", "-c",
              "head -c 40m /dev/urandom > /big; mkdir /many; "
              "for i in $(seq 1 300); do echo $i > /many/$i; done")
    yield "big"
    md_module("rm", "big")


@pytest.fixture(scope="module")
def md_module():
    from .conftest import minidocker

    return minidocker


def killed_after(delay: float, *args: str) -> None:
    process = subprocess.Popen([*MINIDOCKER, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_store_works(md) -> None:
    listing = md("images")
    assert listing.returncode == 0 and "busybox" in listing.stdout
    assert md("run", "--rm", "busybox", "echo", "alive").stdout == "alive\n"
    for line in listing.stdout.splitlines()[1:]:
        repository, tag, image_id = line.split()[:3]
        if repository != "busybox":
            name = image_id if repository == "<none>" else f"{repository}:{tag}"
            assert md("rmi", "-f", name).returncode == 0, name
    md("image", "prune", "-f")
    assert md("images").stdout.count("\n") == 2  # the header and busybox


@pytest.mark.parametrize("delay", [0.15, 0.4, 0.8])
def test_kill_during_commit(md, big_container, delay):
    killed_after(delay, "commit", big_container, f"crash:{int(delay * 100)}")
    assert_store_works(md)


@pytest.mark.parametrize("delay", [0.15, 0.4, 0.8])
def test_kill_during_load_and_import(md, big_container, tmp_path, delay):
    archive, flat = tmp_path / "big.tar", tmp_path / "flat.tar"
    md("commit", big_container, "tosave:1")
    md("save", "-o", str(archive), "tosave:1")
    md("export", "-o", str(flat), big_container)
    md("rmi", "tosave:1")
    killed_after(delay, "load", "-i", str(archive))
    assert_store_works(md)
    killed_after(delay, "import", str(flat), "imported:1")
    assert_store_works(md)
    assert not [p for p in os.listdir(os.environ["MINIDOCKER_ROOT"] + "/oci/blobs/sha256")
                if p.startswith(".tmp-")]  # swept by the prune
