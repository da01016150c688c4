"""A node's engine, seen from a manager: the Docker Engine API over the node's unix socket.

The managers never make a container themselves: they ask the node's daemon (stage 12), with
the same calls the docker CLI sends — ``POST /containers/create``, ``/start``, ``DELETE
/containers/{id}?force=1``, ``GET /containers/json`` with a label filter. A task's container
carries Swarm's labels (``com.docker.swarm.service.name``, ``com.docker.swarm.task.id``), so a
node's containers say which tasks it runs, whatever the store believes.

Spec: Docker Engine API v1.50 (Container section). Used by: swarm.py, lab.py.
"""

import json

import httpx

TIMEOUT = 60.0  # a daemon that is slow (creating containers on a slow machine) is waited for
SERVICE_LABEL = "com.docker.swarm.service.name"
SERVICE_ID_LABEL = "com.docker.swarm.service.id"
TASK_LABEL = "com.docker.swarm.task.id"
NODE_LABEL = "com.docker.swarm.node.id"


class EngineError(Exception):
    """The node's daemon refused a call, or did not answer."""


class Engine:
    def __init__(self, socket: str, timeout: float = TIMEOUT):
        self.socket, self.timeout = socket, timeout

    def client(self) -> httpx.Client:
        """A client on the unix socket. ``verify=False``: plain HTTP needs no TLS, and httpx
        would otherwise load every CA certificate of the system for each call (some 20 ms of
        CPU, ten times that on an emulated machine, for each of the agents' calls a second)."""
        return httpx.Client(transport=httpx.HTTPTransport(uds=self.socket, verify=False),
                            base_url="http://docker/v1.50", timeout=self.timeout)

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            with self.client() as client:
                response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise EngineError(f"the daemon on {self.socket} did not answer: {exc}") from None
        if response.status_code >= 400:
            message = response.json().get("message", response.text) \
                if response.headers.get("content-type", "").startswith("application/json") \
                else response.text
            raise EngineError(message)
        return response

    def ping(self) -> bool:
        try:
            return self.call("GET", "/_ping").text == "OK"
        except EngineError:
            return False

    def present(self) -> bool:
        """Whether a daemon listens on the socket: one that answers, or is too busy to answer
        within the timeout, is there; a crashed one refuses the connection at once."""
        try:
            with self.client() as client:
                client.get("/_ping")
        except httpx.TimeoutException:
            return True  # busy, not gone
        except httpx.HTTPError:
            return False
        return True

    def containers(self, all: bool = False, label: str | None = None) -> list[dict]:
        params = {"all": "1" if all else "0"}
        if label:
            params["filters"] = json.dumps({"label": [label]})
        return self.call("GET", "/containers/json", params=params).json()

    def run(self, name: str, body: dict) -> str:
        """``docker run -d``: create, then start; returns the container's ID."""
        created = self.call("POST", "/containers/create", params={"name": name}, json=body)
        container = created.json()["Id"]
        self.call("POST", f"/containers/{container}/start")
        return container

    def remove(self, container: str) -> None:
        """``docker rm -f -v``; a container already gone is fine."""
        try:
            self.call("DELETE", f"/containers/{container}", params={"force": "1", "v": "1"})
        except EngineError as exc:
            if "No such container" not in str(exc):
                raise

    def has_network(self, name: str) -> bool:
        try:
            self.call("GET", f"/networks/{name}")
            return True
        except EngineError:
            return False

    def logs(self, container: str) -> bytes:
        return self.call("GET", f"/containers/{container}/logs",
                         params={"stdout": "1", "stderr": "1"}).content
