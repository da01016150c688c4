"""The classroom VM, booted: the Vagrantfile is valid, and a Debian 12 guest made like a Vagrant
box, provisioned with exactly ``vagrant/provision.sh``, passes the checks a student's first
minutes need (tools/v2vm/classroom-build.sh, then ``classroom-run.sh short``: JupyterLab on the
forwarded port, ``vagrant ssh``'s login environment, ``minidocker run`` through sudo, and
test_run, test_cgroups and notebook 00 inside, on cgroup v2).

The VM check takes about an hour under TCG (no usable KVM on the kit's build machine), so it
runs only on request: ``./kit test --vm`` (or ``MINIDOCKER_VM_TEST=1``). Its build downloads
(Debian's mirror, PyPI) through the machine's network (``MINIDOCKER_MACHINE_NET``, the fd
conftest keeps); qemu runs in the test session's private network namespace, so its forwards are
on that namespace's loopback and the host's network never sees them. Everything it builds is in
a temporary directory removed at the end, unless ``MINIDOCKER_VM_WORK`` names a directory to
keep (and reuse: the rootfs, debs and wheels are fetched once).
"""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
V2VM = REPO / "tools" / "v2vm"


def vagrant(*args: str, box: str | None, home: Path) -> subprocess.CompletedProcess:
    """``vagrant ARGS`` on the repo's Vagrantfile, with its state in ``home`` (not the repo)."""
    env = {**os.environ, "VAGRANT_HOME": str(home / "vagrant.d"),
           "VAGRANT_DOTFILE_PATH": str(home / "dot-vagrant")}
    env.pop("MINIDOCKER_BOX", None)
    if box:
        env["MINIDOCKER_BOX"] = box
    return subprocess.run(["vagrant", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="needs Debian's vagrant package")
def test_vagrantfile_validates_for_both_boxes(tmp_path):
    for box in (None, "debian/bookworm64"):  # None: the default, bento/ubuntu-24.04
        result = vagrant("validate", "--ignore-provider", box=box, home=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "validated successfully" in result.stdout
    result = vagrant("validate", "--ignore-provider", box="ubuntu/xenial64", home=tmp_path)
    assert result.returncode != 0
    assert "MINIDOCKER_BOX=ubuntu/xenial64 is not a box this kit is made for" in result.stderr


def stop_qemu(work: Path) -> None:
    """The guest's qemu, if a timeout left it running (the scripts stop it themselves)."""
    try:
        os.kill(int((work / "qemu.pid").read_text()), signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.skipif(not os.environ.get("MINIDOCKER_VM_TEST"),
                    reason="the classroom VM takes about an hour: ./kit test --vm")
def test_classroom_vm_provisions_and_passes_the_short_check():
    kept = os.environ.get("MINIDOCKER_VM_WORK")
    work = Path(kept or tempfile.mkdtemp(prefix="minidocker-classroom-", dir="/var/tmp"))
    env = {**os.environ, "V2VM_WORK": str(work)}
    machine_net = os.environ.get("MINIDOCKER_MACHINE_NET")
    online = ["nsenter", f"--net={machine_net}"] if machine_net else []
    try:
        build = subprocess.run([*online, "bash", V2VM / "classroom-build.sh"], env=env,
                               capture_output=True, text=True, timeout=2400)
        assert build.returncode == 0, build.stderr[-3000:]
        run = subprocess.run(["bash", V2VM / "classroom-run.sh", "short"], env=env,
                             capture_output=True, text=True, timeout=5400)
        summary = (work / "results" / "classroom-short.txt").read_text()
        print(summary)
        assert run.returncode == 0, summary + run.stderr[-3000:]
        assert "classroom VM: every check passed" in summary
    finally:
        stop_qemu(work)
        if not kept:
            subprocess.run(["bash", V2VM / "clean.sh"], env=env, capture_output=True, timeout=120)
