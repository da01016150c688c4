"""The private state root of notebooks 05-07: a fresh store with busybox only, used by the
commands the notebook runs, and the previous one back afterwards."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from minidocker.errors import MinidockerError
from minidocker.image.store import ImageStore
from minidocker.viz.store import leave_state_root, own_state_root


def images() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "minidocker.cli", "images", "--format",
                          "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_a_notebook_gets_a_store_of_its_own_and_gives_it_back(md):
    assert md("tag", "busybox", "outside:1").returncode == 0  # not for the notebook to see
    before = os.environ["MINIDOCKER_ROOT"]
    root = own_state_root("test")
    try:
        assert os.environ["MINIDOCKER_ROOT"] == str(root) and root.name.startswith(
            "minidocker-notebook-test-")
        assert os.path.ismount(root)  # a tmpfs, like the test session's state root
        assert images() == ["busybox:latest"]  # the commands it runs use it too
        assert [i.tags for i in ImageStore().images()] == [["busybox:latest"]]
        with pytest.raises(MinidockerError, match="already has a state root"):
            own_state_root("again")
    finally:
        leave_state_root(root)
    assert os.environ["MINIDOCKER_ROOT"] == before and not root.exists()
    assert "outside:1" in images()
    md("rmi", "outside:1")


def test_leaving_is_refused_while_a_container_is_left(md):
    root = own_state_root("test")
    try:
        assert md("create", "--name", "left-behind", "--network", "none", "busybox",
                  "true").returncode == 0
        with pytest.raises(MinidockerError, match="containers are left"):
            leave_state_root(root)
        md("rm", "left-behind")
    finally:
        leave_state_root(root)
    assert not root.exists()


def test_a_killed_notebooks_lab_is_found_by_the_leak_check_and_taken_down():
    """A notebook kernel killed mid-way (as nbval kills it after a failing cell) leaves its
    state root mounted and its cluster lab running, in no process tree of ours: the leak check
    names them, and remove_abandoned_roots() (after each notebook) takes them down."""
    from conftest import leaks
    from minidocker.viz.store import mounted_roots, remove_abandoned_roots

    kernel = ("import os, signal, subprocess, sys\n"
              "from minidocker.viz.store import own_state_root\n"
              "own_state_root('killed')\n"
              "subprocess.run([sys.executable, '-m', 'minidocker.cli', 'cluster', 'up',"
              " '--nodes', '1', '--no-etcd'], check=True, capture_output=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", kernel], timeout=120)
    try:
        (root,) = mounted_roots()
        left = leaks()
        assert f"mount {root} (a notebook's state root)" in left
        assert any("a cluster lab's" in line and " daemon " in line for line in left), left
    finally:
        remove_abandoned_roots()
    assert mounted_roots() == [] and not root.exists()
    assert not any("cluster lab" in line for line in leaks())


def test_a_new_lab_host_leaves_the_notebooks_open_on_the_machine_alone():
    """A notebook open on the machine has its state root mounted there; a lab host made then
    (./kit test, ./kit notebooks) inherits a copy of that mount, and would take it for one of
    its own (the leak check would report it; remove_abandoned_roots() would run cluster down
    in it). forget_machine_roots() detaches the copy, and the machine keeps its root. Here
    this session's lab host is "the machine", and unshare(1) makes the new lab host."""
    from minidocker import kernel
    from minidocker.viz.store import PREFIX, mounted_roots

    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}open-"))
    kernel.mount("tmpfs", str(root), "tmpfs", 0, "mode=700")
    try:
        new_lab_host = ("from minidocker.viz.store import forget_machine_roots, mounted_roots\n"
                        "print(forget_machine_roots(), mounted_roots())\n")
        done = subprocess.run(["unshare", "--mount", "--propagation", "private",
                               sys.executable, "-c", new_lab_host],
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.strip() == f"[{root!r}] []", done.stderr
        assert root in mounted_roots()  # still the machine's
    finally:
        kernel.umount2(str(root), kernel.MNT_DETACH)
        os.rmdir(root)
