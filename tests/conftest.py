"""Helpers for the tests: run the real ``minidocker`` command and look at what it printed."""

import os
import subprocess
import sys

import pytest

MINIDOCKER = [sys.executable, "-m", "minidocker.cli"]


def minidocker(*args: str, input: str | None = None, timeout: float = 30,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``minidocker ARGS...`` as a user would, capturing stdout and stderr."""
    return subprocess.run([*MINIDOCKER, *args], input=input, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def md():
    return minidocker
