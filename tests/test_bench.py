"""The benchmark runs end to end and leaves nothing behind (one round, no timing asserted).

podman is left out: its first start alone takes seconds. runc runs for real, inside the test
session's private mount and network namespaces, with its state in the benchmark's workspace.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def test_bench_runs_once_and_cleans_up(tmp_path):
    report = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(BENCH), "--runs", "1", "--warmup", "0",
                             "--skip", "podman", "--json", str(report)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    results = json.loads(report.read_text())
    for key in ("python", "python-imports", "minidocker-cli", "minidocker-api"):
        assert len(results["results"][key]["samples_ms"]) == 1
    assert set(results["api_phases_ms"]) == {"create", "start", "wait"}
    assert results["skipped"]["podman"] == "--skip"
    if shutil.which("runc"):
        assert "runc" in results["results"], results["skipped"].get("runc")
        assert set(results["ratios"]) == {"cli_minidocker_over_runc", "api_minidocker_over_runc"}
    else:
        assert "runc" in results["skipped"]

    workspace = re.search(r"setting up in (\S+)", result.stdout).group(1)
    assert not Path(workspace).exists()


def test_bench_refuses_bad_arguments():
    result = subprocess.run([sys.executable, str(BENCH), "--runs", "0"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert "--runs must be at least 1" in result.stderr
