"""Stage 12: the real docker CLI's ``cp`` (both ways), ``stats --no-stream``, ``events``
(``--since``, ``--filter``), ``system df``, ``update``, ``info`` and ``export`` through
minidocker's daemon; and the archive endpoints on the wire with hostile input: a ``PUT`` of a
tar with ``..``, an absolute path or a symlink out of the root is a 400 that says so, and
nothing lands outside the container."""

import base64
import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import minidocker
from tests.daemon_helpers import DOCKER, DOCKER_28, running_daemon
from tests.test_engineops import hostile_tar

pytestmark = pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")

PREFIX = "dmnops-"
BOX = f"{PREFIX}box"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), PREFIX) as running:
        ok(running.docker("run", "-d", "--name", BOX, "busybox", "sleep", "300"))
        yield running


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_docker_cp_both_ways(daemon, tmp_path):
    (tmp_path / "file").write_text("hello\n")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "g").write_text("g\n")
    ok(daemon.docker("cp", str(tmp_path / "file"), f"{BOX}:/tmp/"))
    ok(daemon.docker("cp", str(tmp_path / "dir"), f"{BOX}:/newdir"))
    ok(daemon.docker("cp", f"{tmp_path}/dir/.", f"{BOX}:/tmp/"))
    found = ok(daemon.docker("exec", BOX, "find", "/tmp", "/newdir")).split()
    assert {"/tmp/file", "/newdir/sub/g", "/tmp/sub/g"} <= set(found)

    ok(daemon.docker("cp", f"{BOX}:/etc/hostname", str(tmp_path / "h")))
    ok(daemon.docker("cp", f"{BOX}:/newdir", str(tmp_path / "back")))
    ok(daemon.docker("cp", f"{BOX}:/etc/.", str(tmp_path / "etc")))
    hostname = ok(daemon.docker("exec", BOX, "hostname"))
    assert (tmp_path / "h").read_text() == hostname
    assert (tmp_path / "back" / "sub" / "g").read_text() == "g\n"
    assert (tmp_path / "etc" / "passwd").is_file()
    missing = daemon.docker("cp", f"{BOX}:/nope", str(tmp_path))
    said = "Could not find the file /nope" if DOCKER == DOCKER_28 else \
        "No such container:path"  # the CLI 20.10's own words
    assert missing.returncode == 1 and said in missing.stderr


def test_archive_endpoints_on_the_wire(daemon):
    with daemon.http() as http:
        head = http.head(f"/containers/{BOX}/archive", params={"path": "/etc"})
        stat = json.loads(base64.b64decode(head.headers["x-docker-container-path-stat"]))
        assert stat["name"] == "etc" and stat["mode"] & (1 << 31)  # Go's ModeDir
        got = http.get(f"/containers/{BOX}/archive", params={"path": "/etc/hostname"})
        assert got.headers["content-type"] == "application/x-tar"
        names = tarfile.open(fileobj=io.BytesIO(got.content)).getnames()
        assert names == ["hostname"]
        assert http.get(f"/containers/{BOX}/archive",
                        params={"path": "/nope"}).json()["message"].startswith(
            "Could not find the file /nope")
        not_dir = http.put(f"/containers/{BOX}/archive", params={"path": "/etc/hostname"},
                           content=hostile_tar(("x", b"x")).getvalue())
        assert not_dir.status_code == 400 and "not a directory" in not_dir.json()["message"]
        assert http.get(f"/containers/{BOX}/archive").status_code == 400


@pytest.mark.parametrize("members, words", [
    ([("../../../../../tmp/dmnops-hostile-dots", b"x")], "'..'"),
    ([("/tmp/dmnops-hostile-abs", b"x")], "absolute path"),
    ([("link", "/tmp"), ("link/dmnops-hostile-through", b"x")], "symlink"),
])
def test_hostile_archive_put_is_a_400(daemon, members, words):
    with daemon.http() as http:
        answer = http.put(f"/containers/{BOX}/archive", params={"path": "/tmp"},
                          content=hostile_tar(*members).getvalue())
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert words in message and "Traceback" not in message
    assert not list(Path("/tmp").glob("dmnops-hostile-*"))


def test_docker_stats_no_stream_and_update(daemon):
    name = f"{PREFIX}busy"
    ok(daemon.docker("run", "-d", "--name", name, "-m", "32m", "busybox", "sh", "-c",
                     "while :; do :; done"))
    out = ok(daemon.docker("stats", "--no-stream", "--format",
                           "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", name))
    got, cpu, memory, pids = out.strip().split("|")
    assert got == name and float(cpu.rstrip("%")) > 5, out
    assert memory.endswith("/ 32MiB") and pids == "1"
    ok(daemon.docker("update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
                     "--restart", "always", name))
    shown = ok(minidocker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}} "
                          "{{.HostConfig.RestartPolicy.Name}}", name))
    assert shown.split() == [str(64 * 2**20), "50000", "always"]
    from minidocker.container import lifecycle

    assert lifecycle.find(name).cgroup().stats().memory_limit == 64 * 2**20
    ok(daemon.docker("rm", "-f", name))


def test_docker_events_since_and_filter(daemon):
    begin = time.time()
    name = f"{PREFIX}ev"
    ok(daemon.docker("run", "--rm", "--name", name, "busybox", "true"))
    out = ok(daemon.docker("events", "--since", str(begin), "--until", str(time.time() + 1),
                           "--filter", f"container={name}", "--filter", "event=start",
                           "--filter", "event=destroy"))
    assert [line.split()[2] for line in out.splitlines()] == ["start", "destroy"], out
    assert f"name={name}" in out
    as_json = ok(daemon.docker("events", "--since", "1m", "--until", "0s", "--format",
                               "{{json .}}", "--filter", "type=container"))
    assert any(json.loads(line)["Actor"]["Attributes"].get("name") == name
               for line in as_json.splitlines())


def test_docker_system_df_info_and_export(daemon, tmp_path):
    df = ok(daemon.docker("system", "df")).splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    images = df[1].split()
    assert images[0] == "Images" and int(images[1]) >= 1 and int(images[2]) >= 1
    assert int(df[2].split()[2]) >= 1  # the running box
    info = ok(daemon.docker("info", "--format", "{{.Driver}} {{.ContainersRunning}}"))
    assert info.split()[0] == "overlay2" and int(info.split()[1]) >= 1
    ok(daemon.docker("export", "-o", str(tmp_path / "box.tar"), BOX))
    assert "bin/busybox" in tarfile.open(tmp_path / "box.tar").getnames()


def test_a_client_that_leaves_mid_tar_leaves_nothing_behind(daemon):
    """The child writing the tar must see its reader go: else it blocks on a full pipe
    forever, and the daemon cannot stop."""
    for path in (f"/containers/{BOX}/export", f"/containers/{BOX}/archive?path=/bin"):
        with daemon.http() as http, http.stream("GET", path) as answer:
            assert answer.status_code == 200
            next(answer.iter_raw(1024))
    deadline = time.monotonic() + 10
    while children(daemon.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children(daemon.proc.pid) == []


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def test_stats_one_shot_stream_and_bad_input(daemon):
    with daemon.http() as http:
        once = http.get(f"/containers/{BOX}/stats", params={"stream": "false"}).json()
        assert once["name"] == f"/{BOX}" and once["pids_stats"]["current"] == 1
        assert once["precpu_stats"]["cpu_usage"]["total_usage"] > 0  # two samples
        assert once["memory_stats"]["limit"] > 0 and "eth0" in once["networks"]
        shot = http.get(f"/containers/{BOX}/stats", params={"one-shot": "1", "stream": "0"})
        assert shot.json()["preread"] == "0001-01-01T00:00:00Z"
        with http.stream("GET", f"/containers/{BOX}/stats") as streamed:
            lines = streamed.iter_lines()
            first, second = json.loads(next(lines)), json.loads(next(lines))
        assert second["precpu_stats"] == first["cpu_stats"]
        refusals = [
            (http.get("/containers/nosuch/stats"), 404, "No such container"),
            (http.post(f"/containers/{BOX}/update", json={"Memory": "lots"}), 400,
             "UpdateConfig.Memory"),
            (http.post(f"/containers/{BOX}/update", json={"CpusetCpus": "999"}), 400,
             "not available"),
            (http.post(f"/containers/{BOX}/update", content=b"{oops"), 400, "invalid JSON"),
            (http.get("/events", params={"filters": '{"colour":["red"]}'}), 400,
             "invalid filter"),
            (http.get("/events", params={"since": "yesterday"}), 400, "invalid time"),
            (http.post(f"/containers/{BOX}/exec", json={"Cmd": ["true"], "WorkingDir": "rel"}),
             400, "needs to be an absolute path"),
        ]
        for answer, status, words in refusals:
            assert answer.status_code == status, answer.text
            assert words in answer.json()["message"]


def test_docker_py_archives_stats_events_and_df(daemon):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto", timeout=60)
    try:
        box = client.containers.get(BOX)
        since = time.time()
        assert box.put_archive("/tmp", hostile_tar(("py-file", b"from python\n")).getvalue())
        chunks, stat = box.get_archive("/tmp/py-file")
        assert stat["name"] == "py-file" and stat["size"] == len(b"from python\n")
        member = tarfile.open(fileobj=io.BytesIO(b"".join(chunks)))
        assert member.extractfile("py-file").read() == b"from python\n"
        used = box.stats(stream=False)
        assert used["pids_stats"]["current"] == 1 and used["memory_stats"]["usage"] > 0
        box.pause()
        box.unpause()
        seen = [e["Action"] for e in client.events(since=since, until=time.time() + 0.5,
                                                    decode=True,
                                                    filters={"container": BOX})]
        assert seen[-2:] == ["pause", "unpause"], seen
        usage = client.df()
        assert any(c["Names"] == [f"/{BOX}"] for c in usage["Containers"])
    finally:
        client.close()


def test_unknown_filters_are_refused_and_prune_all_takes_named_volumes(daemon):
    """A filter the daemon does not know is a 400 that names it, never ignored: a prune that
    ignored one would delete more than asked. ``volume prune -a`` sends all=true."""
    kept, volume = f"{PREFIX}kept", f"{PREFIX}vol"
    ok(daemon.docker("create", "--name", kept, "busybox", "true"))
    ok(daemon.docker("volume", "create", volume))
    try:
        for args in [("container", "prune", "-f", "--filter", "nope=1"),
                     ("images", "--filter", "bogus=1"), ("volume", "ls", "--filter", "nope=1"),
                     ("network", "ls", "--filter", "nope=1"),
                     ("network", "prune", "-f", "--filter", "nope=1"),
                     ("image", "prune", "-f", "--filter", "until=soon")]:
            refused = daemon.docker(*args)
            assert refused.returncode == 1 and "invalid filter" in refused.stderr, refused
        ok(daemon.docker("inspect", kept))  # the refused prune removed nothing
        # the CLI's prune filters (until=, label=, label!=): docker system prune sends them to
        # every prune endpoint; only the containers they name go
        ok(daemon.docker("system", "prune", "-f", "--filter", f"label=no-such={PREFIX}",
                         "--filter", "until=1h"))
        ok(daemon.docker("inspect", kept))
        assert ok(daemon.docker("images", "--filter", "reference=busybox", "--format",
                                "{{.Repository}}")).split() == ["busybox"]
        assert ok(daemon.docker("images", "busybox:latest", "--format",  # [REPOSITORY[:TAG]]
                                "{{.Repository}}")).split() == ["busybox"]
        assert volume in ok(daemon.docker("volume", "ls", "-q", "--filter", f"name={volume}"))
        if DOCKER == DOCKER_28:  # volume prune -a: the CLI 23 and later
            assert volume in ok(daemon.docker("volume", "prune", "-a", "-f"))
    finally:
        daemon.docker("rm", "-f", kept)
        daemon.docker("volume", "rm", volume)
