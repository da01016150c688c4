"""``--runtime runc``: a minidocker container as an OCI bundle, run by Debian's runc.

Every ``config.json`` minidocker writes (for a run, and by ``export-bundle``) is held to the
OCI runtime spec's own JSON schema (v1.0.2, what runc 1.1.5 implements; vendored under
tests/data/runtime-spec with its Apache-2.0 license); the lifecycle commands work the same
with either runtime, and runc itself knows the container while it runs. The stage 9 escape
table and the cgroup limits run under both runtimes in test_security_run.py and
test_cgroups.py.
"""

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from minidocker.container import records, runc
from minidocker.daemon.errors import ApiError
from minidocker.daemon.translate import container_request

SCHEMA = Path(__file__).parent / "data" / "runtime-spec"


def validator() -> Draft4Validator:
    """The spec's config-schema.json, its ``$ref``s (defs.json, config-linux.json, ...)
    resolved among the vendored files."""
    registry = Registry().with_resources(
        (f"file:///schema/{path.name}",
         Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT4))
        for path in SCHEMA.glob("*.json"))
    schema = registry.contents("file:///schema/config-schema.json")
    return Draft4Validator({**schema, "id": "file:///schema/config-schema.json"},
                           registry=registry)


def assert_valid(config: dict) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator().iter_errors(config)]
    assert errors == []


FLAG_SETS = {
    "default": [],
    "privileged": ["--privileged"],
    "user-and-caps": ["-u", "1000:1000", "--group-add", "10", "--cap-drop", "ALL",
                      "--cap-add", "NET_BIND_SERVICE"],
    "limits": ["-m", "64m", "--cpus", "0.5", "--pids-limit", "50", "--cpuset-cpus", "0",
               "--memory-reservation", "32m", "--cpu-shares", "512"],
    "tunables": ["--ulimit", "nofile=100:200", "--sysctl", "net.ipv4.ip_forward=1",
                 "--shm-size", "128m", "--oom-score-adj", "100", "--hostname", "box"],
    "files": ["--read-only", "--tmpfs", "/run", "-v", "/data", "--init"],
    "security": ["--security-opt", "no-new-privileges", "--device", "/dev/null:/dev/mynull"],
    "unconfined": ["--security-opt", "seccomp=unconfined", "--network", "none", "-t"],
    "host": ["--pid", "host", "--network", "host", "--uts", "host"],
}


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS)
def test_every_config_json_follows_the_runtime_spec(md, containers, flags, tmp_path):
    name = containers.name()
    result = md("run", "--runtime", "runc", "--name", name, *flags, "busybox", "true")
    assert result.returncode == 0, result.stderr
    record = records.find(name)
    assert_valid(json.loads((record.directory / "bundle" / "config.json").read_text()))
    exported = md("export-bundle", name, str(tmp_path / "bundle"))
    assert exported.returncode == 0, exported.stderr
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert_valid(config)
    assert config["root"]["path"] == "rootfs" and "hooks" not in config


def test_the_schema_refuses_what_runc_would(tmp_path):
    """The validator is not a rubber stamp: a namespace type runc has never heard of fails."""
    config = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
              "linux": {"namespaces": [{"type": "pidd"}]}}
    assert list(validator().iter_errors(config))


def test_run_detached_logs_exec_stop_rm_under_runc(md, containers):
    name = containers.run_d("--runtime", "runc", "busybox", "sh", "-c",
                            "echo started; trap 'echo bye; exit 3' TERM; "
                            "while true; do sleep 0.1; done")
    record = records.find(name)
    assert md("inspect", "-f", "{{.HostConfig.Runtime}}", name).stdout == "runc\n"
    state = runc.state(record.Id)  # runc knows it, with the PID minidocker recorded
    assert (state["status"], state["pid"]) == ("running", record.State["Pid"])
    assert state["bundle"] == str(record.directory / "bundle")
    seen = md("exec", "-u", "1000:1000", "-w", "/tmp", "-e", "X=1", name, "sh", "-c",
              "echo $(id -u) $(pwd) $X $$; exit 5")
    assert seen.returncode == 5 and seen.stdout.split()[:3] == ["1000", "/tmp", "1"]
    assert md("exec", "-i", name, "cat", input="piped\n").stdout == "piped\n"
    assert md("stop", name).returncode == 0
    assert md("inspect", "-f", "{{.State.ExitCode}}", name).stdout == "3\n"
    assert md("logs", name).stdout == "started\nbye\n"
    assert runc.state(record.Id) is None  # runc delete: runc forgot it
    assert md("rm", name).returncode == 0
    assert not (runc.runc_root() / record.Id).exists()


def test_run_rm_with_an_exit_code_and_a_terminal(md):
    result = md("run", "--rm", "--runtime", "runc", "-t", "busybox", "sh", "-c",
                "tty; exit 7")
    assert (result.returncode, result.stdout) == (7, "/dev/pts/0\n")  # as minidocker's own
    assert os.listdir(runc.runc_root()) == []


def test_an_unknown_runtime_is_refused(md):
    result = md("run", "--rm", "--runtime", "crun", "busybox", "true")
    assert result.returncode == 125
    assert "unknown or invalid runtime name: crun (use minidocker or runc)" in result.stderr


def test_the_daemon_takes_hostconfig_runtime():
    _config, host, _warnings = container_request({"Image": "busybox",
                                                  "HostConfig": {"Runtime": "runc"}})
    assert host.Runtime == "runc"
    with pytest.raises(ApiError, match="unknown or invalid runtime name: kata"):
        container_request({"Image": "busybox", "HostConfig": {"Runtime": "kata"}})


@pytest.mark.parametrize("command, code", [("nosuchcmd", 127), ("/etc", 126)])
def test_a_command_that_cannot_run_fails_alike(md, command, code):
    results = [md("run", "--rm", "--runtime", runtime, "busybox", command)
               for runtime in ("minidocker", "runc")]
    assert [(r.returncode, r.stderr) for r in results] == [(code, results[0].stderr)] * 2


def test_userns_private_is_refused_with_the_reason(md):
    result = md("run", "--rm", "--runtime", "runc", "--userns", "private", "busybox", "true")
    assert result.returncode == 125
    assert "--userns private does not work with --runtime runc" in result.stderr


def test_the_network_hook_plugs_a_runc_container_into_a_user_network(md, containers):
    network = containers.name("net")
    assert md("network", "create", network).returncode == 0
    try:
        server = containers.run_d("--runtime", "runc", "--network", network, "busybox",
                                  "sleep", "60")
        for runtime in ("minidocker", "runc"):  # found by name, reached through the bridge
            ping = md("run", "--rm", "--runtime", runtime, "--network", network, "busybox",
                      "ping", "-c", "1", "-W", "2", server)
            assert ping.returncode == 0 and "1 packets received" in ping.stdout, ping.stderr
        settings = json.loads(md("inspect", server).stdout)[0]["NetworkSettings"]
        assert settings["Networks"][network]["IPAddress"].startswith("172.")  # recorded by the monitor after the hook's attach
    finally:
        containers.remove_all()
        md("network", "rm", network)


def test_the_process_gets_the_same_environment_user_and_directory(md):
    flags = ["-u", "nobody", "-e", "X=1", "-w", "/tmp", "--hostname", "box", "busybox", "sh",
             "-c", "env | sort; id; pwd; ulimit -n"]
    seen = [md("run", "--rm", "--runtime", runtime, *flags) for runtime in ("minidocker", "runc")]
    assert seen[0].returncode == 0 and "HOME=/home" in seen[0].stdout.split()
    assert seen[1].stdout == seen[0].stdout
