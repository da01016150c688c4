"""A container's resources over the Engine API: ``docker stats`` and ``docker update``.

    GET  /containers/{id}/stats?stream=&one-shot=   container_stats
    POST /containers/{id}/update                    container_update

``stats`` streams one ``ContainerStats`` object a second, each with the one before as its
``precpu_stats`` (a CPU percentage needs two samples). ``stream=false`` answers one object
after two samples a second apart (what ``docker stats --no-stream`` asks), ``one-shot=true``
one sample at once, with an empty ``precpu_stats``, as dockerd does.

``update`` takes Docker's ``UpdateConfig`` (the resources of HostConfig plus
``RestartPolicy``) and calls the engine's ``resources.update``.

Spec: Docker Engine API v1.50, "ContainerStats", "ContainerUpdate".
"""

import asyncio
import dataclasses
import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from minidocker.container import lifecycle, resources
from minidocker.daemon import shapes
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import flag, json_body

INTERVAL = 1.0  # seconds between two samples, as dockerd's collector


async def container_stats(request: Request) -> Response:
    record = await run_in_threadpool(lifecycle.find, request.path_params["id"])
    if flag(request, "one-shot"):
        return JSONResponse(await run_in_threadpool(resources.stats, record))
    if not flag(request, "stream", default=True):
        first = await run_in_threadpool(resources.stats, record)
        await asyncio.sleep(INTERVAL)
        return JSONResponse(await run_in_threadpool(resources.stats, record, first))

    async def body():
        previous = None
        while True:
            fresh = await run_in_threadpool(_fresh, record.Id)
            sample = await run_in_threadpool(resources.stats, fresh or record, previous)
            yield (json.dumps(sample) + "\n").encode()
            if fresh is None:  # removed: dockerd ends the stream
                return
            previous = sample
            await asyncio.sleep(INTERVAL)

    return StreamingResponse(body(), media_type="application/json")


def _fresh(container_id: str):
    try:
        return lifecycle.find(container_id)
    except Exception:  # removed meanwhile
        return None


UPDATE_FIELDS = {"Memory": int, "MemorySwap": int, "MemoryReservation": int,
                 "NanoCpus": int, "CpuShares": int, "CpuPeriod": int, "CpuQuota": int,
                 "CpusetCpus": str, "CpusetMems": str, "PidsLimit": int, "BlkioWeight": int,
                 "RestartPolicy": {"Name": str, "MaximumRetryCount": int},
                 "KernelMemory": int, "MemorySwappiness": int}


async def container_update(request: Request) -> Response:
    """``POST /containers/{id}/update``: 200 with ``{"Warnings": [...]}``."""
    from minidocker.cgroups import build_limits
    from minidocker.container.config import RestartPolicy

    body = await json_body(request)
    shapes.check("UpdateConfig", body, UPDATE_FIELDS)
    record = await run_in_threadpool(lifecycle.find, request.path_params["id"])

    def text(name: str, scale: float = 1):
        value = body.get(name)
        return None if value in (None, 0, "") else str(value / scale if scale != 1 else value)

    nano = body.get("NanoCpus")
    if nano and (body.get("CpuQuota") or body.get("CpuPeriod")):
        raise ApiError("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
    changes = build_limits(
        memory=text("Memory"), memory_swap=text("MemorySwap"),
        memory_reservation=text("MemoryReservation"),
        cpus=text("NanoCpus", 1e9), cpu_shares=text("CpuShares"),
        cpu_period=text("CpuPeriod"), cpu_quota=text("CpuQuota"),
        cpuset_cpus=body.get("CpusetCpus") or None, cpuset_mems=body.get("CpusetMems") or None,
        pids_limit=text("PidsLimit"), blkio_weight=text("BlkioWeight"))
    if (body.get("PidsLimit") or 0) < 0:  # -1: unlimited again
        changes = dataclasses.replace(changes, pids_limit=-1)
    policy = body.get("RestartPolicy")
    restart = None
    if policy and policy.get("Name"):
        count = policy.get("MaximumRetryCount") or 0
        restart = RestartPolicy.parse(policy["Name"] + (f":{count}" if count else ""))
    warnings = await run_in_threadpool(resources.update, record, changes, restart)
    return JSONResponse({"Warnings": warnings})
