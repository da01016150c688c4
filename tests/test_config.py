"""The typed container configuration (container/config.py) and the one teardown
(container/teardown.py): flags parsed once into values that answer questions, the record's JSON
in Docker's shape, and every resource of a container given back exactly once."""

import os

import pytest

from minidocker import volumes
from minidocker.container import Config, HostConfig, NetworkMode, records, run, teardown
from minidocker.container.config import IpcMode, PidMode, RestartPolicy, UsernsMode, UTSMode
from minidocker.container.create import create
from minidocker.errors import MinidockerError
from minidocker.namespaces import CONTAINER_NAMESPACES, ExecFailed, IdMap, Stdio
from minidocker.network.ports import parse_publish


@pytest.mark.parametrize("text, host, none, container, bridge", [
    ("bridge", False, False, "", True),
    ("default", False, False, "", True),
    ("none", False, True, "", False),
    ("host", True, False, "", False),
    ("container:web", False, False, "web", False),
    ("shop", False, False, "", True),
])
def test_network_mode_answers_questions(text, host, none, container, bridge):
    mode = NetworkMode.parse(text)
    assert (mode.is_host, mode.is_none, mode.container, mode.is_bridge) == \
        (host, none, container, bridge)
    assert mode.is_private == (not host and not container)


@pytest.mark.parametrize("kind, text", [
    (IpcMode, "nosuch"), (PidMode, "private:x"), (UTSMode, "container:web"),
    (UsernsMode, "container:web"), (IpcMode, "container:"),
])
def test_a_bad_mode_names_the_flag_and_the_choices(kind, text):
    with pytest.raises(MinidockerError, match=f"invalid {kind.flag} mode '{text}': use "):
        kind.parse(text)


def test_namespaces_follow_the_modes():
    assert HostConfig().namespaces() == list(CONTAINER_NAMESPACES)
    host = HostConfig(NetworkMode=NetworkMode("host"), PidMode=PidMode("container:abc"),
                      UsernsMode=UsernsMode("private"))
    assert host.namespaces() == ["user", "uts", "mnt", "ipc", "cgroup"]
    assert host.shared() == {"pid": "abc"}


def test_host_config_round_trips_through_dockers_json():
    host = HostConfig(NetworkMode=NetworkMode.parse("bridge"), IpcMode=IpcMode("shareable"),
                      PortBindings=parse_publish("127.0.0.1:8080:80") + parse_publish("53/udp"),
                      UsernsMode=UsernsMode("private"), UsernsMap=IdMap(0, 200000, 65536),
                      RestartPolicy=RestartPolicy.parse("on-failure:3"), AutoRemove=False)
    data = host.to_dict()
    assert data["NetworkMode"] == "bridge" and data["IpcMode"] == "shareable"
    assert data["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                    "53/udp": [{"HostIp": "", "HostPort": ""}]}
    assert data["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert data["UsernsMap"] == {"inside": 0, "outside": 200000, "count": 65536}
    assert data["Memory"] == 0 and "Resources" not in data
    again = HostConfig.from_dict(data)
    assert again.to_dict() == data
    assert again.NetworkMode.is_bridge and again.PortBindings == host.PortBindings


def test_a_record_keeps_stage_9s_options_as_data_until_a_process_starts():
    from minidocker import security

    asked = security.parse_security_opts(["no-new-privileges"], cap_drop=["NET_RAW"])
    data = HostConfig(Security=asked).to_dict()
    again = HostConfig.from_dict(data)
    assert isinstance(again.Security, dict) and again.to_dict() == data  # ps, inspect
    options = again.security_options()  # start, exec: the compiled filter again
    assert (options.capabilities, options.no_new_privs, options.seccomp.to_bytes()) == \
        (asked.capabilities, True, asked.seccomp.to_bytes())
    assert HostConfig.from_dict(HostConfig().to_dict()).security_options().seccomp_profile \
        == "default"


def test_restart_policy_is_checked():
    with pytest.raises(MinidockerError, match="only on-failure takes a maximum retry count"):
        RestartPolicy.parse("always:3")


def test_create_applies_the_image_rules_once():
    record = create(Config(Image="busybox", Entrypoint=["echo"], Env=["A=1", "PATH=/x"]),
                    HostConfig(NetworkMode=NetworkMode("none")))
    try:
        assert record.Config.command == ["echo"]  # --entrypoint drops the image's Cmd
        assert record.Config.Hostname == record.Id[:12]
        assert record.Config.Env[-2:] == ["A=1", "PATH=/x"]
        assert [e for e in record.Config.Env if e.startswith("PATH=")] == ["PATH=/x"]
        assert records.load(record.Id).Config == record.Config
    finally:
        teardown.remove(record)


class Counted:
    """Count the calls of a function, and still make them."""

    def __init__(self, monkeypatch, owner, name):
        self.calls, real = [], getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, **k: (self.calls.append(a), real(*a, **k))[1])


@pytest.fixture
def quiet():
    null = os.open(os.devnull, os.O_RDWR)
    yield Stdio(null, null, null)
    os.close(null)


def test_run_rm_through_the_api_releases_once_and_leaves_no_anonymous_volume(
        monkeypatch, quiet):
    released = Counted(monkeypatch, teardown, "release")
    before = {v.Name for v in volumes.list_volumes()}
    container = run(Config(Image="busybox", Cmd=["sh", "-c", "echo hi > /data/x"]),
                    HostConfig(AutoRemove=True, Binds=["/data"]), stdio=quiet)
    assert container.wait() == 0
    assert len(released.calls) == 1
    assert {v.Name for v in volumes.list_volumes()} == before
    assert not container.record.directory.exists()
    with pytest.raises(MinidockerError):
        records.load(container.record.Id)


def test_a_failed_start_is_torn_down_once(monkeypatch, quiet):
    released = Counted(monkeypatch, teardown, "release")
    before = {r.Id for r in records.all_records()}
    with pytest.raises(ExecFailed, match='exec: "nosuch"'):
        run(Config(Image="busybox", Cmd=["nosuch"]), HostConfig(AutoRemove=True), stdio=quiet)
    assert len(released.calls) == 1
    assert {r.Id for r in records.all_records()} == before


def test_a_kept_container_records_its_exit_and_gives_back_its_cgroup(monkeypatch, quiet):
    released = Counted(monkeypatch, teardown, "release")
    container = run(Config(Image="busybox", Cmd=["sh", "-c", "exit 3"]), stdio=quiet)
    try:
        assert container.wait() == 3
        assert len(released.calls) == 1
        record = container.record.reload()
        assert (record.status, record.State["ExitCode"]) == ("exited", 3)
    finally:
        teardown.remove(container.record)
    teardown.remove(container.record)  # idempotent: a second call finds nothing to do


def test_twenty_parallel_creates_of_one_name_make_one_container(md):
    """The name is claimed under the containers' lock: exactly one create wins, the others
    get Docker's conflict message."""
    import concurrent.futures

    def create_one(_):
        return md("create", "--name", "dup-under-load", "--network", "none", "busybox", "true")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(create_one, range(20)))
    try:
        assert sorted(r.returncode for r in results) == [0] + [125] * 19
        assert all('The container name "dup-under-load" is already in use' in r.stderr
                   for r in results if r.returncode)
        assert [r.Name for r in records.all_records()].count("dup-under-load") == 1
    finally:
        md("rm", "-f", "dup-under-load")


def test_prune_removes_the_directory_of_a_create_killed_before_its_record(md):
    orphan = records.containers_dir() / ("f" * 64)
    (orphan / "upper").mkdir(parents=True)
    assert md("container", "prune", "-f").returncode == 0
    assert not orphan.exists()


def test_every_command_makes_the_state_root_roots_alone(md):
    from minidocker.state import state_root

    root = state_root()
    root.chmod(0o755)
    assert md("ps").returncode == 0
    assert root.stat().st_mode & 0o777 == 0o700
