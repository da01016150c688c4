"""Stage 11: minidocker's registry server, held to the OCI distribution spec (spec.md).

Written from the spec's four workflows — pull, push, content discovery, content management —
with the corner cases it names, then the hostile table: traversal in names, bad digests,
blobs that lie about their digest, manifests naming missing blobs, oversized manifests,
another repository's upload, many clients pushing one blob at once. The server runs as
``minidocker registry serve`` in this session's private network namespace.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import socket
import time

import httpx
import pytest

from tests.registry_helpers import (
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    error_code,
    image_manifest,
    minidocker_registry,
    push_blob,
    push_image,
    put_manifest,
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    server = minidocker_registry(folder / "root", folder / "serve.log")
    server.root = folder / "root"
    yield server
    server.stop()


@pytest.fixture
def client(registry):
    with httpx.Client(base_url=registry.url, timeout=60) as c:
        yield c


def blob_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "docker/registry/v2/blobs")
                  .rglob("*") if p.is_file())


# Pull ("Pulling manifests", "Pulling blobs", "Checking if content exists")

def test_api_version_check_and_the_version_header_on_every_response(client):
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    missing = client.get("/v2/nothing/here/manifests/latest")
    assert missing.status_code == 404
    assert missing.headers["docker-distribution-api-version"] == "registry/2.0"
    assert error_code(missing) == "MANIFEST_UNKNOWN"


def test_pull_manifest_by_tag_and_digest_gives_the_stored_bytes(client):
    manifest, digest = push_image(client, "pull/app", "v1", [b"layer one"])
    assert digest == digest_of(manifest)
    for reference in ("v1", digest):
        got = client.get(f"/v2/pull/app/manifests/{reference}",
                         headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == manifest
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == digest
        head = client.head(f"/v2/pull/app/manifests/{reference}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(manifest))
        assert head.headers["docker-content-digest"] == digest


def test_pull_blob_whole_head_and_ranges(client):
    data = bytes(range(256)) * 40
    digest = push_blob(client, "pull/blob", data)
    got = client.get(f"/v2/pull/blob/blobs/{digest}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["docker-content-digest"] == digest
    head = client.head(f"/v2/pull/blob/blobs/{digest}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    part = client.get(f"/v2/pull/blob/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(f"/v2/pull/blob/blobs/{digest}", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    clamped = client.get(f"/v2/pull/blob/blobs/{digest}", headers={"Range": "bytes=10000-99999"})
    assert clamped.status_code == 206 and clamped.content == data[10000:]
    assert clamped.headers["content-length"] == str(len(data) - 10000)
    for unsatisfiable in (f"bytes={len(data) + 5}-", "bytes=500-0", "bytes=-0"):
        refused = client.get(f"/v2/pull/blob/blobs/{digest}", headers={"Range": unsatisfiable})
        assert refused.status_code == 416
        assert refused.headers["content-range"] == f"bytes */{len(data)}"
    ignored = client.get(f"/v2/pull/blob/blobs/{digest}", headers={"Range": "bytes=0-1,5-6"})
    assert ignored.status_code == 200 and ignored.content == data  # RFC 9110 allows ignoring


def test_pulling_what_is_not_there_is_404_with_the_spec_codes(client):
    absent = digest_of(b"never pushed")
    assert error_code(client.get(f"/v2/pull/none/blobs/{absent}")) == "BLOB_UNKNOWN"
    assert client.head(f"/v2/pull/none/blobs/{absent}").status_code == 404
    assert error_code(client.get(f"/v2/pull/none/manifests/{absent}")) == "MANIFEST_UNKNOWN"
    assert client.head("/v2/pull/none/manifests/latest").status_code == 404


# Push ("Pushing blobs", "Pushing a blob in chunks", "Mounting a blob", "Pushing Manifests")

def test_post_then_put_answers_exactly_as_the_spec_says(client):
    started = client.post("/v2/push/mono/blobs/uploads/")
    assert started.status_code == 202
    assert started.headers["range"] == "0-0"
    upload_id = started.headers["docker-upload-uuid"]
    assert started.headers["location"].endswith(f"/blobs/uploads/{upload_id}")
    digest = digest_of(b"monolithic")
    done = client.put(started.headers["location"], params={"digest": digest},
                      content=b"monolithic")
    assert done.status_code == 201
    assert done.headers["docker-content-digest"] == digest
    assert client.get(done.headers["location"]).content == b"monolithic"


def test_single_post_push(client):
    digest = digest_of(b"one request")
    done = client.post("/v2/push/single/blobs/uploads/", params={"digest": digest},
                       content=b"one request")
    assert done.status_code == 201
    assert client.get(f"/v2/push/single/blobs/{digest}").content == b"one request"


def test_chunks_with_content_range_416_out_of_order_and_resume(client):
    data = os.urandom(3000)
    location = client.post("/v2/push/chunks/blobs/uploads/").headers["location"]
    first = client.patch(location, content=data[:1000],
                         headers={"Content-Range": "0-999", "Content-Type":
                                  "application/octet-stream"})
    assert first.status_code == 202 and first.headers["range"] == "0-999"
    location = first.headers["location"]
    skipped = client.patch(location, content=data[2000:], headers={"Content-Range": "2000-2999"})
    assert skipped.status_code == 416 and error_code(skipped) == "BLOB_UPLOAD_INVALID"
    assert skipped.headers["range"] == "0-999" and skipped.headers["location"] == location
    wrong_length = client.patch(location, content=data[1000:1500],
                                headers={"Content-Range": "1000-1999"})
    assert wrong_length.status_code == 416 and wrong_length.headers["range"] == "0-999"
    status = client.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-999"
    second = client.patch(status.headers["location"], content=data[1000:2000],
                          headers={"Content-Range": "1000-1999"})
    assert second.status_code == 202 and second.headers["range"] == "0-1999"
    done = client.put(location, params={"digest": digest_of(data)}, content=data[2000:],
                      headers={"Content-Range": "2000-2999"})
    assert done.status_code == 201
    assert client.get(f"/v2/push/chunks/blobs/{digest_of(data)}").content == data


def test_http_chunked_patch_bodies_without_content_range(client):
    """skopeo and podman stream a layer as one PATCH with Transfer-Encoding: chunked."""
    pieces = [os.urandom(70_000) for _ in range(5)]
    data = b"".join(pieces)
    location = client.post("/v2/push/streamed/blobs/uploads/").headers["location"]
    patched = client.patch(location, content=iter(pieces))  # an iterator is sent chunked
    assert patched.status_code == 202 and patched.headers["range"] == f"0-{len(data) - 1}"
    more = client.patch(patched.headers["location"], content=iter([b"tail"]))
    assert more.headers["range"] == f"0-{len(data) + 3}"
    done = client.put(more.headers["location"], params={"digest": digest_of(data + b"tail")})
    assert done.status_code == 201


def test_sha512_blobs_and_manifests(registry, client):
    data = b"hashed with sha512"
    digest = digest_of(data, "sha512")
    started = client.post("/v2/push/sha512/blobs/uploads/",
                          params={"digest-algorithm": "sha512"})
    assert started.status_code == 202
    client.patch(started.headers["location"], content=data)
    done = client.put(started.headers["location"], params={"digest": digest})
    assert done.status_code == 201 and done.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/push/sha512/blobs/{digest}").content == data
    assert (registry.root / "docker/registry/v2/blobs/sha512" / digest[7:9] / digest[7:]
            / "data").read_bytes() == data
    config = b'{"architecture":"amd64","os":"linux"}'
    push_blob(client, "push/sha512", config)
    manifest = json.loads(image_manifest(config, []))
    manifest["layers"] = [{"mediaType": OCI_LAYER, "digest": digest, "size": len(data)}]
    body = json.dumps(manifest).encode()
    by_digest = digest_of(body, "sha512")
    pushed = put_manifest(client, "push/sha512", by_digest, body)
    assert pushed.status_code == 201 and pushed.headers["docker-content-digest"] == by_digest
    assert client.get(f"/v2/push/sha512/manifests/{by_digest}").content == body


def test_cancel_an_upload(client):
    location = client.post("/v2/push/cancel/blobs/uploads/").headers["location"]
    client.patch(location, content=b"half")
    assert client.delete(location).status_code == 204
    gone = client.get(location)
    assert gone.status_code == 404 and error_code(gone) == "BLOB_UPLOAD_UNKNOWN"


def test_cross_repository_mount(client):
    digest = push_blob(client, "mount/source", b"shared layer")
    mounted = client.post("/v2/mount/target/blobs/uploads/",
                          params={"mount": digest, "from": "mount/source"})
    assert mounted.status_code == 201
    assert mounted.headers["docker-content-digest"] == digest
    assert client.get(mounted.headers["location"]).content == b"shared layer"
    unknown = client.post("/v2/mount/target/blobs/uploads/",
                          params={"mount": digest_of(b"elsewhere"), "from": "mount/source"})
    assert unknown.status_code == 202 and "docker-upload-uuid" in unknown.headers
    anonymous = client.post("/v2/mount/anywhere/blobs/uploads/", params={"mount": digest})
    assert anonymous.status_code == 201  # no 'from': any repository that has it
    assert client.get(f"/v2/mount/anywhere/blobs/{digest}").content == b"shared layer"


def test_push_manifest_keeps_bytes_and_answers_201_with_digest(client):
    manifest, digest = push_image(client, "push/manifest", "latest", [b"a", b"b"])
    assert client.get("/v2/push/manifest/manifests/latest").content == manifest
    again = put_manifest(client, "push/manifest", digest, manifest)
    assert again.status_code == 201
    assert again.headers["location"] == f"/v2/push/manifest/manifests/{digest}"
    tagged = client.put(f"/v2/push/manifest/manifests/{digest}", content=manifest,
                        params=[("tag", "one"), ("tag", "two")],
                        headers={"Content-Type": OCI_MANIFEST})
    assert tagged.status_code == 201 and tagged.headers["oci-tag"] == "one, two"
    assert client.get("/v2/push/manifest/tags/list").json()["tags"] == ["latest", "one", "two"]


def test_manifest_media_type_must_match_content_type(client):
    config = b"{}"
    push_blob(client, "push/types", config)
    body = image_manifest(config, [])
    wrong = put_manifest(client, "push/types", "v1", body,
                         media_type="application/vnd.docker.distribution.manifest.v2+json")
    assert wrong.status_code == 400 and error_code(wrong) == "MANIFEST_INVALID"
    for bad in (b"not json", b"[]", b'{"schemaVersion": 1}', b"[" * 200_000,
                b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'"}',
                b'{"schemaVersion": 2, "config": {"digest": "sha256:nothex"}, "layers": []}'):
        refused = put_manifest(client, "push/types", "v1", bad)
        assert refused.status_code == 400 and error_code(refused) == "MANIFEST_INVALID"


def test_non_distributable_layers_need_not_be_in_the_registry(client):
    config = b'{"os":"linux"}'
    push_blob(client, "push/foreign", config)
    manifest = json.loads(image_manifest(config, []))
    manifest["layers"] = [descriptor("application/vnd.oci.image.layer.nondistributable.v1"
                                     ".tar+gzip", b"windows base layer",
                                     urls=["https://example.com/layer"])]
    assert put_manifest(client, "push/foreign", "v1",
                        json.dumps(manifest).encode()).status_code == 201


def test_an_index_needs_its_manifests_in_the_repository(client):
    manifest, digest = push_image(client, "push/index", "amd64", [b"x"])
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
         "platform": {"architecture": "amd64", "os": "linux"}}]}
    pushed = put_manifest(client, "push/index", "latest", json.dumps(index).encode(), OCI_INDEX)
    assert pushed.status_code == 201
    assert client.get("/v2/push/index/manifests/latest").headers["content-type"] == OCI_INDEX
    index["manifests"][0]["digest"] = digest_of(b"no such manifest")
    refused = put_manifest(client, "push/index", "bad", json.dumps(index).encode(), OCI_INDEX)
    assert error_code(refused) == "MANIFEST_BLOB_UNKNOWN"


# Content discovery ("Listing Tags", "Listing Referrers", _catalog)

def test_tags_list_sorted_and_paginated(client):
    manifest, digest = push_image(client, "discover/tags", "b", [b"t"])
    for tag in ("a", "C", "c", "B10", "B2"):
        assert put_manifest(client, "discover/tags", tag, manifest).status_code == 201
    everything = client.get("/v2/discover/tags/tags/list").json()
    assert everything == {"name": "discover/tags", "tags": ["B10", "B2", "C", "a", "b", "c"]}
    first = client.get("/v2/discover/tags/tags/list", params={"n": 2})
    assert first.json()["tags"] == ["B10", "B2"]
    assert first.headers["link"] == '</v2/discover/tags/tags/list?n=2&last=B2>; rel="next"'
    following = client.get(first.headers["link"].split(";")[0].strip("<>"))
    assert following.json()["tags"] == ["C", "a"]
    last = client.get("/v2/discover/tags/tags/list", params={"n": 10, "last": "a"})
    assert last.json()["tags"] == ["b", "c"] and "link" not in last.headers
    none = client.get("/v2/discover/tags/tags/list", params={"n": 0})
    assert none.json()["tags"] == [] and "link" not in none.headers
    unknown = client.get("/v2/discover/nothing/tags/list")
    assert unknown.status_code == 404 and error_code(unknown) == "NAME_UNKNOWN"


def test_referrers_list_subjects_with_artifact_type_filter(client):
    image, image_digest = push_image(client, "discover/refs", "v1", [b"app"])
    empty = client.get(f"/v2/discover/refs/referrers/{image_digest}")
    assert empty.status_code == 200
    assert empty.headers["content-type"] == OCI_INDEX
    assert empty.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    subject = {"mediaType": OCI_MANIFEST, "digest": image_digest, "size": len(image)}
    push_blob(client, "discover/refs", b"{}")
    signature = json.loads(image_manifest(b"{}", [b"sig"]))
    signature |= {"artifactType": "application/vnd.example.signature", "subject": subject,
                  "annotations": {"org.example.signer": "me"}}
    signature["config"]["mediaType"] = "application/vnd.oci.empty.v1+json"
    sbom = json.loads(image_manifest(b"{}", [b"sbom"]))
    sbom["config"]["mediaType"] = "application/vnd.example.sbom.config"
    sbom["subject"] = subject
    push_blob(client, "discover/refs", b"sig")
    push_blob(client, "discover/refs", b"sbom")
    digests = {}
    for label, manifest in (("signature", signature), ("sbom", sbom)):
        body = json.dumps(manifest).encode()
        pushed = put_manifest(client, "discover/refs", digest_of(body), body)
        assert pushed.status_code == 201 and pushed.headers["oci-subject"] == image_digest
        digests[label] = pushed.headers["docker-content-digest"]
    listed = client.get(f"/v2/discover/refs/referrers/{image_digest}").json()["manifests"]
    by_digest = {d["digest"]: d for d in listed}
    assert set(by_digest) == set(digests.values())
    assert by_digest[digests["signature"]]["artifactType"] == "application/vnd.example.signature"
    assert by_digest[digests["signature"]]["annotations"] == {"org.example.signer": "me"}
    assert by_digest[digests["sbom"]]["artifactType"] == "application/vnd.example.sbom.config"
    filtered = client.get(f"/v2/discover/refs/referrers/{image_digest}",
                          params={"artifactType": "application/vnd.example.signature"})
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [digests["signature"]]
    bad = client.get("/v2/discover/refs/referrers/sha256:abc")
    assert bad.status_code == 400 and error_code(bad) == "DIGEST_INVALID"


def test_a_subject_may_be_pushed_after_its_referrer(client):
    future = digest_of(b"an image not pushed yet")
    push_blob(client, "discover/early", b"{}")
    body = image_manifest(b"{}", [], subject={"mediaType": OCI_MANIFEST, "digest": future,
                                               "size": 10})
    assert put_manifest(client, "discover/early", "sig", body).status_code == 201
    listed = client.get(f"/v2/discover/early/referrers/{future}").json()["manifests"]
    assert [d["digest"] for d in listed] == [digest_of(body)]


def test_catalog(client):
    push_image(client, "catalog/one", "v1", [b"1"])
    push_image(client, "catalog/two/deep", "v1", [b"2"])
    push_blob(client, "catalog/only/blobs", b"no manifest yet")
    names = client.get("/v2/_catalog").json()["repositories"]
    assert {"catalog/one", "catalog/two/deep"} <= set(names) and names == sorted(names)
    assert "catalog/only/blobs" not in names  # as distribution: a repository has a manifest
    page = client.get("/v2/_catalog", params={"n": 1})
    assert len(page.json()["repositories"]) == 1 and 'rel="next"' in page.headers["link"]


# Content management ("Deleting tags", "Deleting Manifests", "Deleting Blobs")

def test_delete_tag_manifest_and_blob(client):
    manifest, digest = push_image(client, "manage/app", "v1", [b"to delete"])
    put_manifest(client, "manage/app", "v2", manifest)
    assert client.delete("/v2/manage/app/manifests/v1").status_code == 202
    assert client.get("/v2/manage/app/manifests/v1").status_code == 404
    assert client.get(f"/v2/manage/app/manifests/{digest}").status_code == 200
    assert client.delete(f"/v2/manage/app/manifests/{digest}").status_code == 202
    assert client.get("/v2/manage/app/manifests/v2").status_code == 404
    assert client.get(f"/v2/manage/app/manifests/{digest}").status_code == 404
    layer = digest_of(b"to delete")
    assert client.delete(f"/v2/manage/app/blobs/{layer}").status_code == 202
    assert error_code(client.get(f"/v2/manage/app/blobs/{layer}")) == "BLOB_UNKNOWN"
    assert client.delete(f"/v2/manage/app/blobs/{layer}").status_code == 404
    assert client.delete("/v2/manage/app/manifests/v1").status_code == 404


def test_deleting_a_referrer_removes_it_from_the_list(client):
    image, image_digest = push_image(client, "manage/refs", "v1", [b"i"])
    push_blob(client, "manage/refs", b"{}")
    body = image_manifest(b"{}", [], subject={"mediaType": OCI_MANIFEST,
                                               "digest": image_digest, "size": len(image)})
    digest = put_manifest(client, "manage/refs", digest_of(body), body).headers[
        "docker-content-digest"]
    assert client.delete(f"/v2/manage/refs/manifests/{digest}").status_code == 202
    assert client.get(f"/v2/manage/refs/referrers/{image_digest}").json()["manifests"] == []


def test_garbage_collect_sweeps_only_unreferenced_blobs(tmp_path, md):
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=server.url) as client:
            push_image(client, "gc/keep", "v1", [b"kept layer"])
            _, gone = push_image(client, "gc/drop", "v1", [b"dropped layer"])
            client.delete(f"/v2/gc/drop/manifests/{gone}")
            push_blob(client, "gc/drop", b"never referenced")
    finally:
        server.stop()
    root = str(tmp_path / "root")
    dry = md("registry", "garbage-collect", "--dry-run", "--root", root)
    assert dry.returncode == 0, dry.stderr
    doomed = {digest_of(b"dropped layer"), digest_of(b"never referenced"), gone}
    assert {line.split()[-1] for line in dry.stdout.splitlines()
            if line.startswith("would delete")} == doomed
    before = blob_files(tmp_path / "root")
    assert md("registry", "garbage-collect", "--root", root).returncode == 0
    after = blob_files(tmp_path / "root")
    assert len(before) - len(after) == 3
    assert any(digest_of(b"kept layer")[7:] in path for path in after)
    assert not (tmp_path / "root/docker/registry/v2/repositories/gc/drop/_layers/sha256"
                / digest_of(b"dropped layer")[7:]).exists()


# Hostile requests (issue 13, item 10)

@pytest.mark.parametrize("path", [
    "/v2/../../etc/tags/list",
    "/v2/%2e%2e/%2e%2e/etc/tags/list",
    "/v2/a/%2e%2e/%2e%2e/%2e%2e/etc/blobs/sha256:" + "0" * 64,
    "/v2/a/..%2f..%2fetc/manifests/latest",
    "/v2/UPPER/tags/list",
    "/v2/a//b/tags/list",
    "/v2/_layers/tags/list",
])
def test_traversal_and_bad_names_are_name_invalid(registry, path):
    connection = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=10)
    connection.request("GET", path)  # sent as is: http.client does not normalise the path
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 400 and body["errors"][0]["code"] == "NAME_INVALID"
    assert response.getheader("docker-distribution-api-version") == "registry/2.0"
    assert not (registry.root.parent / "etc").exists()


@pytest.mark.parametrize("digest", [
    "md5:d41d8cd98f00b204e9800998ecf8427e",  # an algorithm this registry cannot verify
    "sha256:abc",  # too short
    "sha256:" + "0" * 65,  # too long
    "sha256:" + "A" * 64,  # uppercase hex
    "sha512:" + "0" * 64,  # a sha256 length under sha512
    "sha256:baddigeststring",
    "sha256:" + "0" * 62 + "..",
])
def test_bad_digests_are_digest_invalid_400(client, digest):
    push_blob(client, "hostile/digest", b"x")
    location = client.post("/v2/hostile/digest/blobs/uploads/").headers["location"]
    for response in (client.get(f"/v2/hostile/digest/blobs/{digest}"),
                     client.delete(f"/v2/hostile/digest/blobs/{digest}"),
                     client.get(f"/v2/hostile/digest/manifests/{digest}"),
                     put_manifest(client, "hostile/digest", digest, image_manifest(b"x", [])),
                     client.get(f"/v2/hostile/digest/referrers/{digest}"),
                     client.post("/v2/hostile/digest/blobs/uploads/",
                                 params={"digest": digest}, content=b"x"),
                     client.post("/v2/hostile/digest/blobs/uploads/",
                                 params={"mount": digest, "from": "hostile/digest"}),
                     client.put(location, params={"digest": digest}, content=b"x")):
        assert response.status_code == 400, response.request
        assert error_code(response) == "DIGEST_INVALID"
    algorithm = client.post("/v2/hostile/digest/blobs/uploads/",
                            params={"digest-algorithm": "md5"})
    assert algorithm.status_code == 400 and error_code(algorithm) == "DIGEST_INVALID"


def test_a_blob_that_does_not_match_its_digest_is_refused(registry, client):
    claimed = digest_of(b"what the client claims")
    single = client.post("/v2/hostile/liar/blobs/uploads/", params={"digest": claimed},
                         content=b"something else")
    assert single.status_code == 400 and error_code(single) == "DIGEST_INVALID"
    location = client.post("/v2/hostile/liar/blobs/uploads/").headers["location"]
    client.patch(location, content=b"something else")
    closing = client.put(location, params={"digest": claimed})
    assert closing.status_code == 400 and error_code(closing) == "DIGEST_INVALID"
    assert client.head(f"/v2/hostile/liar/blobs/{claimed}").status_code == 404
    assert not any(claimed[7:] in path for path in blob_files(registry.root))
    assert client.get(location).status_code == 404  # the upload is gone, not half-stored


def test_a_manifest_naming_missing_blobs_is_refused_and_not_stored(client):
    push_blob(client, "hostile/missing", b"{}")
    body = image_manifest(b"{}", [b"never uploaded"])
    refused = put_manifest(client, "hostile/missing", "v1", body)
    assert refused.status_code == 400 and error_code(refused) == "MANIFEST_BLOB_UNKNOWN"
    assert refused.json()["errors"][0]["detail"] == [
        {"kind": "blob", "digest": digest_of(b"never uploaded")}]
    assert client.get("/v2/hostile/missing/manifests/v1").status_code == 404
    assert client.get(f"/v2/hostile/missing/manifests/{digest_of(body)}").status_code == 404


def test_oversized_manifests_are_413(client):
    push_blob(client, "hostile/big", b"{}")
    huge = json.loads(image_manifest(b"{}", []))
    huge["annotations"] = {"padding": "x" * (4 << 20)}
    body = json.dumps(huge).encode()
    assert put_manifest(client, "hostile/big", "v1", body).status_code == 413
    streamed = client.put("/v2/hostile/big/manifests/v1", content=iter([body[:1 << 20]] * 5),
                          headers={"Content-Type": OCI_MANIFEST})
    assert streamed.status_code == 413
    assert client.get("/v2/hostile/big/manifests/v1").status_code == 404


def test_an_upload_of_another_repository_is_unknown(client):
    location = client.post("/v2/hostile/owner/blobs/uploads/").headers["location"]
    client.patch(location, content=b"mine")
    stolen = location.replace("/hostile/owner/", "/hostile/thief/")
    digest = digest_of(b"mine")
    for response in (client.get(stolen), client.patch(stolen, content=b"theirs"),
                     client.put(stolen, params={"digest": digest}), client.delete(stolen)):
        assert response.status_code == 404 and error_code(response) == "BLOB_UPLOAD_UNKNOWN"
    assert client.get(location).headers["range"] == "0-3"
    assert client.put(location, params={"digest": digest}).status_code == 201
    bogus = client.get("/v2/hostile/owner/blobs/uploads/not-a-uuid")
    assert bogus.status_code == 404 and error_code(bogus) == "BLOB_UPLOAD_UNKNOWN"


def test_a_client_that_hangs_up_mid_chunk_can_resume(registry, client):
    data = os.urandom(5000)
    location = client.post("/v2/hostile/cut/blobs/uploads/").headers["location"]
    with socket.create_connection(("127.0.0.1", registry.port)) as raw:
        raw.sendall(f"PATCH {location} HTTP/1.1\r\nHost: registry\r\n"
                    "Content-Length: 5000\r\n\r\n".encode() + data[:1000])
        time.sleep(0.3)  # the server has taken the first 1000 bytes when the client goes
    deadline = time.monotonic() + 5
    while client.get(location).headers["range"] != "0-999" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(location).headers["range"] == "0-999"
    rest = client.put(location, params={"digest": digest_of(data)}, content=data[1000:],
                      headers={"Content-Range": "1000-4999"})
    assert rest.status_code == 201
    assert "Traceback" not in registry.log.read_text()


def test_bad_tags_and_bad_pagination_are_400(client):
    manifest = image_manifest(b"{}", [])
    assert error_code(put_manifest(client, "hostile/tags", "-bad", manifest)) == \
        "MANIFEST_INVALID"
    assert client.get("/v2/hostile/tags/manifests/" + "t" * 129).status_code == 400
    push_image(client, "hostile/tags", "v1", [])
    assert client.get("/v2/hostile/tags/tags/list", params={"n": "-1"}).status_code == 400


def test_unknown_routes_and_methods_answer_in_the_spec_error_body(client):
    assert error_code(client.get("/v3/")) == "NAME_UNKNOWN"
    refused = client.post("/v2/hostile/x/manifests/latest")
    assert refused.status_code == 405 and error_code(refused) == "UNSUPPORTED"


def test_concurrent_pushes_of_one_blob_leave_one_intact_blob(registry):
    data = os.urandom(1 << 20)
    digest = digest_of(data)

    def push(i: int) -> int:
        with httpx.Client(base_url=registry.url, timeout=120) as c:
            location = c.post("/v2/hostile/race/blobs/uploads/").headers["location"]
            half = len(data) // 2
            c.patch(location, content=data[:half], headers={"Content-Range": f"0-{half - 1}"})
            return c.put(location, params={"digest": digest}, content=data[half:]).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        assert set(pool.map(push, range(100))) == {201}
    stored = registry.root / "docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:]
    assert [p.name for p in stored.iterdir()] == ["data"]
    assert digest_of((stored / "data").read_bytes()) == digest
    uploads = registry.root / "docker/registry/v2/repositories/hostile/race/_uploads"
    assert not any(uploads.iterdir())
    with httpx.Client(base_url=registry.url) as c:
        assert c.get(f"/v2/hostile/race/blobs/{digest}").content == data


@pytest.mark.slow
def test_a_large_upload_streams_to_disk_with_flat_memory(tmp_path):
    """300 MB in ten chunked PATCHes: the server's memory must not grow with the blob."""
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log")
    try:
        block = os.urandom(1 << 20)
        with httpx.Client(base_url=server.url, timeout=300) as client:
            client.get("/v2/")
            baseline, peak = server.memory(), 0
            location = client.post("/v2/big/blob/blobs/uploads/").headers["location"]
            whole = hashlib.sha256()
            for chunk in range(10):
                piece = bytes([chunk]) + block[1:]
                for _ in range(30):
                    whole.update(piece)
                response = client.patch(location, content=iter([piece] * 30))
                assert response.status_code == 202
                peak = max(peak, server.memory())
            digest = "sha256:" + whole.hexdigest()
            done = client.put(response.headers["location"], params={"digest": digest})
            assert done.status_code == 201
            peak = max(peak, server.memory())
            head = client.head(f"/v2/big/blob/blobs/{digest}")
            assert head.headers["content-length"] == str(300 << 20)
        growth = peak - baseline
        print(f"registry RSS: {baseline >> 20} MiB at rest, +{growth >> 20} MiB at peak "
              "during a 300 MiB upload")
        assert growth < 50 << 20
    finally:
        server.stop()
