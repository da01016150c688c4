"""A real base image: Debian's minimal root fs, made by debootstrap, imported and run.

The seeds' recipe for a base image is ``debootstrap`` + ``tar`` + ``docker import``. Such a tar
holds what a toy image never does: device nodes under ``/dev`` (skipped by extract_layer, see
minidocker/image/layers.py), setuid ``su``, hundreds of hard links and a dpkg database. The
image must import and work as it does under Docker, with and without a user namespace.

The tar is built once from Debian's mirror (about a minute) and cached in
``/var/cache/minidocker-tests`` (``MINIDOCKER_TEST_CACHE``); later runs only import it. The
build runs debootstrap in a mount namespace of its own (it mounts /proc in its target) and
in the machine's network namespace, which the session kept (conftest.py), since the tests'
own has no way out. Without debootstrap or the mirror, the tests skip and say why.
"""

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import minidocker

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
IMAGE = "debian:minbase"
USERNS = ("--userns", "private")

pytestmark = pytest.mark.timeout(900)  # the first run builds the tar


def cache_dir() -> Path:
    return Path(os.environ.get("MINIDOCKER_TEST_CACHE", "/var/cache/minidocker-tests"))


@pytest.fixture(scope="module")
def debian_tar() -> Path:
    """The cached tar of a Debian minbase root fs, built under a lock if it is missing."""
    tar = cache_dir() / f"debian-{SUITE}-minbase.tar"
    tar.parent.mkdir(parents=True, exist_ok=True)
    with open(tar.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run waits for this build, then reuses it
        if not tar.exists():
            build_debian_tar(tar)
    return tar


def build_debian_tar(tar: Path) -> None:
    """debootstrap into a scratch directory next to the cache, then tar it with numeric owners
    and rename it into place (a killed build leaves no half tar under the final name)."""
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed: 'sudo ./kit setup' installs it")
    machine_net = os.environ.get("MINIDOCKER_MACHINE_NET")
    in_machine_net = ["nsenter", f"--net={machine_net}"] if machine_net else []
    probe = subprocess.run([*in_machine_net, "wget", "-q", "--spider", "--timeout=15",
                            f"{MIRROR}/dists/{SUITE}/Release"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"Debian's mirror {MIRROR} cannot be reached from this machine, so the "
                    "Debian root fs cannot be built")
    scratch = Path(tempfile.mkdtemp(dir=tar.parent, prefix=".build-"))
    try:
        built = subprocess.run([*in_machine_net, "unshare", "--mount", "--propagation",
                                "private", "debootstrap", "--variant=minbase", SUITE,
                                scratch / "root", MIRROR], capture_output=True, text=True)
        assert built.returncode == 0, f"debootstrap failed:\n{built.stdout[-3000:]}{built.stderr}"
        subprocess.run(["tar", "--numeric-owner", "-C", scratch / "root", "-cf",
                        scratch / "root.tar", "."], check=True)
        os.rename(scratch / "root.tar", tar)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def debian(debian_tar):
    """``minidocker import`` of the tar: it works, and says which device nodes it skipped."""
    imported = minidocker("import", str(debian_tar), IMAGE, timeout=300)
    assert imported.returncode == 0, imported.stderr
    assert re.search(r"skipped \d+ device nodes under /dev in a layer", imported.stderr)
    yield IMAGE
    minidocker("rmi", "-f", IMAGE)


@pytest.mark.parametrize("flags", [(), USERNS], ids=["root", "userns"])
def test_dpkg_lists_the_installed_packages(debian, flags):
    listed = minidocker("run", "--rm", *flags, debian, "dpkg", "-l")
    assert listed.returncode == 0, listed.stderr
    for package in ("apt", "dpkg", "base-files", "login", "passwd"):
        assert re.search(rf"^ii +{package}(:amd64)? ", listed.stdout, re.MULTILINE), package


@pytest.mark.parametrize("flags", [(), USERNS], ids=["root", "userns"])
def test_apt_get_runs(debian, flags):
    version = minidocker("run", "--rm", *flags, debian, "apt-get", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("apt ")


@pytest.mark.parametrize("flags", [(), USERNS], ids=["root", "userns"])
def test_useradd_then_su_to_the_new_user(debian, flags):
    script = "useradd -m ada && su ada -c 'id; echo $HOME; touch ~/mine'"
    result = minidocker("run", "--rm", *flags, debian, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["uid=1000(ada) gid=1000(ada) groups=1000(ada)",
                                          "/home/ada"]


@pytest.mark.parametrize("flags", [(), USERNS], ids=["root", "userns"])
def test_dev_is_the_containers_own(debian, flags):
    """The image's nodes were skipped; /dev has the standard ones, and they work."""
    script = "head -c 4 /dev/zero | od -An -tx1; echo ok > /dev/null; ls /dev"
    result = minidocker("run", "--rm", *flags, debian, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[:4] == ["00"] * 4
    assert {"null", "zero", "full", "random", "urandom", "tty"} <= set(words[4:])
