"""A detached monitor lets the CLI that launched it finish before it execs the watcher
(monitor.let_launcher_finish: a pidfd polled, ``LAUNCHER_WAIT`` at most)."""

import subprocess

from minidocker.container import monitor


def test_it_returns_once_the_launcher_has_exited(monkeypatch):
    monkeypatch.setattr(monitor, "LAUNCHER_WAIT", 60.0)  # only the launcher's exit ends it
    launcher = subprocess.Popen(["sleep", "0.2"])
    monitor.let_launcher_finish(monitor.pidfd_of(launcher.pid))
    assert launcher.poll() == 0  # it had exited (a zombie until now): not a timeout


def test_a_launcher_still_running_delays_it_only_a_moment(monkeypatch):
    monkeypatch.setattr(monitor, "LAUNCHER_WAIT", 0.05)
    with subprocess.Popen(["sleep", "60"]) as launcher:
        monitor.let_launcher_finish(monitor.pidfd_of(launcher.pid))
        assert launcher.poll() is None
        launcher.kill()


def test_a_launcher_gone_already_has_no_pidfd():
    launcher = subprocess.Popen(["true"])
    launcher.wait()
    assert monitor.pidfd_of(launcher.pid) is None  # reaped: nothing to wait for
