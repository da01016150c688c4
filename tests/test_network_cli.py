"""``minidocker network ...`` as a user types it."""

import json
import os
import subprocess
import sys

# Import the command group explicitly, so these tests do not depend on where cli/__init__.py
# registers it.
MINIDOCKER = [sys.executable, "-c", "import minidocker.cli.network; from minidocker.cli import "
              "main; main(prog_name='minidocker')"]


def md(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MINIDOCKER, *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ))


def test_network_create_ls_inspect_rm():
    created = md("network", "create", "--subnet", "10.77.0.0/24", "--internal",
                 "-o", "com.docker.network.bridge.enable_icc=false", "clinet")
    assert created.returncode == 0, created.stderr
    network_id = created.stdout.strip()
    try:
        listing = md("network", "ls").stdout.splitlines()
        assert listing[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
        names = [line.split()[1] for line in listing[1:]]
        assert names[:3] == ["bridge", "host", "none"] and "clinet" in names
        (shown,) = json.loads(md("network", "inspect", "clinet").stdout)
        assert shown["Id"] == network_id and shown["Internal"] is True
        assert shown["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]
        assert shown["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        formatted = md("network", "inspect", "-f", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}}"
                       "{{end}} {{.Internal}}", "clinet", "bridge")
        assert formatted.stdout.splitlines()[0] == "clinet 10.77.0.0/24 true"
        overlap = md("network", "create", "--subnet", "10.77.0.128/25", "other")
        assert overlap.returncode == 1
        assert "Pool overlaps with other one on this address space" in overlap.stderr
        assert "Traceback" not in overlap.stderr
    finally:
        assert md("network", "rm", "clinet").stdout == "clinet\n"
    missing = md("network", "inspect", "clinet")
    assert missing.returncode == 1 and "network clinet not found" in missing.stderr


def test_predefined_networks_cannot_be_removed():
    done = md("network", "rm", "bridge")
    assert done.returncode == 1 and "pre-defined network" in done.stderr


def test_network_prune_removes_unused_networks():
    assert md("network", "create", "unused").returncode == 0
    done = md("network", "prune", "-f")
    assert done.stdout == "Deleted Networks:\nunused\n\n"
