"""HEALTHCHECK (stage 6, health.py): the monitor runs the probe inside the container and keeps
Docker's verdicts in ``State.Health``; ``ps`` shows them and filters by them."""

import json
import time

import pytest

from minidocker.container import health
from minidocker.errors import MinidockerError
from tests.conftest import TIMEOUT_SCALE, minidocker

FAST = ["--health-interval", "200ms", "--health-retries", "2"]


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def state_health(name: str) -> dict:
    return json.loads(ok(minidocker("inspect", "-f", "{{json .State.Health}}", name)))


def wait_for(name: str, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while time.monotonic() < deadline:
        seen = state_health(name)
        if seen and seen["Status"] == status:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"{name} never became {status}: {seen}")


# --- the configuration: Docker's rules --------------------------------------------------------

def test_the_request_overrides_the_image_field_by_field():
    image = {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 4}
    assert health.merge(image, None) == image
    assert health.merge(image, {"Test": ["NONE"]}) == {"Test": ["NONE"]}
    assert health.merge(image, {"Interval": 1_000_000_000}) == {
        "Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 4}
    assert health.merge(None, {"Interval": 1_000_000_000}) is None  # a timing, no test


def test_flags_as_the_docker_cli_reads_them():
    assert health.from_flags(None, None, None, None, None, None, False) is None
    assert health.from_flags("curl -f localhost", "1m30s", None, None, None, 5, False) == {
        "Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 90_000_000_000, "Retries": 5}
    assert health.from_flags(None, None, None, None, None, None, True) == {"Test": ["NONE"]}
    for args, message in [((None, None, None, None, None, None, True), None),
                          (("x", None, None, None, None, None, True), "conflicts"),
                          (("x", "-1s", None, None, None, None, False), "negative"),
                          (("x", "10us", None, None, None, None, False), "less than 1ms"),
                          (("x", "soon", None, None, None, None, False), "invalid duration"),
                          (("x", None, None, None, None, -1, False), "negative")]:
        if message is None:
            continue
        with pytest.raises(MinidockerError, match=message):
            health.from_flags(*args)


def test_the_probe_command_of_each_form():
    assert health.HealthConfig(("CMD-SHELL", "exit 1")).command == ["/bin/sh", "-c", "exit 1"]
    assert health.HealthConfig(("CMD", "true", "x")).command == ["true", "x"]
    assert not health.HealthConfig(("NONE",)).enabled


# --- on the real kernel -----------------------------------------------------------------------

def test_starting_unhealthy_healthy_and_the_ps_column(containers):
    waiting = containers.run_d("--health-cmd", "true", "busybox", "sleep", "60")
    assert "(health: starting)" in ok(minidocker("ps", "--filter", f"name={waiting}"))  # 30 s
    name = containers.run_d("--health-cmd", "echo probing; test -e /tmp/ok", *FAST,
                            "busybox", "sleep", "60")
    unhealthy = wait_for(name, "unhealthy")
    assert unhealthy["FailingStreak"] >= 2
    assert unhealthy["Log"][-1]["ExitCode"] == 1 and unhealthy["Log"][-1]["Output"] == "probing\n"
    assert "(unhealthy)" in ok(minidocker("ps", "--filter", f"name={name}"))
    ok(minidocker("exec", name, "touch", "/tmp/ok"))
    healthy = wait_for(name, "healthy")
    assert healthy["FailingStreak"] == 0
    listed = ok(minidocker("ps", "--filter", "health=healthy", "--format", "{{.Names}}"))
    assert name in listed.split()
    time.sleep(1.5)  # more probes than the log keeps
    assert len(state_health(name)["Log"]) == health.MAX_LOG_ENTRIES
    changes = ok(minidocker("events", "--since", "1m", "--until", "0s", "--filter",
                            f"container={name}", "--filter", "event=health_status",
                            "--format", "{{.Action}}")).split("\n")
    assert [c for c in changes if c] == ["health_status: unhealthy", "health_status: healthy"]


def test_a_probe_that_hangs_is_killed_at_its_timeout(containers):
    name = containers.run_d("--health-cmd", "sleep 30", "--health-timeout", "300ms",
                            "--health-interval", "200ms", "--health-retries", "1",
                            "busybox", "sleep", "60")
    seen = wait_for(name, "unhealthy")
    assert seen["Log"][0]["ExitCode"] == -1
    assert "exceeded timeout" in seen["Log"][0]["Output"]
    time.sleep(1.5)  # a few more probes, each killed at its timeout
    assert len(state_health(name)["Log"]) >= 3
    inside = ok(minidocker("exec", name, "ps", "-o", "args")).splitlines()
    assert inside.count("sleep 30") <= 1  # the probe running now; the killed ones are gone


def test_failures_in_the_start_period_do_not_count(containers):
    name = containers.run_d("--health-cmd", "false", "--health-start-period", "30s",
                            "--health-start-interval", "200ms", "--health-retries", "1",
                            "busybox", "sleep", "60")
    time.sleep(1.2)
    seen = state_health(name)
    assert seen["Status"] == "starting" and seen["FailingStreak"] == 0
    assert len(seen["Log"]) >= 2  # it did probe


def test_the_image_healthcheck_and_no_healthcheck(containers, tmp_path):
    image = f"{containers.prefix}-img"
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"true\"]\n")
    ok(minidocker("build", "-q", "-t", image, str(tmp_path)))
    containers.images.append(image)
    name = containers.run_d(image, "sleep", "60")
    wait_for(name, "healthy")
    plain = containers.run_d("--no-healthcheck", image, "sleep", "60")
    assert ok(minidocker("inspect", "-f", "{{json .Config.Healthcheck}}", plain)).strip() == \
        '{"Test":["NONE"]}'
    time.sleep(0.5)
    assert "Health" not in json.loads(ok(minidocker("inspect", "-f", "{{json .State}}", plain)))
    assert ok(minidocker("ps", "--filter", f"name={plain}", "--format", "{{.Status}}")).strip() \
        .endswith(("second", "seconds"))  # no "(healthy)"


def test_bad_health_flags_are_refused_before_anything_is_made():
    result = minidocker("run", "--rm", "--health-interval", "soon", "busybox", "true")
    assert result.returncode == 125 and "invalid duration" in result.stderr
    result = minidocker("ps", "--filter", "health=ok")
    assert result.returncode == 1 and "health=ok" in result.stderr


def test_the_docker_cli_through_the_daemon_sees_the_health(tmp_path):
    import shutil
    import subprocess

    from tests.daemon_helpers import DOCKER, running_daemon

    if not shutil.which(DOCKER):
        pytest.skip("needs the docker CLI")
    with running_daemon(tmp_path, "dmnhealth-") as daemon:
        def docker(*args):
            return subprocess.run([DOCKER, *args], capture_output=True, text=True,
                                  env=daemon.env, timeout=30)

        ok(docker("run", "-d", "--name", "dmnhealth-1", "--health-cmd", "true",
                  "--health-interval", "200ms", "busybox", "sleep", "60"))
        deadline = time.monotonic() + 10
        while "(healthy)" not in (listed := ok(docker("ps"))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "(healthy)" in listed
        assert ok(docker("inspect", "-f", "{{.State.Health.Status}} {{.Config.Healthcheck.Test}}",
                         "dmnhealth-1")).strip() == "healthy [CMD-SHELL true]"
        assert ok(docker("ps", "--filter", "health=healthy", "-q")).strip()
