"""The registry benchmark runs end to end on small sizes and leaves nothing behind (no timing
asserted): skopeo and distribution against minidocker's server and client, in the
benchmark's own private namespaces, started from the test session's."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "registry.py"


def test_the_registry_benchmark_runs_once(tmp_path):
    for tool in ("skopeo", "docker-registry"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.skip(f"{tool} is not installed")
    report = tmp_path / "registry.json"
    result = subprocess.run([sys.executable, str(BENCH), "--size-mb", "2", "--blob-mb", "8",
                             "--json", str(report)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(BENCH.parents[1])})
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(report.read_text())
    assert set(results["ratios"]) == {"server_push", "server_pull", "client_push",
                                      "client_pull"}
    assert results["memory"]["blob_mb"] == 8 and results["memory"]["peak_rss_mb"] > 0
    assert list(tmp_path.iterdir()) == [report]
