"""Stage 12: docker-py 7 (the ``docker`` package on PyPI) drives minidocker's daemon, as it
drives dockerd: the same calls a Python script or docker-compose 1.29 makes."""

import time

import pytest

from tests.daemon_helpers import running_daemon

docker = pytest.importorskip("docker")

PREFIX = "dmnpy-"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), PREFIX) as daemon:
        client = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto",
                                     timeout=60)
        yield client
        client.close()


def test_ping_and_version(client):
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == "1.50" and version["Os"] == "linux"


def test_containers_run_logs_exec_stop_remove(client):
    container = client.containers.run("busybox", ["sh", "-c", "echo ready; sleep 300"],
                                      detach=True, name=f"{PREFIX}app",
                                      labels={"app": "demo"})
    try:
        container.reload()
        assert container.status == "running" and container.name == f"{PREFIX}app"
        assert [c.id for c in client.containers.list(filters={"label": "app=demo"})] \
            == [container.id]
        for _ in range(100):
            if container.logs() == b"ready\n":
                break
            time.sleep(0.1)
        assert container.logs() == b"ready\n"
        code, output = container.exec_run(["sh", "-c", "echo $((6*7)); exit 2"])
        assert (code, output) == (2, b"42\n")
        code, (out, err) = container.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, out, err) == (0, b"o\n", b"e\n")
        container.stop(timeout=1)
        container.reload()
        assert container.status == "exited"
    finally:
        container.remove(force=True)
    assert f"{PREFIX}app" not in [c.name for c in client.containers.list(all=True)]


def test_containers_run_in_the_foreground_returns_the_output(client):
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "exit 7"], remove=True)
    assert failed.value.exit_status == 7


def test_images_networks_volumes(client):
    tags = [tag for image in client.images.list() for tag in image.tags]
    assert "busybox:latest" in tags
    assert client.images.get("busybox").attrs["Os"] == "linux"
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(f"{PREFIX}nothing")
    network = client.networks.create(f"{PREFIX}net", driver="bridge")
    assert client.networks.get(network.id).name == f"{PREFIX}net"
    network.remove()
    volume = client.volumes.create(f"{PREFIX}vol")
    assert client.volumes.get(f"{PREFIX}vol").attrs["Driver"] == "local"
    volume.remove()
    assert f"{PREFIX}vol" not in [v.name for v in client.volumes.list()]


def test_errors_are_docker_errors(client):
    with pytest.raises(docker.errors.NotFound) as missing:
        client.containers.get(f"{PREFIX}ghost")
    assert "No such container" in str(missing.value)
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create(f"{PREFIX}noimage", ["true"])
