"""``POST /build``: ``docker build`` against the daemon, with the classic builder's output.

The docker CLI (``DOCKER_BUILDKIT=0``) packs the context directory into a tar and sends it as
the request's body; the query says the rest (``t``, ``dockerfile``, ``buildargs``...). The
story of one request:

1. **read the query** into stage 10's ``BuildOptions``; a bad value is a 400 before any byte
   of the context is read (``pull=1`` pulls the base images first, with stage 11's client);
2. **receive the context**: the body goes to a file in the store's scratch space, capped
   (uploads.py), then is unpacked by the layer extractor, which refuses ``..``, absolute paths,
   writes through symlinks and bombs — a refusal is a 400 ``{"message": ...}``, and nothing
   is written outside the scratch directory;
3. **find and parse the Dockerfile** inside the context (``?dockerfile=``, never out of it, not
   even through a symlink); a Dockerfile that does not parse is a 400;
4. **build**: ``build_process`` runs the one builder (build/builder.py) in a process of its
   own; each line it prints becomes ``{"stream": "Step 1/2 : FROM busybox\\n"}``, and at the end
   ``{"aux": {"ID": "sha256:..."}}`` (the CLI's ``--iidfile`` and ``-q``) or
   ``{"errorDetail": ..., "error": ...}`` — from here on the status is 200 and errors travel in
   the stream, as dockerd sends them.

BuildKit (``version=2``, the CLI's default) speaks gRPC over a session the daemon would have to
serve: refused with the way out (``DOCKER_BUILDKIT=0``).

Spec: Docker Engine API v1.50, "ImageBuild". Model: moby
``api/server/router/build/build_routes.go`` (``newImageBuildOptions``, ``postBuild``).
"""

import asyncio
import codecs
import json
import signal
import sys
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from minidocker.daemon.distribution import registry_logins
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import flag, json_query
from minidocker.daemon.progress import error_message, line
from minidocker.daemon.uploads import MAX_CONTEXT, receive_file
from minidocker.errors import MinidockerError

MAX_DOCKERFILE = 1 << 20


async def image_build(request: Request) -> Response:
    """Steps 1-3 before the answer (a refusal is a 4xx), step 4 streamed."""
    from minidocker.image.store import ImageStore

    options, quiet = build_options(request)
    dockerfile = dockerfile_path(request.query_params.get("dockerfile") or "Dockerfile")
    logins = registry_logins(request) if flag(request, "pull") else {}
    scratch = ImageStore().scratch()
    try:
        where = Path(scratch.name)
        await receive_file(request, where / "context.tar", MAX_CONTEXT, "build context")
        bases = await run_in_threadpool(unpack_and_check, where, dockerfile)
        pulls = bases if flag(request, "pull") else []
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "minidocker.daemon.build_process", str(where),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        process.stdin.write(json.dumps({  # on stdin: passwords never go on a command line
            "options": options, "quiet": quiet, "dockerfile": dockerfile, "pull": pulls,
            "logins": logins}).encode())
        process.stdin.close()
    except BaseException:
        scratch.cleanup()
        raise
    return StreamingResponse(build_stream(process, where, quiet, scratch),
                             media_type="application/json")


def build_prune(request: Request) -> Response:
    """``POST /build/prune`` (``docker system prune``, ``docker builder prune``): the classic
    builder's cache is the store's own images, pruned with them, so there is no cache of its
    own to free."""
    return JSONResponse({"CachesDeleted": None, "SpaceReclaimed": 0})


def build_options(request: Request) -> tuple[dict, bool]:
    """The query as ``BuildOptions`` fields (a dict: it crosses to build_process as JSON)."""
    from minidocker.image.reference import parse_reference

    query = request.query_params
    if query.get("version") == "2":
        raise ApiError("BuildKit is not supported by minidocker's daemon: build with the "
                       "classic builder (DOCKER_BUILDKIT=0 docker build ...)")
    if query.get("remote"):
        raise ApiError("a remote build context (a git or tarball URL) is not supported: send "
                       "the context as the request's body")
    tags = query.getlist("t")
    for tag in tags:
        try:
            parse_reference(tag)
        except MinidockerError as exc:
            raise ApiError(f"invalid tag {tag!r}: {exc}") from None
    options = {"tags": tags, "build_args": string_map(query, "buildargs", drop_null=True),
               "labels": string_map(query, "labels"), "target": query.get("target") or "",
               "no_cache": flag(request, "nocache"),
               "network": query.get("networkmode") or "default",
               "remove": flag(request, "rm", True), "force_remove": flag(request, "forcerm")}
    return options, flag(request, "q")


def string_map(query, name: str, drop_null: bool = False) -> dict[str, str]:
    """``?buildargs={"A":"1"}``: a JSON object of strings (null: the client had no value)."""
    value = json_query(query, name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(v, str) or (v is None and drop_null) for v in value.values()):
        raise ApiError(f"invalid {name}: give a JSON object of strings")
    return {k: v for k, v in value.items() if v is not None}


def dockerfile_path(name: str) -> str:
    """``?dockerfile=`` as a path inside the context (no absolute path, no ``..``)."""
    import posixpath

    cleaned = posixpath.normpath(name)
    if name.startswith("/") or cleaned == ".." or cleaned.startswith("../") or "\0" in name:
        raise ApiError(f"invalid dockerfile {name!r}: give a path inside the build context")
    return cleaned


def unpack_and_check(where: Path, dockerfile: str) -> list[str]:
    """Steps 2 and 3, in a worker thread: the context unpacked safely, the Dockerfile inside
    it and parseable; returns the base images it names."""
    from minidocker.build.context import receive_context, within
    from minidocker.build.instructions import stages
    from minidocker.build.parser import parse
    from minidocker.image.layers import LayerError

    root = where / "context"
    root.mkdir()
    complete_last_block(where / "context.tar")
    try:
        with open(where / "context.tar", "rb") as tar:
            receive_context(tar, root)
    except LayerError as exc:
        raise ApiError(f"invalid build context: {exc}") from None
    path = root / dockerfile
    if not path.is_file() or not within(root, dockerfile):
        raise ApiError(f"Cannot locate specified Dockerfile: {dockerfile} (it must be a file "
                       "inside the build context)")
    if path.stat().st_size > MAX_DOCKERFILE:
        raise ApiError(f"the Dockerfile {dockerfile} is larger than {MAX_DOCKERFILE} bytes")
    found = stages(parse(path.read_bytes(), file=Path(dockerfile).name))  # else a 400
    names = {stage.name for stage in found}
    return list(dict.fromkeys(  # the base images, for ?pull=1 (not scratch, not a stage)
        s.from_.image for s in found
        if s.from_.image not in names and s.from_.image != "scratch" and "$" not in s.from_.image))


def complete_last_block(path: Path) -> None:
    """The docker CLI, given ``-f`` outside the context, adds the Dockerfile to the tar it
    streams and closes the stream before the tar's last padding and its two zero blocks
    (moby's ``ReplaceFileTarWrapper`` closes its pipe before its tar writer); Go's reader
    takes that as the end, and so do we: when the last member's bytes are all there, the
    missing zeros are added. A tar cut inside a member's bytes stays refused."""
    import tarfile

    size = path.stat().st_size
    if size % tarfile.BLOCKSIZE == 0:
        return
    with open(path, "r+b") as tar:
        offset = 0
        while offset + tarfile.BLOCKSIZE <= size:  # header to header, as tar(5) lays them
            tar.seek(offset)
            try:
                member = tarfile.TarInfo.frombuf(tar.read(tarfile.BLOCKSIZE), "utf-8",
                                                 "surrogateescape")
            except tarfile.HeaderError:  # compressed, or the end: not ours to complete
                return
            if member.size < 0:  # a base-256 size may be negative: it would walk back forever
                return
            end = offset + tarfile.BLOCKSIZE + member.size
            if end == size:
                tar.seek(size)
                tar.write(bytes(-size % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE))
                return
            offset = end + -member.size % tarfile.BLOCKSIZE


async def build_stream(process, where: Path, quiet: bool, scratch):
    """The builder's lines as ``{"stream": ...}``, then its result; the process is stopped
    (SIGINT, as Ctrl-C) if the client goes away first."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        held = ""  # a line not yet ended: clients match whole lines ("Successfully built X")
        while data := await process.stdout.read(65536):
            *lines, held = (held + decoder.decode(data)).split("\n")
            for text in lines:
                yield line({"stream": text + "\n"})
            if len(held) > 65536:
                yield line({"stream": held})
                held = ""
        if held:
            yield line({"stream": held})
        await process.wait()
        written = where / "result.json"
        result = json.loads(written.read_text()) if written.exists() else {}
        if "id" not in result:
            yield line(error_message(result.get("error") or
                                     f"the builder failed (exit code {process.returncode})"))
            return
        yield line({"aux": {"ID": result["id"]}})
        if quiet:
            yield line({"stream": result["id"] + "\n"})
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            await process.wait()
        scratch.cleanup()
