"""Stage 12 under load (issue 14, item 10): twenty API clients at once create, start, wait
for and remove containers — half on the default bridge, half with no network — and afterwards
nothing is left: no container record, no mount under the state root, no veth, no cgroup, no
endpoint. The issue asks for 60 seconds; CI runs 15 (``MINIDOCKER_STRESS_SECONDS=60`` for the
full run)."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from minidocker import cgroups
from minidocker.state import state_root
from tests.daemon_helpers import running_daemon

CLIENTS = 20
SECONDS = float(os.environ.get("MINIDOCKER_STRESS_SECONDS", "15"))
PREFIX = "stress-"


def kernel_state() -> dict:
    """What the engine makes in the kernel and on disk, as a snapshot to compare."""
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f if str(state_root()) in line.split()[4])
    links = sorted(os.listdir("/sys/class/net"))
    endpoints = state_root() / "networks" / "endpoints"
    return {"mounts": mounts, "veths": [n for n in links if n.startswith("veth")],
            "cgroups": [str(p) for p in cgroups.leftover_cgroups()],
            "endpoints": sorted(os.listdir(endpoints)) if endpoints.is_dir() else [],
            "containers": sorted(p.name for p in (state_root() / "containers").glob("*")
                                 if (p / "config.json").exists()
                                 and json.loads((p / "config.json").read_text())["Name"]
                                 .startswith(PREFIX))}


def test_twenty_clients_at_once_leave_nothing_behind(tmp_path):
    with running_daemon(tmp_path, PREFIX) as daemon:
        before = kernel_state()
        deadline = time.monotonic() + SECONDS

        def client(number: int) -> int:
            network = "bridge" if number % 2 else "none"
            runs = 0
            with daemon.http() as http:
                while time.monotonic() < deadline:
                    created = http.post("/containers/create",
                                        params={"name": f"{PREFIX}{number}-{runs}"},
                                        json={"Image": "busybox", "Cmd": ["true"],
                                              "HostConfig": {"NetworkMode": network}})
                    assert created.status_code == 201, created.text
                    container = created.json()["Id"]
                    started = http.post(f"/containers/{container}/start")
                    assert started.status_code == 204, started.text
                    waited = http.post(f"/containers/{container}/wait", timeout=120)
                    assert waited.json()["StatusCode"] == 0, waited.text
                    removed = http.delete(f"/containers/{container}", params={"v": "1"})
                    assert removed.status_code == 204, removed.text
                    runs += 1
            return runs

        with ThreadPoolExecutor(CLIENTS) as pool:
            runs = list(pool.map(client, range(CLIENTS)))
        assert all(runs), runs  # every client got through at least one whole round
        with daemon.http() as http:
            listed = http.get("/containers/json", params={"all": "1"}).json()
        assert [c["Names"] for c in listed if c["Names"][0].startswith(f"/{PREFIX}")] == []
    assert kernel_state() == before
