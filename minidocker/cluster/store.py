"""A client of etcd's v3 API through its JSON gateway: keys, leases, transactions, watches.

etcd speaks gRPC, and also serves the same API as JSON over HTTP (the grpc-gateway): each call
is a POST to ``/v3/<service>/<method>`` with the protobuf message as JSON. Keys and values are
bytes, so they travel base64-encoded; 64-bit numbers travel as strings. What the cluster uses:

- ``/v3/kv/put``, ``/v3/kv/range`` (a key, or every key with a prefix), ``/v3/kv/deleterange``;
- ``/v3/kv/txn``: *if* a comparison holds (this key was never created), *then* these writes —
  one atomic step, the building block of registration and leader election;
- ``/v3/lease/grant``, ``/v3/lease/keepalive``, ``/v3/lease/revoke``: a lease is a TTL; keys
  written with it vanish when it expires, so a node that stops renewing its lease disappears;
- ``/v3/watch``: one long response that streams, line by line, each change under a prefix.

With three members, the client tries each endpoint in turn: any member answers (a follower
forwards writes to the leader), so losing one costs one failed connection. The connection to a
member is kept open (HTTP keep-alive) from one call to the next: a TLS handshake with client
certificates costs both sides public-key operations, and the agents call every second.
(PyPI's ``etcd3`` client is unmaintained and needs protobuf 3; the gateway needs only httpx.)

Docs: etcd.io "gRPC gateway", api/etcdserverpb/rpc.proto. Used by: swarm.py, etcd.py,
tests/test_cluster.py.
"""

import base64
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from minidocker.cluster.etcd import CLIENT_CERT, CLIENT_PORT, EtcdError

TIMEOUT = 3.0
ELECTION_RETRIES = 10  # about 11 s of asking again while Raft elects a leader
MAX_OPERATIONS = 128  # etcd's --max-txn-ops: a bigger pass is written in several steps


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The first key after every key starting with ``prefix`` (etcd's ``range_end``): the
    prefix with its last byte plus one."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class Event:
    """One change seen by a watch: a PUT (with the new value) or a DELETE."""

    type: str
    key: str
    value: str | None
    revision: int


class Store:
    """An etcd client over the JSON gateway, with TLS client certificates."""

    def __init__(self, endpoints: list[str], pki: Path, timeout: float = TIMEOUT):
        self.endpoints = list(endpoints)
        self.tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.tls.load_cert_chain(pki / f"{CLIENT_CERT}.crt", pki / f"{CLIENT_CERT}.key")
        self.timeout = timeout
        self.lock = threading.Lock()
        self.clients: dict[str, httpx.Client] = {}  # endpoint -> its open connection(s)

    @classmethod
    def for_lab(cls, lab, timeout: float = TIMEOUT) -> "Store":
        endpoints = [f"https://{a}:{CLIENT_PORT}" for a in lab.etcd_addresses.values()]
        return cls(endpoints, Path(lab.directory) / "etcd" / "pki", timeout)

    # --- one call, to the first member that answers ---------------------------------------------

    def call(self, path: str, body: dict) -> dict:
        """One request; while the members elect a new leader (``leader changed``, ``no
        leader``: Raft's election after a member died) it is asked again, a few times."""
        for attempt in range(ELECTION_RETRIES):
            try:
                return self.call_once(path, body)
            except EtcdError as exc:
                if attempt == ELECTION_RETRIES - 1 or not any(
                        word in str(exc) for word in ("leader changed", "no leader")):
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def call_once(self, path: str, body: dict) -> dict:
        errors = []
        for endpoint in list(self.endpoints):
            try:
                response = self.client(endpoint).post(f"{endpoint}/v3/{path}", json=body)
            except httpx.HTTPError as exc:
                errors.append(f"{endpoint}: {exc or type(exc).__name__}")
                with self.lock:  # try the others first next time, on a new connection
                    self.endpoints.remove(endpoint)
                    self.endpoints.append(endpoint)
                    broken = self.clients.pop(endpoint, None)
                if broken:
                    broken.close()
                continue
            answer = response.json()
            if response.status_code != 200:
                raise EtcdError(f"etcd refused {path}: {answer.get('error') or answer}")
            return answer
        raise EtcdError("no etcd member answered: " + "; ".join(errors))

    def client(self, endpoint: str) -> httpx.Client:
        """The member's client, made at the first call: its connection stays open."""
        with self.lock:
            if endpoint not in self.clients:
                self.clients[endpoint] = httpx.Client(verify=self.tls, timeout=self.timeout)
            return self.clients[endpoint]

    def close(self) -> None:
        with self.lock:
            for client in self.clients.values():
                client.close()
            self.clients.clear()

    # --- keys ---------------------------------------------------------------------------------------

    def put(self, key: str, value: str, lease: int = 0) -> int:
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("kv/put", body)["header"]["revision"])

    def get(self, key: str) -> str | None:
        kvs = self.call("kv/range", {"key": b64(key)}).get("kvs", [])
        return unb64(kvs[0].get("value", "")) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[dict[str, str], int]:
        """Every key under ``prefix`` with its value, and the store's revision of that read
        (one consistent snapshot)."""
        answer = self.call("kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        values = {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in answer.get("kvs", [])}
        return values, int(answer["header"]["revision"])

    def delete(self, key: str, prefix: bool = False) -> int:
        body = {"key": b64(key)}
        if prefix:
            body["range_end"] = b64(prefix_end(key))
        return int(self.call("kv/deleterange", body).get("deleted", 0))

    def create(self, key: str, value: str, lease: int = 0) -> bool:
        """Put ``key`` only if it does not exist: a transaction (compare its create revision
        with 0, then put). True if this call created it."""
        put = {"key": b64(key), "value": b64(value)}
        if lease:
            put["lease"] = str(lease)
        answer = self.call("kv/txn", {
            "compare": [{"key": b64(key), "target": "CREATE", "result": "EQUAL",
                         "create_revision": "0"}],
            "success": [{"request_put": put}]})
        return bool(answer.get("succeeded"))

    def commit(self, puts: dict[str, str], deletes: list[str] = (),
               only_if: tuple[str, str] | None = None, unchanged: list[str] = (),
               since: int = 0) -> bool:
        """Several writes as one transaction: all of them, or none — and none unless key
        ``only_if[0]`` still holds ``only_if[1]`` (a leader writes only while it leads) and no
        key of ``unchanged`` was modified after revision ``since`` (nobody wrote it since we
        read it: optimistic concurrency)."""
        operations = [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in puts.items()]
        operations += [{"request_delete_range": {"key": b64(k)}} for k in deletes]
        compare = [{"key": b64(only_if[0]), "target": "VALUE", "result": "EQUAL",
                    "value": b64(only_if[1])}] if only_if else []
        for key in unchanged:  # still there, and not written since
            compare += [{"key": b64(key), "target": "CREATE", "result": "GREATER",
                         "create_revision": "0"},
                        {"key": b64(key), "target": "MOD", "result": "LESS",
                         "mod_revision": str(since + 1)}]
        for first in range(0, len(operations), MAX_OPERATIONS):
            answer = self.call("kv/txn", {"compare": compare,
                                          "success": operations[first:first + MAX_OPERATIONS]})
            if not answer.get("succeeded"):
                return False
        return True

    # --- leases -------------------------------------------------------------------------------------

    def grant(self, ttl: int) -> int:
        return int(self.call("lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew ``lease``; its TTL, or 0 if it has already expired (its keys are gone)."""
        answer = self.call("lease/keepalive", {"ID": str(lease)})
        return int(answer.get("result", answer).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        self.call("lease/revoke", {"ID": str(lease)})

    # --- watches ------------------------------------------------------------------------------------

    def watch(self, prefix: str, start_revision: int = 0) -> Iterator[Event]:
        """Every change under ``prefix`` after ``start_revision``, as it happens. The response
        never ends: each line of it is one JSON message (``created``, then events)."""
        request = {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}}
        if start_revision:
            request["create_request"]["start_revision"] = str(start_revision)
        for endpoint in list(self.endpoints):
            try:
                timeout = httpx.Timeout(self.timeout, read=None)
                with httpx.Client(verify=self.tls, timeout=timeout) as client, \
                        client.stream("POST", f"{endpoint}/v3/watch", json=request) as response:
                    for line in response.iter_lines():
                        result = json.loads(line).get("result", {})
                        yield from (self._event(e) for e in result.get("events", []))
            except httpx.HTTPError:
                continue
        raise EtcdError("no etcd member answered the watch")

    @staticmethod
    def _event(raw: dict) -> Event:
        kv = raw["kv"]
        value = unb64(kv["value"]) if "value" in kv else None
        return Event(raw.get("type", "PUT"), unb64(kv["key"]), value, int(kv["mod_revision"]))
