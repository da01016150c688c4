"""Hostile and mistyped flags: each gets its own one-line message naming the flag and the bad
value, Docker's exit code, no traceback — and nothing is created (no container, network or
volume), because every flag is checked before anything is made."""

import pytest

LONG = "a" * 300


def run(*flags: str) -> list[str]:
    """``run --rm FLAGS busybox true``: a run whose flags alone must fail."""
    return ["run", "--rm", *flags, "busybox", "true"]


CASES = [  # (arguments, exit code, words the message must hold)
    (["run", "--rm", "-p", "1.2.3.999:80:80", "busybox", "true"], 125, "'1.2.3.999'"),
    (["run", "--rm", "-p", "99999:80", "busybox", "true"], 125, "invalid port range"),
    (["run", "--rm", "-p", "80/sctp", "busybox", "true"], 125, "invalid publish spec"),
    (["run", "--rm", "--device", "/does-not-exist", "busybox", "true"], 125, "/does-not-exist"),
    (["run", "--rm", "--device", "/dev/null:/etc/x", "busybox", "true"], 125, "under /dev"),
    (["run", "--rm", "-u", "99999999999", "busybox", "true"], 125, "99999999999"),
    (["run", "--rm", "-u", "0:99999999999", "busybox", "true"], 125, "largest uid or gid"),
    (["run", "--rm", "--hostname", LONG, "busybox", "true"], 125, "invalid hostname"),
    (["run", "--rm", "--hostname", "bad host/name", "busybox", "true"], 125, "'bad host/name'"),
    (["run", "--rm", "-e", "=bad", "busybox", "true"], 125, "invalid environment variable"),
    (["run", "--rm", "-m", "99999999999999999999999", "busybox", "true"], 125, "--memory"),
    (["run", "--rm", "-m", "lots", "busybox", "true"], 125, "'lots' for --memory"),
    (["run", "--rm", "--cpus", "-1", "busybox", "true"], 125, "--cpus"),
    (["run", "--rm", "--pids-limit", "x", "busybox", "true"], 125, "--pids-limit"),
    (["run", "--rm", "--dns", "notanip", "busybox", "true"], 125, "--dns 'notanip'"),
    (["run", "--rm", "--add-host", "nocolon", "busybox", "true"], 125, "nocolon"),
    (["run", "--rm", "--network", "container:", "busybox", "true"], 125, "container:"),
    (["run", "--rm", "--ipc", "weird", "busybox", "true"], 125, "--ipc mode 'weird'"),
    (["run", "--rm", "--uts", "container:x", "busybox", "true"], 125, "--uts mode"),
    (["run", "--rm", "--userns", "sideways", "busybox", "true"], 125, "--userns"),
    (["run", "--rm", "--restart", "sometimes", "busybox", "true"], 125, "restart policy"),
    (["run", "--rm", "--log-opt", "colour=red", "busybox", "true"], 125, "colour"),
    (["run", "--rm", "-w", "relative", "busybox", "true"], 125, "absolute"),
    (["run", "--rm", "--name", "bad name", "busybox", "true"], 125, "bad name"),
    (["run", "--rm", "--security-opt", "seccomp=/nope.json", "busybox", "true"], 125,
     "/nope.json"),
    (["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"], 125, "NOT_A_CAP"),
    (["create", "-v", "a:b:c:d", "busybox", "true"], 125, "invalid volume specification"),
    (["network", "create", "bad name!"], 1, "'bad name!'"),
    (["network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.0", "gw"], 1,
     "10.77.0.0"),
    (["network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.78.0.1", "gw"], 1,
     "not in subnet"),
    (["network", "create", "--subnet", "10.77.0.1/24", "gw"], 1, "invalid subnet"),
    (["volume", "create", LONG], 1, "too long"),
    (["volume", "create", "bad/name"], 1, "invalid characters"),
    (["inspect", "-f", "{{", "busybox"], 64, "template"),
]
REFUSED_RUN_FLAGS = {  # run's flags (split on spaces) -> words of the message; exit code 125
    # the process's own knobs: rlimits, sysctls, /dev/shm, OOM score
    "--ulimit nofiles=10": "unknown ulimit type",
    "--ulimit nofile=20:10": "soft limit",
    "--ulimit nofile=lots": "nofile=lots",
    "--sysctl noequals": "'noequals'",
    "--sysctl vm.swappiness=0": "not namespaced",
    "--shm-size big": "--shm-size",
    "--shm-size 0": "above 0",
    "--oom-score-adj 2000": "[-1000, 1000]",
    "--oom-score-adj x": "--oom-score-adj",
    # the rest of the cgroup knobs
    "-m 32m --memory-reservation 64m": "memory reservation",
    "--memory-reservation 1k": "6MB",
    "--memory-swappiness 101": "--memory-swappiness",
    "--blkio-weight 5": "10 to 1000",
    "--device-read-bps /dev/null:1mb": "not a block device",
    "--device-write-bps vda": "DEVICE:RATE",
    "--cpuset-mems 63": "memory nodes",
    "--cpuset-mems x": "--cpuset-mems",
    "--cgroupns container:x": "--cgroupns mode",
    "--cgroup-parent ../escape": "--cgroup-parent",
    # logging, images, names and addresses
    "--log-driver syslog": "--log-driver",
    "--log-driver none --log-opt max-size=1m": "drop --log-opt",
    "--pull sometimes": "--pull",
    "--platform windows/amd64": "--platform",
    "--domainname bad_domain": "--domainname 'bad_domain'",
    "--uts host --domainname x.org": "--domainname",
    "--ip 10.0.0.300": "--ip",
    "--ip 172.17.0.9": "user specified IP address is supported on user defined networks only",
    "--mac-address zz:42": "--mac-address",
    "--mac-address 01:00:5e:00:00:01": "unicast",
    "--label-file /nope": "--label-file",
}
CASES += [(run(*flags.split()), 125, words) for flags, words in REFUSED_RUN_FLAGS.items()]


def inventory(md) -> tuple[str, str, str]:
    return (md("ps", "-aq").stdout, md("network", "ls", "-q").stdout,
            md("volume", "ls", "-q").stdout)


@pytest.mark.parametrize("args, code, words", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_a_bad_flag_gets_its_own_clear_message_and_makes_nothing(md, args, code, words):
    before = inventory(md)
    result = md(*args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert inventory(md) == before
