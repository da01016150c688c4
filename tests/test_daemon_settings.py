"""Stage 12: the daemon's settings (daemon.json and dockerd's flags, daemon/settings.py) and
TLS with client certificates (daemon/tls.py), checked with the real docker CLI."""

import glob
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from minidocker.daemon import settings
from minidocker.errors import MinidockerError
from tests.conftest import minidocker
from tests.daemon_helpers import DOCKER, Daemon

needs_docker = pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


# --- the file and the flags, as dockerd reads them ---------------------------------------------

def test_the_file_and_the_flags_together(tmp_path):
    path = tmp_path / "daemon.json"
    write(path, {"bip": "10.66.0.1/24", "icc": False, "log-opts": {"max-size": "1m"},
                 "default-address-pools": [{"base": "10.70.0.0/16", "size": 24}],
                 "insecure-registries": ["registry.lab:5000"]})
    read = settings.load(path, {"data-root": "/srv/md", "bip": None})
    assert read.environment() == {
        "MINIDOCKER_ICC": "false", "MINIDOCKER_ROOT": "/srv/md",
        "MINIDOCKER_BRIDGE_SUBNET": "10.66.0.0/24",
        "MINIDOCKER_ADDRESS_POOLS": "10.70.0.0/16:24",
        "MINIDOCKER_INSECURE_REGISTRIES": "registry.lab:5000"}
    assert read.log_config() == {"Type": "json-file", "Config": {"max-size": "1m"}}


@pytest.mark.parametrize("data, flags, message", [
    ({"bogus": 1}, {}, "don't match any configuration option: bogus"),
    ({"bip": "10.66.0.1/24"}, {"bip": "10.1.0.1/24"}, "both as a flag and in the configuration"),
    ({"icc": "no"}, {}, "'icc' takes a bool"),
    ({"bip": "10.66.0.7/24"}, {}, "use 10.66.0.1/24"),
    ({"bip": "ten"}, {}, "invalid bip"),
    ({"default-address-pools": [{"base": "10.70.0.0/16", "size": 8}]}, {}, "between 16 and 30"),
    ({"default-address-pools": [{"base": "10.70.0.1/16", "size": 24}]}, {}, "not a network"),
    ({"data-root": "relative"}, {}, "absolute path"),
    ({"tlscert": "/x"}, {}, "add --tlsverify"),
])
def test_bad_settings_are_refused_with_the_reason(tmp_path, data, flags, message):
    with pytest.raises(MinidockerError, match=message):
        settings.load(Path(write(tmp_path / "d.json", data)), flags)


def test_a_missing_config_file_is_an_error_the_default_one_is_not(tmp_path):
    with pytest.raises(MinidockerError, match="does not exist"):
        settings.load(tmp_path / "nope.json", {})
    result = minidocker("daemon", "--config-file", str(tmp_path / "nope.json"))
    assert result.returncode != 0 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


# --- a daemon started with them -----------------------------------------------------------------

@needs_docker
def test_bip_pools_and_log_opts_reach_the_containers(tmp_path):
    """In a network namespace of its own (its default bridge is not the session's), with a
    state root of its own (data-root)."""
    config = write(tmp_path / "daemon.json", {
        "bip": "10.66.0.1/24", "data-root": str(tmp_path / "root"),
        "default-address-pools": [{"base": "10.70.0.0/16", "size": 24}],
        "log-opts": {"max-size": "1m", "max-file": "2"}})
    daemon = Daemon(tmp_path, "--config-file", config)
    daemon.argv = ["unshare", "--net", "--", *daemon.argv]
    daemon.start()
    try:  # its store is empty: busybox comes from the session's, as docker load
        ok(minidocker("save", "-o", str(tmp_path / "busybox.tar"), "busybox"))
        ok(daemon.docker("load", "-i", str(tmp_path / "busybox.tar")))
        address = ok(daemon.docker("run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show",
                                   "eth0"))
        assert " 10.66.0.2/24 " in address
        ok(daemon.docker("network", "create", "pooled"))
        assert ok(daemon.docker("network", "inspect", "-f", "{{json .IPAM.Config}}",
                                "pooled")).strip() == \
            '[{"Subnet":"10.70.0.0/24","Gateway":"10.70.0.1"}]'
        ok(daemon.docker("network", "rm", "pooled"))
        ok(daemon.docker("create", "--name", "logged", "busybox", "true"))
        assert json.loads(ok(daemon.docker("inspect", "-f", "{{json .HostConfig.LogConfig}}",
                                           "logged"))) == \
            {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
        ok(daemon.docker("rm", "logged"))
        ok(daemon.docker("create", "--name", "logged", "--log-opt", "max-size=5m", "busybox"))
        assert json.loads(ok(daemon.docker("inspect", "-f", "{{json .HostConfig.LogConfig}}",
                                           "logged")))["Config"] == \
            {"max-size": "5m", "max-file": "2"}  # the request's own option, the daemon's others
        ok(daemon.docker("rm", "logged"))
        huge = daemon.docker("run", "--rm", "--log-opt", "max-size=huge", "busybox", "true")
        assert huge.returncode == 125 and "'huge'" in huge.stderr, huge
        assert (tmp_path / "root" / "containers").is_dir()  # data-root is the state root
    finally:
        daemon.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_docker
def test_tcp_takes_tls_with_a_client_certificate(tmp_path):
    ok(minidocker("daemon", "certs", str(tmp_path / "certs")))
    certs, port = tmp_path / "certs", free_port()
    daemon = Daemon(tmp_path, "--tlsverify", "--tlscacert", str(certs / "ca.crt"),
                    "--tlscert", str(certs / "server.crt"), "--tlskey", str(certs / "server.key"))
    daemon.argv[daemon.argv.index("--host") + 1] = f"tcp://127.0.0.1:{port}"
    with open(daemon.log, "ab") as log:
        daemon.proc = subprocess.Popen(daemon.argv, stdout=log, stderr=subprocess.STDOUT)
    tls = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(certs / "client")}
    try:
        deadline = time.monotonic() + 20
        while daemon.docker("version", env=tls).returncode and time.monotonic() < deadline:
            time.sleep(0.2)
        # the attach stream is half-closed by the CLI (TLS close_notify) and still answers
        assert ok(daemon.docker("run", "--rm", "busybox", "echo", "over tls", env=tls)) == \
            "over tls\n"
        assert ok(daemon.docker("run", "--rm", "-i", "busybox", "cat", input="piped\n",
                                env=tls)) == "piped\n"
        assert daemon.docker("run", "--rm", "busybox", "sh", "-c", "exit 3",
                             env=tls).returncode == 3
        no_cert = tmp_path / "no-cert"
        no_cert.mkdir()
        shutil.copy(certs / "client" / "ca.pem", no_cert / "ca.pem")
        refused = daemon.docker("ps", env={**tls, "DOCKER_CERT_PATH": str(no_cert)})
        assert refused.returncode != 0
        plain = daemon.docker("ps", env={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
        assert plain.returncode != 0  # plain HTTP on the TLS port gets nothing
    finally:
        daemon.stop()
    assert not glob.glob("/tmp/minidocker-daemon-*")  # its private socket directory is gone


def test_plain_tcp_is_refused_without_tls():
    result = minidocker("daemon", "-H", f"tcp://127.0.0.1:{free_port()}")
    assert result.returncode != 0 and "--tlsverify" in result.stderr


@needs_docker
def test_the_default_bridge_follows_each_daemons_icc(tmp_path):
    """Two daemons one after the other on one state root and in one network namespace: the
    second, without --icc=false and without --bip, turns the first's ICC back on (the record
    and the iptables rule), and keeps its bridge's subnet, as dockerd does with docker0."""
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])  # killed below
    netns = f"/proc/{holder.pid}/ns/net"
    while Path(netns).stat().st_ino == Path("/proc/self/ns/net").stat().st_ino:
        time.sleep(0.01)  # unshare has not run yet

    def daemon_with(*flags: str) -> Daemon:
        daemon = Daemon(tmp_path, "--data-root", str(tmp_path / "root"), *flags)
        daemon.argv = ["nsenter", f"--net={netns}", "--", *daemon.argv]
        return daemon.start()

    def icc_rules() -> list[str]:
        rules = subprocess.run(["nsenter", f"--net={netns}", "--", "iptables", "-S"],
                               capture_output=True, text=True, check=True).stdout
        return [r for r in rules.splitlines() if "-i minidocker0 -o minidocker0" in r]

    try:
        daemon = daemon_with("--icc=false", "--bip", "10.66.0.1/24")
        try:
            ok(minidocker("save", "-o", str(tmp_path / "busybox.tar"), "busybox"))
            ok(daemon.docker("load", "-i", str(tmp_path / "busybox.tar")))
            ok(daemon.docker("run", "--rm", "busybox", "true"))  # the bridge and its rules
            assert [r.split()[-1] for r in icc_rules()] == ["DROP"]
        finally:
            daemon.stop()
        daemon = daemon_with()
        try:
            bridge = json.loads(ok(daemon.docker("network", "inspect", "bridge")))[0]
            assert bridge["Options"].get("com.docker.network.bridge.enable_icc", "true") == "true"
            assert bridge["IPAM"]["Config"][0]["Subnet"] == "10.66.0.0/24"
            ok(daemon.docker("run", "--rm", "busybox", "true"))
            assert [r.split()[-1] for r in icc_rules()] == ["ACCEPT"]
        finally:
            daemon.stop()
    finally:
        holder.kill()
        holder.wait()
