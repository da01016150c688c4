"""Lab 08 (a container wired to the world by hand): the checker says TODO for each step of the
starter, passes the solution (through the API and the CLI), catches the classic mistakes with
a sentence that says what is missing, and leaves nothing in the lab host's network."""

import subprocess
from pathlib import Path

import pytest

from minidocker import labs
from minidocker.labs import lab08_networking
from tests.helpers import cli_check_passes, expect_first_failure, starter_report, with_mistake

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs/solutions/08-networking.py"
STEPS = len(lab08_networking.LAB.steps)


def network_state() -> dict[str, str]:
    def run(*argv):
        return subprocess.run(argv, capture_output=True, text=True).stdout
    return {"links": run("ip", "-o", "link"), "nat": run("iptables", "-w", "-t", "nat", "-S"),
            "forward": Path("/proc/sys/net/ipv4/ip_forward").read_text()}


@pytest.fixture(autouse=True)
def the_host_network_is_untouched():
    before = network_state()
    yield
    after = network_state()
    assert after["nat"] == before["nat"] and after["forward"] == before["forward"]
    assert [line.split(":")[1] for line in after["links"].splitlines()] == \
        [line.split(":")[1] for line in before["links"].splitlines()]


def test_the_starter_is_a_todo_at_every_step(capsys):
    starter_report(capsys, "08", STEPS, each_stub_speaks=True)


def test_the_solution_passes_every_step(capsys):
    assert labs.check("08", SOLUTION) == 0
    report = capsys.readouterr().out
    assert report.count("PASS") == STEPS and f"{STEPS} of {STEPS} steps pass" in report
    assert "you came from 203.0.113.1" in " ".join(report.split())
    print(report)


def test_the_cli_checks_the_solution(md):
    printed = cli_check_passes(md, "08", SOLUTION, STEPS)
    assert "Lab 08 — Networking: a container wired to the world by hand" in printed


# Each mistake: (text of the solution, what the mistake makes of it, a piece of the FAIL).
MISTAKES = {
    "the peer left on the host": (
        '    run("ip", "link", "set", CONTAINER_IF, "netns", str(pid))', "    return",
        "it is still on the host"),
    "the container's end left down": (
        '    in_container(pid, "ip", "link", "set", CONTAINER_IF, "up")\n', "",
        "eth0 (container) is DOWN"),
    "the address on the veth, not the bridge": (
        'run("ip", "addr", "add", f"{GATEWAY}/{PREFIX}", "dev", BRIDGE)',
        'run("ip", "addr", "add", f"{GATEWAY}/{PREFIX}", "dev", HOST_IF)', "not 10.0.0.1/24"),
    "no default route": (
        '    in_container(pid, "ip", "route", "add", "default", "via", GATEWAY)',
        "    pass", "no default route via 10.0.0.1"),
    "no ip_forward": ('        f.write("1")', '        f.write("0")', "ip_forward is 0"),
    "no MASQUERADE": ('"-j", "MASQUERADE")', '"-j", "ACCEPT")', "no MASQUERADE rule"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    right, wrong, complaint = MISTAKES[mistake]
    student = with_mistake(SOLUTION, right, wrong, tmp_path)
    expect_first_failure(labs.run("08", student), complaint)
