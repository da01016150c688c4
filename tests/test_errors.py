"""Bad input gets one clear line and a non-zero exit, never a traceback."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import MINIDOCKER


def one_clean_line(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "no error message"
    return result.stderr


def test_unknown_image(md):
    error = one_clean_line(md("run", "--rm", "nosuchimage", "true"))
    assert "Unable to find image 'nosuchimage:latest' locally" in error
    assert "busybox:latest" in error  # says what there is


@pytest.mark.parametrize("reference", ["BusyBox", "busybox:", "busybox@sha256:12", "a//b"])
def test_invalid_reference(md, reference):
    assert "invalid reference format" in one_clean_line(md("run", "--rm", reference, "true"))


def test_bad_flags_and_values(md):
    bad_flag = md("run", "--nope", "busybox")
    assert bad_flag.returncode == 125  # as docker run exits on an unknown flag
    assert "No such option '--nope'" in one_clean_line(bad_flag)
    assert "Missing argument 'IMAGE'" in one_clean_line(md("run"))
    assert "absolute path" in one_clean_line(md("run", "--rm", "-w", "rel", "busybox", "true"))
    assert "Invalid container name" in one_clean_line(md("run", "--name", "a b", "busybox"))


def test_missing_command_gives_127_with_a_message(md):
    result = md("run", "--rm", "busybox", "/no/such/binary")
    assert result.returncode == 127
    assert one_clean_line(result) == 'minidocker: exec: "/no/such/binary": no such file or directory\n'


def readable_by_anyone(path: Path) -> bool:
    """Can another user reach this checkout (every directory above it o+x, itself o+r)?"""
    return all(os.stat(p).st_mode & 0o005 == 0o005 for p in [path, *path.parents])


@pytest.mark.skipif(not readable_by_anyone(Path.cwd()), reason="this checkout is not readable "
                    "by other users (under /root?): the installed command's test covers it")
def test_not_root():
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             *MINIDOCKER, "run", "--rm", "busybox", "true"],
                            capture_output=True, text=True, cwd="/",
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    error = one_clean_line(result)
    assert "'run' needs root" in error and "sudo minidocker run" in error


def test_missing_kernel_privilege_is_reported_not_crashed():
    # In a user namespace, "root" may not create device nodes: the start fails cleanly.
    result = subprocess.run(["unshare", "--user", "--map-root-user", *MINIDOCKER, "run", "--rm",
                             "busybox", "true"], capture_output=True, text=True)
    assert result.returncode == 125
    error = one_clean_line(result)
    assert error.startswith("minidocker: ") and "minidocker doctor" in error


def test_ps_and_rm_errors(md):
    assert "No such container: ghost" in one_clean_line(md("rm", "ghost"))


def test_not_root_through_the_installed_command_wherever_the_checkout_lives():
    """``./kit setup`` installs ``minidocker`` as a wrapper: a user who cannot even read the
    venv (a checkout under /root) gets the same sentence, not a ModuleNotFoundError."""
    with tempfile.TemporaryDirectory(dir="/tmp") as place:
        place = Path(place)
        place.chmod(0o755)  # the wrapper itself is reachable, the venv is not
        locked = place / "locked"
        (locked / "venv" / "bin").mkdir(parents=True)
        locked.chmod(0o700)
        command = place / "minidocker"
        kit = Path(__file__).resolve().parents[1] / "kit"
        subprocess.run(["bash", str(kit), "install-command", str(command)], check=True,
                       env={**os.environ, "MINIDOCKER_VENV": str(locked / "venv")})
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 str(command), "run", "--rm", "busybox", "true"],
                                capture_output=True, text=True, cwd="/")
    assert result.returncode == 125
    error = one_clean_line(result)
    assert "'run' needs root" in error and "sudo minidocker run" in error
