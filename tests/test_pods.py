"""Pods (stage 14): an infra container's namespaces and a volume shared by its members."""

import json
import os
import subprocess
import urllib.request

import pytest

from tests.conftest import minidocker as md

POD, PORT = "podt", 18080


def ok(*args: str) -> str:
    result = md(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def pid_of(container: str) -> int:
    return json.loads(ok("inspect", container))[0]["State"]["Pid"]


def veths() -> set[str]:
    """The veth devices of this network namespace (ip link asks netlink: /sys may show
    another namespace's)."""
    listing = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], check=True,
                             capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().partition("@")[0] for line in listing.splitlines()}


@pytest.fixture(scope="module")
def pod():
    """A pod with a published port and one member serving HTTP on port 80."""
    ok("pod", "create", "--name", POD, "-p", f"{PORT}:80", "--hostname", "podhost")
    ok("run", "-d", "--pod", POD, "--name", f"{POD}-web", "busybox", "sh", "-c",
       "echo served > /index.html; echo shm > /dev/shm/seg; echo vol > /shared/file; "
       "exec httpd -f -p 80 -h /")
    yield POD
    md("pod", "rm", "-f", POD)


def test_members_share_localhost_hostname_ipc_and_volume(pod):
    seen = ok("run", "--rm", "--pod", pod, "busybox", "sh", "-c",
              "hostname; wget -qO- 127.0.0.1/index.html; cat /dev/shm/seg /shared/file")
    assert seen.split() == ["podhost", "served", "shm", "vol"]


def test_the_kernel_shows_one_net_ipc_and_uts_namespace(pod):
    infra, web = pid_of(f"{pod}-infra"), pid_of(f"{pod}-web")
    for kind in ("net", "ipc", "uts"):
        assert os.readlink(f"/proc/{infra}/ns/{kind}") == os.readlink(f"/proc/{web}/ns/{kind}")
    assert os.readlink(f"/proc/{infra}/ns/mnt") != os.readlink(f"/proc/{web}/ns/mnt")


def test_the_pods_published_port_reaches_its_server(pod):
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/index.html", timeout=10) as reply:
        assert reply.read() == b"served\n"


def test_listing_and_label(pod):
    (shown,) = json.loads(ok("pod", "inspect", pod))
    assert shown["State"] == "Running" and shown["Hostname"] == "podhost"
    assert {c["Name"] for c in shown["Containers"]} == {f"{pod}-infra", f"{pod}-web"}
    assert ok("pod", "ls", "--format", "{{.Name}} {{.NumberOfContainers}}") == f"{pod} 2\n"
    members = ok("ps", "--filter", f"label=io.minidocker.pod={shown['Id']}", "--format",
                 "{{.Names}}").split()
    assert sorted(members) == [f"{pod}-infra", f"{pod}-web"]


@pytest.mark.parametrize(("args", "code", "complaint"), [
    (("rm", "-f", f"{POD}-infra"), 1, f"running container(s) {POD}-web share its namespaces"),
    (("run", "--rm", "--pod", POD, "-p", "81:81", "busybox", "true"), 125,
     "published ports belong to the pod's infra container"),
    (("run", "--rm", "--pod", POD, "--network", "none", "busybox", "true"), 125,
     "share its network"),
    (("run", "--rm", "--pod", "ghost", "busybox", "true"), 125, "no such pod: ghost"),
    (("pod", "rm", POD), 1, f"pod {POD} has running containers ({POD}-web)"),
    (("pod", "create", "--name", POD), 1, f"pod {POD} already exists"),
    (("pod", "create", "--name", "bad name"), 1, 'Invalid container name "bad name"'),
    (("pod", "create", POD), 1, f"pod {POD} already exists"),  # NAME, as podman's
    (("pod", "create", "--name", "one", "other"), 1,
     "cannot specify --name and NAME at the same time"),
])
def test_bad_input_is_one_line(pod, args, code, complaint):
    result = md(*args)
    assert (result.returncode, result.stderr.count("\n")) == (code, 1), result.stderr
    assert complaint in result.stderr


def status(pod: str) -> str:
    return ok("pod", "ls", "--format", "{{.Name}} {{.Status}}").partition(f"{pod} ")[2].split()[0]


def test_pod_stop_start_then_rm_leaves_nothing():
    before = veths()
    pod_id = ok("pod", "create", "gone").strip()  # the name as podman takes it, or --name
    assert status("gone") == "Created"
    ok("run", "-d", "--pod", "gone", "busybox", "sleep", "60")
    assert len(veths() - before) == 1  # the infra's end on the bridge
    ok("pod", "stop", "-t", "1", "gone")
    assert status("gone") == "Exited"
    ok("pod", "start", "gone")
    assert status("gone") == "Running"  # the infra, then its member, started again
    assert ok("pod", "rm", "-f", "gone").strip() == pod_id
    assert ok("ps", "-aq", "--filter", f"label=io.minidocker.pod={pod_id}") == ""
    assert "gone_shared" not in ok("volume", "ls", "-q").split()
    assert veths() <= before


def shares_the_infras_namespaces(pod: str, member: str) -> bool:
    infra, pid = pid_of(f"{pod}-infra"), pid_of(member)
    return all(os.readlink(f"/proc/{infra}/ns/{kind}") == os.readlink(f"/proc/{pid}/ns/{kind}")
               for kind in ("net", "ipc", "uts"))


def test_members_rejoin_the_namespaces_of_a_restarted_infra():
    """The infra restarted alone (``restart``), the pod stopped and started, ``pod restart``:
    each time the running member ends up in the infra's new namespaces, as podman's."""
    ok("pod", "create", "--name", "again", "--network", "none")  # no bridge: quicker
    try:
        ok("run", "-d", "--pod", "again", "--name", "again-web", "busybox", "sh", "-c",
           "trap 'exit 0' TERM; sleep 300 & wait")  # a prompt stop, each time
        first = pid_of("again-infra")
        ok("restart", "-t", "1", "again-infra")
        assert pid_of("again-infra") != first and shares_the_infras_namespaces("again",
                                                                               "again-web")
        for verbs in (["pod", "stop", "-t", "1", "again"], ["pod", "start", "again"]), \
                (["pod", "restart", "-t", "1", "again"],):
            before = pid_of("again-web")
            for verb in verbs:
                ok(*verb)
            assert status("again") == "Running" and pid_of("again-web") != before
            assert shares_the_infras_namespaces("again", "again-web")
    finally:
        md("pod", "rm", "-f", "again")


def test_an_infra_started_attached_moves_no_member_yet(monkeypatch):
    """``start -a`` of an infra: its container runs only once the client attaches, so its
    members are not restarted into namespaces that do not exist yet (fast: stubs, no kernel)."""
    import contextlib
    from types import SimpleNamespace

    from minidocker.container import lifecycle, monitor, records

    def stub(cid, labels, status, shared):
        return SimpleNamespace(Id=cid, status=status, State={}, RestartCount=0,
                               Config=SimpleNamespace(Labels=labels),
                               HostConfig=SimpleNamespace(shared=lambda: shared),
                               locked=contextlib.nullcontext)

    infra = stub("infra1", {lifecycle.POD_INFRA_LABEL: "true"}, "exited", {})
    member = stub("member1", {}, "running", {"net": "infra1"})
    restarted = []
    monkeypatch.setattr(monitor, "launch", lambda record, wait_for_attach: 0)
    monkeypatch.setattr(records, "all_records", lambda: [infra, member])
    monkeypatch.setattr(lifecycle, "refresh", lambda record: record)
    monkeypatch.setattr(lifecycle, "restart", lambda record: restarted.append(record.Id))
    lifecycle.start(infra, attach=True)
    assert restarted == []
    lifecycle.start(infra)
    assert restarted == ["member1"]


def test_pod_rm_keeps_a_shared_volume_another_container_uses():
    """``<pod>_shared`` is a named volume: a container outside the pod may mount it too, and
    then the pod (and so the volume) stays until that container goes."""
    ok("pod", "create", "--name", "lent", "--network", "none")
    try:
        ok("create", "--name", "lent-outsider", "-v", "lent_shared:/x", "busybox", "true")
        refused = md("pod", "rm", "-f", "lent")
        assert refused.returncode == 1 and "in use by container lent-outsider" in refused.stderr
        assert "lent_shared" in ok("volume", "ls", "-q").split()
        assert "lent" in ok("pod", "ls", "--format", "{{.Name}}").split()
        ok("rm", "lent-outsider")
        ok("pod", "rm", "lent")
        assert "lent_shared" not in ok("volume", "ls", "-q").split()
    finally:
        md("rm", "-f", "lent-outsider")
        md("pod", "rm", "-f", "lent")
