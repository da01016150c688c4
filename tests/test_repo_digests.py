"""Stage 11, RepoDigests: the digest a registry knows an image by, remembered per repository
after a pull or a push, shown by ``image inspect`` and ``images --digests``, and usable as
``name@sha256:...`` by run, create, pull, image inspect, tag and rmi — against minidocker's own
registry on loopback of the test session's private network namespace."""

import json

import pytest

from minidocker.cli.formatting import image_rows
from minidocker.image.store import Image
from tests import test_pull_push as client_tests
from tests.conftest import minidocker
from tests.registry_helpers import minidocker_registry

fresh = client_tests.fresh  # the fixture: a state root of its own for each test
ok, refused = client_tests.ok, client_tests.refused

ID = "sha256:" + "ab" * 32
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """busybox pushed as <registry>/busybox:digests; yields (name, repository, digest)."""
    folder = tmp_path_factory.mktemp("digests-registry")
    server = minidocker_registry(folder / "storage", folder / "serve.log")
    name = f"{server.host}/busybox:digests"
    ok(minidocker("tag", "busybox", name))
    digest = ok(minidocker("push", name)).split("digest: ")[1].split()[0]
    yield name, f"{server.host}/busybox", digest
    minidocker("rmi", name)
    server.stop()


def inspect(run, name: str, field: str) -> str:
    return ok(run("image", "inspect", "-f", "{{json ." + field + "}}", name)).strip()


def engine_image_list(run, monkeypatch) -> list[dict]:
    """What the daemon's ``GET /images/json`` answers over ``run``'s state root."""
    from starlette.requests import Request

    from minidocker.daemon.images import image_list

    monkeypatch.setenv("MINIDOCKER_ROOT", str(run.root))
    request = Request({"type": "http", "method": "GET", "path": "/images/json",
                       "query_string": b"", "headers": []})
    return json.loads(image_list(request).body)


def test_a_push_and_a_pull_remember_the_registrys_digest(pushed, fresh, monkeypatch):
    name, repository, digest = pushed
    assert f'"{repository}@{digest}"' in inspect(minidocker, name, "RepoDigests")
    ok(fresh("pull", name))
    assert inspect(fresh, name, "RepoDigests") == f'["{repository}@{digest}"]'
    table = ok(fresh("images", "--digests")).splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED",
                                "SIZE"]
    assert table[1].split()[:3] == [repository, "digests", digest]
    assert ok(fresh("images", "--format", "{{.Digest}}")).strip() == digest
    assert engine_image_list(fresh, monkeypatch)[0]["RepoDigests"] == \
        [f"{repository}@{digest}"]
    # moby's rule: with the repository's last tag go its digests, and the image
    assert ok(fresh("rmi", name)).splitlines()[:2] == [f"Untagged: {name}",
                                                       f"Untagged: {repository}@{digest}"]
    assert (fresh.root / "repodigests.json").read_text().strip() == "{}"


def test_a_digest_reference_names_the_image_everywhere(pushed, fresh):
    _, repository, digest = pushed
    pinned = f"{repository}@{digest}"
    result = fresh("run", "--rm", "--network", "none", pinned, "echo", "by digest")
    assert result.stdout == "by digest\n", result.stderr
    assert f"Unable to find image '{pinned}' locally" in result.stderr
    assert f"Digest: {digest}" in result.stderr
    # pulled by digest: no tag, so dangling as dockerd 20.10 says (yet listed by
    # dangling=false too: it has a name), and found by that name without a pull
    assert ok(fresh("images")).splitlines()[1].split()[:2] == [repository, "<none>"]
    for dangling in ("true", "false"):
        assert ok(fresh("images", "-q", "--filter", f"dangling={dangling}")) != ""
    again = fresh("create", "--network", "none", pinned, "true")
    assert "Unable to find" not in again.stderr and ok(again)
    ok(fresh("rm", again.stdout.strip()))
    assert "Image is up to date" in ok(fresh("pull", pinned))
    assert inspect(fresh, pinned, "RepoDigests") == f'["{pinned}"]'
    ok(fresh("tag", pinned, "mine:1"))
    assert inspect(fresh, "mine:1", "RepoTags") == '["mine:1"]'
    assert ok(fresh("rmi", pinned)) == f"Untagged: {pinned}\n"  # mine:1 keeps the image
    assert "No such object" in refused(fresh("image", "inspect", pinned))
    assert "invalid reference format" in refused(fresh("image", "inspect",
                                                       f"{repository}@sha256:12"))
    assert ok(fresh("rmi", "mine:1")).splitlines()[-1].startswith("Deleted: sha256:")
    ok(fresh("pull", pinned))  # dangling, so image prune takes it, as dockerd 20.10 does
    assert ok(fresh("image", "prune", "-f")).startswith(
        f"Deleted Images:\nuntagged: {pinned}\ndeleted: sha256:")


def test_images_rows_follow_docker_cli():
    image = Image(ID, ID, {"layers": []}, {}, tags=["app:1", "app:2", "other:x"],
                  digests=[f"app@{D1}", f"gone@{D2}"])
    plain = [(r["Repository"], r["Tag"], r["Digest"]) for r in image_rows(image)]
    assert plain == [("app", "1", D1), ("app", "2", D1), ("other", "x", "<none>"),
                     ("gone", "<none>", D2)]
    image.digests.append(f"app@{D2}")
    shown = [(r["Tag"], r["Digest"]) for r in image_rows(image, digests=True)][:4]
    assert shown == [("1", D1), ("1", D2), ("2", D1), ("2", D2)]
    bare = Image(ID, ID, {"layers": []}, {})
    assert [(r["Repository"], r["Tag"]) for r in image_rows(bare)] == [("<none>", "<none>")]
