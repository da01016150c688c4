"""The benchmark runs end to end and leaves nothing behind (one round, no timing asserted).

podman is left out (its first start alone takes seconds), but for bench/network.py's rounds
against podman on its bridge, which run alone and short. runc runs for real, inside the test
session's private mount and network namespaces, with its state in the benchmark's workspace.
The cgroup cases (minidocker and runc with limits, a cgroup's work alone) run too, and must
leave no cgroup behind (``minidocker/...``, or podman's ``minidocker-bench-*`` parent).
"""

import contextlib
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minidocker.viz.engines import DOCKER

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def minidocker_cgroups() -> set[str]:
    """The cgroups the benchmark may make, in every hierarchy: ``minidocker`` (its containers)
    and ``minidocker-bench-*`` (podman's parent), and every cgroup below them."""
    with open("/proc/self/mounts") as f:
        hierarchies = {line.split()[1] for line in f if line.split()[2] in ("cgroup", "cgroup2")}
    found = set()
    for hierarchy in hierarchies:
        tops = glob.glob(f"{hierarchy}/minidocker") + glob.glob(f"{hierarchy}/minidocker-bench-*")
        for top in tops:
            for directory, _subdirs, _files in os.walk(top):  # gone meanwhile: skipped
                found.add(directory)
    return found


def new_cgroups(before: set[str], grace: float = 10.0) -> set[str]:
    """The cgroups that were not there before and stay. Containers of other programs on this
    machine come and go; a cgroup the benchmark left behind stays."""
    deadline = time.monotonic() + grace
    while (left := minidocker_cgroups() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_bench_runs_once_and_cleans_up(tmp_path):
    report = tmp_path / "bench.json"
    before = minidocker_cgroups()
    result = subprocess.run([sys.executable, str(BENCH), "--runs", "1", "--warmup", "0",
                             "--skip", "podman", "--json", str(report)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert new_cgroups(before) == set()

    results = json.loads(report.read_text())
    for key in ("python", "python-imports", "minidocker-cli", "minidocker-cli-limits",
                "minidocker-api", "minidocker-api-limits", "minidocker-cgroup"):
        assert len(results["results"][key]["samples_ms"]) == 1
    assert set(results["api_phases_ms"]) == {"create", "start", "wait"}
    assert set(results["cgroup_phases_ms"]) == {"create", "limits", "join", "destroy"}
    cost = results["cgroup_cost"]
    assert {"limits_api", "limits_cli", "cgroup_create_limits", "cgroup_limits", "cgroup_join",
            "cgroup_destroy", "cgroup_all"} <= set(cost)
    assert cost["cgroup_all"]["run"] == "minidocker-api-limits"
    assert results["skipped"]["podman"] == "--skip"
    if shutil.which("runc"):
        assert "runc" in results["results"], results["skipped"].get("runc")
        assert "runc-limits" in results["results"], results["skipped"].get("runc-limits")
        assert "limits_runc" in cost
        assert len(results["results"]["minidocker-cli-runc"]["samples_ms"]) == 1
        assert set(results["ratios"]) == {"cli_minidocker_over_runc", "api_minidocker_over_runc",
                                          "api_minidocker_limits_over_runc_limits",
                                          "cli_runtime_runc_over_own_runtime",
                                          "cli_runtime_runc_over_runc_run"}
    else:
        assert "runc" in results["skipped"]

    assert "What cgroups add to a run" in result.stdout
    workspace = re.search(r"setting up in (\S+)", result.stdout).group(1)
    assert not Path(workspace).exists()


def test_cgroup_cost_pairs_the_rounds():
    """A limit's cost is the median of per-round differences, over the median run without."""
    sys.path.insert(0, str(BENCH.parent))  # run.py imports peers.py from its directory
    try:
        loader = importlib.util.spec_from_file_location("minidocker_bench_run", BENCH)
        bench = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(bench)
    finally:
        sys.path.remove(str(BENCH.parent))
    samples = {"minidocker-api": [0.010, 0.020, 0.030],
               "minidocker-api-limits": [0.011, 0.022, 0.033],
               "minidocker-cgroup": [0.005] * 3}
    results = {key: {"median_ms": sorted(values)[1] * 1000} for key, values in samples.items()}
    steps = {"create": [0.001] * 3, "limits": [0.0005] * 3, "join": [0.002] * 3,
             "destroy": [0.0005] * 3}
    cost = bench.compute_cgroup_cost(results, samples, {"minidocker-cgroup": steps})
    assert cost["limits_api"]["added_ms"] == 2.0  # median of +1, +2, +3 ms
    assert cost["limits_api"]["fraction"] == 0.1  # of the 20 ms run without limits
    assert cost["cgroup_create_limits"]["added_ms"] == 1.5
    assert cost["cgroup_all"]["added_ms"] == 4.0
    assert cost["cgroup_all"]["fraction"] == 0.182  # of the 22 ms run with limits
    assert "limits_cli" not in cost  # a pair that did not run is left out


def test_bench_refuses_bad_arguments():
    result = subprocess.run([sys.executable, str(BENCH), "--runs", "0"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert "--runs must be at least 1" in result.stderr


def test_image_bench_runs_once(tmp_path):
    """bench/images.py end to end, small: it must run and report, not be fast."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "images.json"
    script = Path(__file__).resolve().parents[1] / "bench" / "images.py"
    result = subprocess.run([sys.executable, str(script), "--files", "200", "--runs", "1",
                             "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["shared_base"]["base_counted_once"] is True
    assert figures["commit_vs_tar"]["commit_ms"] > 0


def test_layer_bench_runs_once(tmp_path):
    """bench/layers.py end to end on a tiny dataset: every pair is timed and has a ratio."""
    out = tmp_path / "layers.json"
    script = Path(__file__).resolve().parents[1] / "bench" / "layers.py"
    result = subprocess.run([sys.executable, str(script), "--files", "50", "--only", "small",
                             "--runs", "1", "--json", str(out)], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    datasets = json.loads(out.read_text())["datasets"]
    assert set(datasets) == {"small"}
    assert all(case["ratio"] > 0 for cases in datasets.values() for case in cases.values())


def test_lifecycle_bench_runs_small_and_cleans_up(tmp_path):
    """bench/lifecycle.py end to end with 2 detached containers and no podman: the figures
    are there (not judged), and nothing is left — no monitor, no cgroup, no workspace."""
    script = BENCH.parent / "lifecycle.py"
    report = tmp_path / "lifecycle.json"
    before = minidocker_cgroups()
    result = subprocess.run([sys.executable, str(script), "-n", "2", "--skip", "podman",
                             "--json", str(report)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert new_cgroups(before) == set()
    workspace = re.search(r"setting up in (\S+)", result.stdout).group(1)
    assert not Path(workspace).exists()
    for entry in os.listdir("/proc"):  # every monitor of the benchmark is gone
        with contextlib.suppress(OSError):
            assert workspace.encode() not in Path(f"/proc/{entry}/environ").read_bytes()

    figures = json.loads(report.read_text())
    assert figures["containers"] == 2
    assert figures["skipped"] == {"podman": "--skip"} and "podman" not in figures
    assert figures["ratios"] == {}
    start = figures["minidocker"]["start"]
    assert len(start["samples_ms"]) == 2 and start["tenth_ms"] is None
    assert start["first_ms"] > 0 and start["last_over_first"] > 0
    memory = figures["minidocker"]["memory_kb"]
    assert set(memory) == {"monitor", "shim", "monitor_shim"}
    for name, part in memory.items():
        assert set(part) == {"pss", "uss", "rss"}
        if name != "shim":  # the monitor adopts PID 1: no shim stays, 0
            assert 0 < part["uss"] <= part["pss"] <= part["rss"]
    assert memory["monitor_shim"]["pss"] == memory["monitor"]["pss"] + memory["shim"]["pss"]
    assert set(figures["minidocker"]["context_kb"]) == {"python", "python_monitor_imports",
                                                        "python_watcher_imports"}
    assert len(figures["minidocker"]["per_container_kb"]) == 2
    daemon = figures["minidocker_daemon"]  # one monitor host for both containers
    assert set(daemon["memory_kb"]) == {"host_per_container", "host_and_server_per_container"}
    per_container = daemon["memory_kb"]["host_per_container"]["pss"]
    assert 0 < per_container == pytest.approx(daemon["host_kb"]["pss"] / 2, abs=0.1)
    assert len(daemon["start"]["samples_ms"]) == 2
    assert figures["minidocker"]["remove_all_ms"] > 0


def network_bench(tmp_path: Path, *argv: str, timeout: float) -> tuple[dict, str]:
    """Run bench/network.py with ``argv``: it exits 0 and its workspace is gone. Returns its
    JSON report and the workspace's path."""
    report = tmp_path / "network.json"
    result = subprocess.run([sys.executable, str(BENCH.parent / "network.py"), *argv,
                             "--json", str(report)], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    workspace = re.search(r"setting up in (\S+)", result.stdout).group(1)
    assert not Path(workspace).exists()
    return json.loads(report.read_text()), workspace


def test_network_bench_runs_small_and_leaves_nothing(tmp_path):
    """bench/network.py end to end, small (1 round, 2 containers, no podman): the figures are
    there (not judged), and the benchmark's namespace was left as it found it, workspace gone."""
    figures, _ = network_bench(tmp_path, "--runs", "1", "--warmup", "0", "-n", "2",
                               "--skip", "podman", timeout=90)
    assert figures["left_behind"] == {"links": [], "addresses": [], "filter": [], "nat": []}
    assert figures["skipped"] == {"podman": "--skip"} and "ratios" not in figures
    run = figures["per_run"]
    assert len(run["samples_ms"]["none"]) == len(run["samples_ms"]["bridge"]) == 1
    assert run["bridge_ms"] > 0 and run["target_ms"] == 50.0
    assert run["cpu_ms"]["bridge"] > 0 and "added_cpu_ms" in run
    # the network's rules are made with it: a container with no -p runs no iptables at all
    assert figures["steps_ms"]["calls_per_run"]["iptables"] == 0
    assert figures["imports_ms"]["network_after_run_imports"] > 0
    assert len(figures["many"]["start"]["samples_ms"]) == 2
    for series in figures["attach_series"].values():
        assert len(series["attach"]["samples_ms"]) == 2


@pytest.mark.skipif(not shutil.which("podman"), reason="needs podman (apt-get install podman)")
def test_network_bench_podman_bridge_runs_and_leaves_nothing(tmp_path):
    """bench/network.py's per-run rounds with podman (2 rounds, nothing else): podman ran on
    --network none and on its own bridge, the ratios are there (not judged), and its bridge,
    chains, named netns and CNI leases are gone with minidocker's, the host's dirs untouched."""
    host_files = podman_network_files()
    figures, workspace = network_bench(tmp_path, "--per-run-only", "--runs", "2", "--warmup",
                                       "0", timeout=120)
    if "podman" in figures["skipped"]:
        pytest.skip(f"podman cannot run here: {figures['skipped']['podman']}")
    assert all(left == [] for left in figures["left_behind"].values())
    assert set(figures["left_behind"]) == {"links", "addresses", "filter", "nat",
                                           "podman_netns", "podman_leases"}
    podman = figures["podman_per_run"]
    assert len(podman["samples_ms"]["none"]) == len(podman["samples_ms"]["bridge"]) == 2
    assert podman["bridge_ms"] > 0 and "added_ms" in podman
    assert set(figures["ratios"]) == {"run_bridge_minidocker_over_podman",
                                      "run_none_minidocker_over_podman"}
    assert figures["ratios"]["run_bridge_minidocker_over_podman"]["target"] == 1.0
    assert figures["podman"]["network_backend"] in ("cni", "netavark")
    assert "steps_ms" not in figures and "many" not in figures  # --per-run-only
    assert podman_network_files() - host_files == set()  # all of it went to its tmpfs
    for entry in os.listdir("/proc"):  # no conmon or podman of the benchmark is left
        with contextlib.suppress(OSError):
            assert workspace.encode() not in Path(f"/proc/{entry}/cmdline").read_bytes()


def podman_network_files() -> set[str]:
    """What podman's default bridge would leave in the host's files: named netns and CNI's
    leases and results on the ``podman`` network (the benchmark puts a tmpfs over both)."""
    return set(glob.glob("/run/netns/*") + glob.glob("/var/lib/cni/networks/podman/*")
               + glob.glob("/var/lib/cni/results/podman-*"))


def test_build_bench_runs_once_and_leaves_nothing(tmp_path):
    """bench/build.py end to end, one round (buildah too where it is installed): the figures
    are there (not judged), the workspace is gone."""
    report = tmp_path / "build.json"
    skip = [] if shutil.which("buildah") else ["--skip", "buildah"]
    result = subprocess.run([sys.executable, str(BENCH.parent / "build.py"), "--runs", "1",
                             "--warmup", "0", *skip, "--json", str(report)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    workspace = re.search(r"setting up in (\S+)", result.stdout).group(1)
    assert not Path(workspace).exists()
    figures = json.loads(report.read_text())
    assert figures["results"]["minidocker-cached"]["median_ms"] > 0
    if not skip:
        assert set(figures["ratios"]) == {"cold_minidocker_over_buildah",
                                          "cached_minidocker_over_buildah"}


@pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which(DOCKER)),
                    reason="needs dockerd (docker.io) and the docker CLI")
def test_daemon_bench_runs_small_and_leaves_nothing(tmp_path):
    """bench/daemon.py end to end, small (1 round, 2 containers, no podman): both daemons ran
    the four cases and the detached containers, and nothing is left — no dockerd, containerd or
    shim, no cgroup of either daemon, no workspace."""
    report = tmp_path / "daemon.json"
    before = minidocker_cgroups()
    bench = subprocess.Popen([sys.executable, str(BENCH.parent / "daemon.py"), "--runs", "1",
                              "--warmup", "0", "-n", "2", "--skip", "podman", "--json",
                              str(report)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    stdout, stderr = bench.communicate(timeout=180)
    assert bench.returncode == 0, stdout[-2000:] + stderr
    workspace = re.search(r"setting up in (\S+)", stdout).group(1)
    assert not Path(workspace).exists()
    assert new_cgroups(before) == set()
    # its dockerd's cgroup parent is named by the benchmark's PID (another test's dockerd, on
    # another pytest worker, may be running meanwhile)
    assert glob.glob(f"/sys/fs/cgroup/*/minidocker-dockerd-{bench.pid}-*") == []
    for entry in os.listdir("/proc"):  # no daemon of the benchmark is left
        with contextlib.suppress(OSError):
            assert workspace.encode() not in Path(f"/proc/{entry}/cmdline").read_bytes()
    figures = json.loads(report.read_text())
    assert set(figures["run_ms"]) == {"minidocker-none", "minidocker-bridge", "dockerd-none",
                                      "dockerd-bridge"}
    assert figures["minidocker"]["processes_per_container"] == 0  # none of its own:
    assert figures["minidocker"]["shared_watchers"] == 1  # the daemon's one monitor host
    assert figures["dockerd"]["processes_per_container"] == 1  # a containerd-shim
    assert set(figures["ratios"]) >= {"run_none_minidocker_over_dockerd",
                                      "run_bridge_minidocker_over_dockerd",
                                      "memory_minidocker_over_dockerd"}
    assert "growth_per_container_kb" in figures["minidocker"]  # one more container's PSS


def test_fastpaths_reads_each_target_from_its_benchmark():
    """bench/fastpaths.py's table: one row per target of issue 18, each verdict from the
    figure its benchmark wrote (here made up), the context row without one."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        loader = importlib.util.spec_from_file_location("minidocker_bench_fastpaths",
                                                        BENCH.parent / "fastpaths.py")
        fastpaths = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(fastpaths)
    finally:
        sys.path.remove(str(BENCH.parent))
    ratio = {"value": 0.9, "target": 1.0, "met": True}
    reports = {
        "run": {"ratios": {"cli_minidocker_over_podman": {**ratio, "value": 0.7}}},
        "network": {"per_run": {"added_ms": 41.0, "met": True},
                    "ratios": {"run_none_minidocker_over_podman": {**ratio, "target": 0.8},
                               "run_bridge_minidocker_over_podman": {**ratio, "value": 0.5}}},
        "lifecycle": {"ratios": {"start_median_minidocker_over_podman": {"value": 1.2}},
                      "minidocker": {"memory_kb": {"monitor_shim": {"pss": 5120}}}},
        "layers": {"datasets": {"small": {"commit": {"ratio": 2.0, "cpu_ratio": 2.5},
                                          "extract": {"ratio": 1.4, "cpu_ratio": 1.1}}}},
    }
    verdicts = {target: met for target, _, _, met in fastpaths.targets(reports)}
    assert verdicts == {
        "bridge - none, run --rm": True,
        "run --rm --network none / podman": False,  # 0.9 > 0.8
        "run --rm (bridge) / podman (its bridge)": True,
        "(context) bench/run.py: run --rm --network none / podman": None,
        "run -d / podman, median of 20": False,
        "monitor + shim PSS per container": True,
        "commit, small / GNU tar": False,
        "extract, small / GNU tar": True,
    }
