"""Bad input gets one clear line and a non-zero exit, never a traceback."""

import os
import subprocess

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
