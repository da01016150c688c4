"""One handler per endpoint of the OCI distribution spec, named as the spec names it.

Each function reads its path parameters (checked by ``paths`` before they touch the disk),
calls the storage, and answers with exactly the status and headers the spec asks for. Errors
are raised as ``RegistryError`` and become the spec's JSON in ``app.py``. Request bodies are
never read whole: ``request.stream()`` hands over the bytes as they arrive (uvicorn has
already undone HTTP chunked transfer encoding), and the storage writes them to disk.

    end-1   GET        /v2/                                   api_version_check
    end-2   GET/HEAD   /v2/<name>/blobs/<digest>              pull_blob
    end-3   GET/HEAD   /v2/<name>/manifests/<reference>       pull_manifest
    end-4   POST       /v2/<name>/blobs/uploads/              start_blob_upload
    end-11  POST       ...uploads/?mount=<digest>&from=<name> (mount_blob, inside the above)
    end-5   PATCH      <blob-push-location>                   push_blob_chunk
    end-6   PUT        <blob-push-location>?digest=<digest>   close_blob_upload
    end-13  GET        <blob-push-location>                   get_blob_upload_status
    end-14  DELETE     <blob-push-location>                   cancel_blob_upload
    end-7   PUT        /v2/<name>/manifests/<reference>       push_manifest
    end-8   GET        /v2/<name>/tags/list                   list_tags
    end-9   DELETE     /v2/<name>/manifests/<reference>       delete_manifest
    end-10  DELETE     /v2/<name>/blobs/<digest>              delete_blob
    end-12  GET        /v2/<name>/referrers/<digest>          list_referrers
            GET        /v2/_catalog                           list_repositories

Spec: distribution-spec spec.md, "Endpoints" and the sections named in each docstring;
distribution's docs/spec/api.md for ``_catalog``. Model: distribution's
``registry/handlers/`` (blob.go, blobupload.go, manifests.go, tags.go, catalog.go).
Used by: notebook 11-registries (the recorded HTTP conversation of a push).
"""

import re
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from minidocker.registry import manifests
from minidocker.registry.errors import RegistryError
from minidocker.registry.paths import (
    ALGORITHMS,
    check_digest,
    check_name,
    check_tag,
    check_upload_id,
)
from minidocker.registry.storage import Storage

BYTE_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
CHUNK = 256 << 10
CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/[0-9*]+)?$")


def _storage(request: Request) -> Storage:
    return request.app.state.storage


def _name(request: Request) -> str:
    return check_name(request.path_params["name"])


def _digest(text: str) -> str:
    check_digest(text)
    return text


def _upload_location(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def _range(size: int) -> str:
    """The spec's ``Range: 0-<end-of-range>`` (no ``bytes=``): the last byte received."""
    return f"0-{max(size - 1, 0)}"


def _upload_headers(name: str, upload_id: str, size: int) -> dict:
    return {"Location": _upload_location(name, upload_id), "Docker-Upload-UUID": upload_id,
            "Range": _range(size)}


def _upload_response(status: int, name: str, upload_id: str, size: int) -> Response:
    return Response(status_code=status, headers=_upload_headers(name, upload_id, size))


def _where_it_stands(error: RegistryError, storage: Storage, name: str, upload_id: str):
    """A 416 carries the upload's ``Location`` and ``Range``, so the client resumes there."""
    if error.status == 416:
        error.headers |= _upload_headers(name, upload_id, storage.upload_size(name, upload_id))
    return error


def _created(location: str, digest: str, extra: dict | None = None) -> Response:
    headers = {"Location": location, "Docker-Content-Digest": digest}
    return Response(status_code=201, headers=headers | (extra or {}))


def _content_range(request: Request) -> tuple[int, int] | None:
    value = request.headers.get("content-range")
    if value is None:
        return None
    match = CONTENT_RANGE.match(value.strip())
    if not match or int(match[1]) > int(match[2]):
        raise RegistryError("BLOB_UPLOAD_INVALID", f"Content-Range {value!r} is not "
                            "<start>-<end>", status=416)
    return int(match[1]), int(match[2])


def _page(items: list[str], request: Request, path: str) -> tuple[list[str], dict]:
    """``n`` and ``last`` pagination with a ``Link: <...>; rel="next"`` header, as the spec
    asks for tags (and distribution does for the catalog)."""
    last, n = request.query_params.get("last"), request.query_params.get("n")
    if last is not None:
        items = [item for item in items if item > last]
    if n is None:
        return items, {}
    if not n.isdigit():
        raise RegistryError("UNSUPPORTED", f"n={n!r}: n is a number of entries", status=400)
    page = items[:int(n)]
    if int(n) == 0 or len(items) <= int(n):
        return page, {}
    query = urlencode({"n": n, "last": page[-1]})
    return page, {"Link": f'<{path}?{query}>; rel="next"'}


async def api_version_check(request: Request) -> Response:
    """end-1, "Determining Support": 200 means this server speaks the v2 API."""
    return JSONResponse({})


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """RFC 9110 section 14: ``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix`` ->
    (first, last), inclusive; None for the whole blob (no Range, or a form this server may
    ignore: several ranges, another unit). A range that starts past the end or runs backwards
    raises ValueError: 416, as Go's ``http.ServeContent`` (and so distribution) answers."""
    match = BYTE_RANGE.match((header or "").strip())
    if not match or match[1] == match[2] == "":
        return None
    if match[1] == "":
        if int(match[2]) == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(size - int(match[2]), 0), size - 1
    first, last = int(match[1]), int(match[2]) if match[2] else size - 1
    if first >= size or last < first:
        raise ValueError("unsatisfiable range")
    return first, min(last, size - 1)


def _file_part(path, first: int, last: int):
    """The bytes first..last of a file, a chunk at a time (a blob may be gigabytes)."""
    with open(path, "rb") as f:
        f.seek(first)
        left = last - first + 1
        while left > 0 and (chunk := f.read(min(CHUNK, left))):
            left -= len(chunk)
            yield chunk


async def pull_blob(request: Request) -> Response:
    """end-2, "Pulling blobs" and "Checking if content exists": the bytes (or, for HEAD, only
    their length) with ``Docker-Content-Digest``; a ``Range`` header gets 206 and that part
    ("A registry SHOULD support the Range request header")."""
    name, digest = _name(request), _digest(request.path_params["digest"])
    path = _storage(request).blob_path(name, digest)
    size = path.stat().st_size
    headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream"}
    try:
        span = _byte_range(request.headers.get("range"), size)
    except ValueError:
        return Response(status_code=416, headers=headers | {"Content-Range": f"bytes */{size}"})
    status, (first, last) = (200, (0, size - 1)) if span is None else (206, span)
    headers["Content-Length"] = str(last - first + 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(_file_part(path, first, last), status_code=status, headers=headers)


async def delete_blob(request: Request) -> Response:
    """end-10, "Deleting Blobs": 202, the blob unlinked from this repository."""
    name, digest = _name(request), _digest(request.path_params["digest"])
    _storage(request).delete_blob(name, digest)
    return Response(status_code=202)


async def pull_manifest(request: Request) -> Response:
    """end-3, "Pulling manifests": the stored bytes, their own media type and digest."""
    name, reference = _name(request), request.path_params["reference"]
    _check_reference(reference)
    body, media_type, digest = manifests.get_manifest(_storage(request), name, reference)
    headers = {"Docker-Content-Digest": digest, "Content-Length": str(len(body))}
    content = b"" if request.method == "HEAD" else body
    return Response(content, media_type=media_type, headers=headers)


async def push_manifest(request: Request) -> Response:
    """end-7, "Pushing Manifests": 201 with ``Location`` and ``Docker-Content-Digest``;
    ``OCI-Subject`` when the manifest has a subject, ``OCI-Tag`` for ``?tag=`` (end-7b)."""
    name, reference = _name(request), request.path_params["reference"]
    _check_reference(reference)
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > manifests.MAX_MANIFEST:
        raise RegistryError("MANIFEST_INVALID", f"the manifest has {declared} bytes, more "
                            f"than this registry's limit of {manifests.MAX_MANIFEST}",
                            status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > manifests.MAX_MANIFEST:
            raise RegistryError("MANIFEST_INVALID", "the manifest is larger than this "
                                f"registry's limit of {manifests.MAX_MANIFEST}", status=413)
    tags = request.query_params.getlist("tag")
    digest, subject = manifests.put_manifest(_storage(request), name, reference, bytes(body),
                                             request.headers.get("content-type"), tags)
    extra = {"OCI-Subject": subject} if subject else {}
    if tags:
        extra["OCI-Tag"] = ", ".join(tags)
    return _created(f"/v2/{name}/manifests/{digest}", digest, extra)


async def delete_manifest(request: Request) -> Response:
    """end-9, "Deleting tags" and "Deleting Manifests": 202."""
    name, reference = _name(request), request.path_params["reference"]
    _check_reference(reference)
    manifests.delete_manifest(_storage(request), name, reference)
    return Response(status_code=202)


def _check_reference(reference: str) -> None:
    if manifests.is_digest(reference):
        check_digest(reference)
    else:
        check_tag(reference)


async def start_blob_upload(request: Request) -> Response:
    """end-4a/4b/4c and end-11, "Pushing a blob monolithically" and "Mounting a blob": a
    ``mount`` is tried first (201, or 202 opening a session when the source lacks the blob);
    ``digest`` makes it a single-POST push (201); else 202 opens a session."""
    storage, name = _storage(request), _name(request)
    query = request.query_params
    if "mount" in query:
        digest = _digest(query["mount"])
        source = query.get("from")
        if storage.mount_blob(name, digest, source and check_name(source)):
            return _created(f"/v2/{name}/blobs/{digest}", digest)
    algorithm = query.get("digest-algorithm", "sha256")
    if algorithm not in ALGORITHMS:
        raise RegistryError("DIGEST_INVALID", f"unsupported digest-algorithm {algorithm!r}: "
                            f"this registry knows {', '.join(ALGORITHMS)}")
    if "digest" in query:
        digest = _digest(query["digest"])
        upload_id = storage.start_upload(name, check_digest(digest)[0])
        await storage.finish_upload(name, upload_id, digest, request.stream())
        return _created(f"/v2/{name}/blobs/{digest}", digest)
    upload_id = storage.start_upload(name, algorithm)
    return _upload_response(202, name, upload_id, 0)


def _upload(request: Request) -> tuple[Storage, str, str]:
    name, upload_id = _name(request), check_upload_id(request.path_params["uuid"])
    return _storage(request), name, upload_id


async def get_blob_upload_status(request: Request) -> Response:
    """end-13: 204 with the ``Range`` received so far, so a client can resume after 416."""
    storage, name, upload_id = _upload(request)
    return _upload_response(204, name, upload_id, storage.upload_size(name, upload_id))


async def push_blob_chunk(request: Request) -> Response:
    """end-5, "Pushing a blob in chunks": append the body (with or without
    ``Content-Range``); 202 with ``Range: 0-<end>``, or 416 for a chunk out of order."""
    storage, name, upload_id = _upload(request)
    try:
        size = await storage.append_upload(name, upload_id, request.stream(),
                                           _content_range(request))
    except RegistryError as error:
        raise _where_it_stands(error, storage, name, upload_id) from None
    return _upload_response(202, name, upload_id, size)


async def close_blob_upload(request: Request) -> Response:
    """end-6: the last chunk (if any), then the whole blob checked against ``?digest=``;
    201 with ``Location`` and ``Docker-Content-Digest``, or DIGEST_INVALID."""
    storage, name, upload_id = _upload(request)
    if "digest" not in request.query_params:
        raise RegistryError("DIGEST_INVALID", "closing an upload needs ?digest=<digest> of "
                            "the whole blob")
    digest = _digest(request.query_params["digest"])
    try:
        await storage.finish_upload(name, upload_id, digest, request.stream(),
                                    _content_range(request))
    except RegistryError as error:
        raise _where_it_stands(error, storage, name, upload_id) from None
    return _created(f"/v2/{name}/blobs/{digest}", digest)


async def cancel_blob_upload(request: Request) -> Response:
    """end-14, "Cancel a blob upload": 204, the partial data removed."""
    storage, name, upload_id = _upload(request)
    storage.cancel_upload(name, upload_id)
    return Response(status_code=204)


async def list_tags(request: Request) -> Response:
    """end-8a/8b, "Listing Tags": sorted, paginated by ``n`` and ``last``."""
    name = _name(request)
    tags = manifests.list_tags(_storage(request), name)
    page, headers = _page(tags, request, f"/v2/{name}/tags/list")
    return JSONResponse({"name": name, "tags": page}, headers=headers)


async def list_referrers(request: Request) -> Response:
    """end-12a/12b, "Listing Referrers": always an image index (never 404), filtered by
    ``artifactType`` when asked, with ``OCI-Filters-Applied`` saying so."""
    name, digest = _name(request), _digest(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType")
    found = manifests.list_referrers(_storage(request), name, digest, artifact_type)
    index = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": found}
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return JSONResponse(index, media_type=manifests.OCI_INDEX, headers=headers)


async def list_repositories(request: Request) -> Response:
    """``GET /v2/_catalog`` (distribution's api.md, "Listing Repositories")."""
    names = _storage(request).repositories(holding=("_manifests",))
    page, headers = _page(names, request, "/v2/_catalog")
    return JSONResponse({"repositories": page}, headers=headers)
