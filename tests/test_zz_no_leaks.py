"""After containers ran (every test file before this one), nothing is left behind: no process,
no mount under the state root, no container namespace still held. Runs last, by its name; the
session-end hook in conftest.py checks again after the notebooks."""

import os
import time

from conftest import leaks
from minidocker import namespaces
from minidocker.container.monitor import HOST_IDLE


def test_nothing_leaked_after_the_engine_tests(md):
    md("run", "--rm", "busybox", "sh", "-c", "sleep 0.2 & sleep 0.1 &")  # stragglers die too
    deadline = time.monotonic() + 3 * HOST_IDLE + 5  # a monitor host lingers after its last
    while leaks() and time.monotonic() < deadline:  # container (a daemon test just before)
        time.sleep(0.2)
    assert leaks() == []


def test_no_process_holds_a_foreign_namespace():
    ours = namespaces.namespaces_of("self")
    foreign = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            theirs = namespaces.namespaces_of(pid)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        if theirs["mnt"] != ours["mnt"] and theirs["net"] == ours["net"]:
            foreign.append(pid)  # a process in our lab host's network but another mount ns
    assert foreign == []


def test_no_overlay_was_made_in_the_session_namespace():
    """The swarm's overlays live in the lab's node namespaces only (test_overlay.py): no VXLAN
    device and no routing-mesh chain here."""
    import subprocess

    vxlans = subprocess.run(["ip", "-o", "link", "show", "type", "vxlan"], capture_output=True,
                            text=True).stdout
    assert vxlans == ""
    assert subprocess.run(["iptables", "-t", "nat", "-S", "MD-MESH"],
                          capture_output=True).returncode != 0


def test_no_volume_filesystem_stays_mounted():
    """A tmpfs volume (``volume create -o type=tmpfs``) is unmounted when its last container
    stops: after the session none is left on any volume's _data."""
    volumes = os.path.realpath(os.environ["MINIDOCKER_ROOT"]) + "/volumes/"
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if line.split()[4].startswith(volumes)] == []
