"""Helpers for the tests: run the real ``minidocker`` command and look at what it printed."""

import os
import subprocess
import sys

import pytest

MINIDOCKER = [sys.executable, "-m", "minidocker.cli"]
# Emulated VMs (tools/v2vm under TCG) run everything ~10x slower: their runs set a factor.
TIMEOUT_SCALE = float(os.environ.get("MINIDOCKER_TEST_TIMEOUT_SCALE", "1"))


def minidocker(*args: str, input: str | None = None, timeout: float = 30,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``minidocker ARGS...`` as a user would, capturing stdout and stderr."""
    return subprocess.run([*MINIDOCKER, *args], input=input, capture_output=True, text=True,
                          timeout=timeout * TIMEOUT_SCALE, env={**os.environ, **(env or {})})


@pytest.fixture
def md():
    return minidocker


class Containers:
    """The containers (and images) one test makes, by name; all removed at its end, so a test
    that fails half-way leaves nothing for the next one."""

    def __init__(self, test_name: str):
        self.prefix = test_name.replace("_", "-").replace("[", "-").strip("-]")[:40]
        self.names: list[str] = []
        self.images: list[str] = []

    def name(self, label: str = "c") -> str:
        """A fresh container name, removed at the end of the test."""
        name = f"{self.prefix}-{label}-{len(self.names)}"
        self.names.append(name)
        return name

    def run_d(self, *args: str, label: str = "c") -> str:
        """``run -d --name NAME ARGS...``; returns the name (the run must succeed)."""
        name = self.name(label)
        result = minidocker("run", "-d", "--name", name, *args)
        assert result.returncode == 0, result.stderr
        return name

    def remove_all(self) -> None:
        if self.names:
            minidocker("rm", "-f", "-v", *self.names)
        for image in self.images:
            minidocker("rmi", "-f", image)


@pytest.fixture
def containers(request):
    made = Containers(request.node.name)
    yield made
    made.remove_all()


@pytest.fixture
def nothing_left_behind(request):
    """What the test module's ``traces()`` shows of the host (mounts, scratch directories,
    cgroups ...) is the same after each of its tests as before. A module asks for it with
    ``pytestmark = pytest.mark.usefixtures("nothing_left_behind")``."""
    traces = request.module.traces
    before = traces()
    yield
    assert traces() == before
