"""bench/compose.py runs end to end for minidocker compose (one round, no timing asserted)
and leaves no container, network or cgroup behind."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "compose.py"


def test_the_compose_benchmark_runs_and_reports(tmp_path):
    report = tmp_path / "compose.json"
    result = subprocess.run([sys.executable, str(BENCH), "--runs", "1", "--warmup", "0",
                             "--pause", "0", "--skip", "daemon", "--skip", "podman",
                             "--skip", "dockerd", "--json", str(report)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert set(data["results"]) == {"minidocker"}
    assert data["results"]["minidocker"]["up"]["median_ms"] > 0
    assert data["skipped"] == {"daemon": "--skip", "podman": "--skip", "dockerd": "--skip"}
