"""``run --explain``: the engine's own trace tells the kernel story of a start, in order, for
the default bridge, ``--network none``, ``--userns private`` and ``--privileged``."""

import pytest


def steps(md, *flags: str) -> list[str]:
    result = md("run", "--rm", "--explain", *flags, "busybox", "true")
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()


def in_order(lines: list[str], markers: list[str]) -> list[str]:
    """The markers not found in this order (each after the one before)."""
    missing, position = [], 0
    for marker in markers:
        found = next((i for i in range(position, len(lines)) if marker in lines[i]), None)
        if found is None:
            missing.append(marker)
        else:
            position = found + 1
    return missing


STORY = ["[3 cgroups]", "mkdir(/sys/fs/cgroup/", "unshare(CLONE_NEWPID)", "clone(SIGCHLD)",
         "cgroup.procs", "unshare(CLONE_NEWCGROUP)", "mount('overlay'", "pivot_root(",
         "sethostname(", "capset(", "execve('true')"]


def test_a_default_run_tells_the_whole_story_in_stage_order(md):
    lines = steps(md, "-p", "18099:80")  # a published port: its own DNAT rule, every time
    assert in_order(lines, STORY[:4] + ["ip link(add veth"] + STORY[5:]) == []
    assert in_order(lines, ["ip link(add veth", "ip addr(add ", "ip route(add default",
                            "--dport 18099 -j DNAT"]) == []
    assert any("prctl(PR_SET_SECCOMP" in line for line in lines)
    assert all(line.startswith("[") for line in lines)  # nothing else on stderr
    assert "unshare(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET)" in "".join(lines)


def test_no_network_means_no_veth(md):
    lines = steps(md, "--network", "none")
    assert in_order(lines, STORY) == []
    assert not any("ip link" in line or "iptables" in line for line in lines)


def test_a_user_namespace_comes_first_and_gets_its_maps(md):
    lines = steps(md, "--userns", "private", "--network", "none")
    assert in_order(lines, ["unshare(CLONE_NEWUSER)", "uid_map, '0 100000 65536'",
                            "unshare(CLONE_NEWPID)", "pivot_root(", "execve('true')"]) == []


def test_privileged_installs_no_seccomp_filter(md):
    lines = steps(md, "--privileged", "--network", "none")
    assert in_order(lines, STORY) == []
    assert not any("PR_SET_SECCOMP" in line for line in lines)


@pytest.mark.parametrize("flags", [["--explain"], ["--explain-time"]])
def test_explain_needs_a_foreground_run(md, flags):
    result = md("run", "-d", *flags, "busybox", "true")
    assert result.returncode == 125 and "drop -d" in result.stderr


def test_times_are_shown_with_explain_time(md):
    result = md("run", "--rm", "--explain-time", "--network", "none", "busybox", "true")
    assert result.returncode == 0
    assert all(" ms  [" in line for line in result.stderr.splitlines())
