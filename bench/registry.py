"""How fast is minidocker's registry next to distribution, and its client next to skopeo?

1. **server**: ``skopeo copy`` of a 200 MB image (one layer of random bytes, so gzip cannot
   shrink it) from minidocker's store into the registry, and from the registry out to an OCI
   layout — minidocker's server against Debian's ``docker-registry`` (distribution 2.8).
   Target (reported, not enforced): minidocker <= 1.1x distribution, both ways.
2. **client**: ``minidocker push`` / ``minidocker pull`` against ``skopeo copy`` of the same
   image, each to and from a distribution server of its own (fresh storage, so nothing is
   skipped as "already exists"). Target: minidocker <= 1.0x skopeo. A pull also unpacks the
   layer into the store (as ``docker pull`` does); skopeo's copy to an OCI layout does not.
3. **memory**: the server's peak resident memory (VmHWM) while one 1 GiB blob uploads in a
   single chunked ``PATCH``. Target: <= 100 MB: the body streams to disk.

One run of each (the transfers are seconds long, so start-up noise is small), in a private
mount and network namespace (servers on its loopback), with skopeo's blob-info cache on a
tmpfs of that namespace and everything else in a temporary workspace that is removed at the
end. Usage: bench/registry.py [--size-mb N] [--blob-mb N] [--json PATH] (as root; also
``sudo ./kit bench --registry``).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from time import perf_counter

import common  # bench/common.py: options, workspace, report
import peers  # bench/peers.py: the workspace, check()
from lifecycle import private_namespaces
from rich.console import Console
from rich.table import Table

from minidocker.viz.servers import Server, ServerFailed, distribution_registry, minidocker_registry

MINIDOCKER = [sys.executable, "-m", "minidocker.cli"]
TARGETS = {"server_push": 1.1, "server_pull": 1.1, "client_push": 1.0, "client_pull": 1.0}
RSS_TARGET_MB = 100
CHUNK = 1 << 20


def minidocker_server(ws: peers.Workspace, name: str) -> Server:
    return started(ws, lambda: minidocker_registry(ws.dir(name), ws.path / f"{name}.log"))


def distribution_server(ws: peers.Workspace, name: str) -> Server:
    return started(ws, lambda: distribution_registry(ws.dir(name), ws.dir(f"{name}-config"),
                                                     ws.path / f"{name}.log"))


def started(ws: peers.Workspace, start) -> Server:
    """A server of minidocker/viz/servers.py, stopped with the workspace."""
    try:
        server = start()
    except ServerFailed as failure:
        raise peers.BenchError(str(failure)) from None
    ws.undo.callback(server.stop)
    return server


def timed(argv: list[str], env: dict | None = None) -> float:
    """Seconds ``argv`` takes; a failure is a BenchError."""
    started = perf_counter()
    peers.check([str(a) for a in argv], env=env)
    return perf_counter() - started


def skopeo(source: str, target: str) -> list[str]:
    return ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
            source, target]


# --- the measurements ---------------------------------------------------------------------------

def make_image(ws: peers.Workspace, size_mb: int) -> str:
    """``big:1``: one layer holding one file of random bytes, imported into the store."""
    rootfs = ws.dir("rootfs")
    with open(rootfs / "random", "wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(CHUNK))
    tarball = ws.path / "rootfs.tar"
    peers.check(["tar", "-cf", str(tarball), "-C", str(rootfs), "random"])
    shutil.rmtree(rootfs)
    peers.check([*MINIDOCKER, "import", str(tarball), "big:1"])
    tarball.unlink()
    return f"oci:{os.environ['MINIDOCKER_ROOT']}/oci:big:1"


def servers(ws: peers.Workspace, source: str) -> dict:
    """skopeo in and out of each server: seconds per (server, direction)."""
    found = {}
    for who, start in (("minidocker", minidocker_server), ("distribution", distribution_server)):
        server = start(ws, f"{who}-server")
        out = ws.path / f"out-{who}"
        found[who] = {
            "push_s": timed(skopeo(source, f"docker://{server.host}/big:1")),
            "pull_s": timed(skopeo(f"docker://{server.host}/big:1", f"oci:{out}:big")),
        }
        shutil.rmtree(out)
        server.stop()
    return found


def clients(ws: peers.Workspace, source: str) -> dict:
    """minidocker's push and pull against skopeo's, each with a fresh distribution."""
    ours, theirs = distribution_server(ws, "client-minidocker"), \
        distribution_server(ws, "client-skopeo")
    name = f"{ours.host}/big:1"
    peers.check([*MINIDOCKER, "tag", "big:1", name])
    fresh_root = ws.dir("pulled-state")
    found = {
        "minidocker": {"push_s": timed([*MINIDOCKER, "push", name]),
                       "pull_s": timed([*MINIDOCKER, "pull", "-q", name],
                                       env={**os.environ, "MINIDOCKER_ROOT": str(fresh_root)})},
        "skopeo": {"push_s": timed(skopeo(source, f"docker://{theirs.host}/big:1")),
                   "pull_s": timed(skopeo(f"docker://{theirs.host}/big:1",
                                          f"oci:{ws.path / 'out-client'}:big"))},
    }
    ours.stop()
    theirs.stop()
    return found


def upload_memory(ws: peers.Workspace, blob_mb: int) -> dict:
    """Peak RSS of a fresh minidocker server while one blob of ``blob_mb`` MiB arrives in a
    single chunked PATCH (then PUT ?digest= closes it)."""
    import httpx

    server = minidocker_server(ws, "memory-server")
    idle = server.memory()
    chunk, digest = os.urandom(CHUNK), hashlib.sha256()
    samples, uploading = [], threading.Event()

    def body():
        for _ in range(blob_mb):
            digest.update(chunk)
            yield chunk

    def sample():
        while uploading.is_set():
            samples.append(server.memory())
            time.sleep(0.05)

    with httpx.Client(base_url=f"http://{server.host}", timeout=600) as client:
        location = client.post("/v2/memory/blobs/uploads/").headers["location"]
        uploading.set()
        watcher = threading.Thread(target=sample)
        watcher.start()
        started = perf_counter()
        try:
            patched = client.patch(location, content=body(),
                                   headers={"Content-Type": "application/octet-stream"})
            done = client.put(patched.headers["location"],
                              params={"digest": f"sha256:{digest.hexdigest()}"})
        finally:
            uploading.clear()
            watcher.join()
        seconds = perf_counter() - started
    if done.status_code != 201:
        raise peers.BenchError(f"the 1 GiB upload was refused: {done.status_code} {done.text}")
    peak = server.memory("VmHWM")
    server.stop()
    return {"blob_mb": blob_mb, "idle_rss_mb": round(idle / 2**20, 1),
            "peak_rss_mb": round(peak / 2**20, 1),
            "max_sampled_rss_mb": round(max(samples, default=0) / 2**20, 1),
            "seconds": round(seconds, 2), "mb_per_s": round(blob_mb / seconds, 1),
            "target_mb": RSS_TARGET_MB, "met": peak / 2**20 <= RSS_TARGET_MB}


# --- the story -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/registry.py needs root: sudo ./kit bench --registry", file=sys.stderr)
        return 1
    for tool in ("skopeo", "docker-registry"):
        if not shutil.which(tool):
            print(f"bench/registry.py: {tool} is not installed (apt-get install {tool})",
                  file=sys.stderr)
            return 1
    console = Console(width=None if sys.stdout.isatty() else 120)
    private_namespaces()
    from minidocker import kernel

    # skopeo's blob-info cache (it remembers where blobs were, and would mount them
    # instead of copying): a tmpfs of this namespace, empty at the start
    os.makedirs("/var/lib/containers", exist_ok=True)
    kernel.mount("tmpfs", "/var/lib/containers", "tmpfs", 0, "mode=700")

    def bench(ws: peers.Workspace) -> dict:
        os.environ["MINIDOCKER_ROOT"] = str(ws.dir("state"))
        console.print(f"making a {args.size_mb} MB image (one random layer) in {ws.path}")
        source = make_image(ws, args.size_mb)
        console.print("skopeo copy into and out of each server ...")
        server = servers(ws, source)
        console.print("minidocker push/pull vs skopeo copy ...")
        client = clients(ws, source)
        console.print(f"one {args.blob_mb} MiB blob into minidocker's server ...")
        return {"server": server, "client": client,
                "memory": upload_memory(ws, args.blob_mb)}

    failed, results = common.in_workspace("bench/registry.py", bench)
    if failed:
        return failed
    results["ratios"] = ratios(results)
    results["size_mb"] = args.size_mb
    results["versions"] = common.tool_versions(("skopeo",)) | {
        "docker-registry": subprocess.run(["docker-registry", "--version"], capture_output=True,
                                          text=True).stdout.split()[2]}
    show(console, results)
    if args.json:
        common.write_json(console, args.json, results)
    return 0


def parse_args(argv):
    parser = common.argument_parser("bench/registry.py", __doc__)
    parser.add_argument("--size-mb", type=int, default=200, metavar="N",
                        help="the image's one layer, in MiB of random bytes (default 200)")
    parser.add_argument("--blob-mb", type=int, default=1024, metavar="N",
                        help="the blob uploaded while the server's memory is watched, in MiB "
                             "(default 1024)")
    args = parser.parse_args(argv)
    if args.size_mb < 1 or args.blob_mb < 1:
        parser.error("--size-mb and --blob-mb must be at least 1")
    return args


def ratios(results: dict) -> dict:
    server, client = results["server"], results["client"]
    pairs = {"server_push": (server["minidocker"]["push_s"], server["distribution"]["push_s"]),
             "server_pull": (server["minidocker"]["pull_s"], server["distribution"]["pull_s"]),
             "client_push": (client["minidocker"]["push_s"], client["skopeo"]["push_s"]),
             "client_pull": (client["minidocker"]["pull_s"], client["skopeo"]["pull_s"])}
    return {key: {"value": round(ours / theirs, 2), "target": TARGETS[key],
                  "met": ours / theirs <= TARGETS[key]} for key, (ours, theirs) in pairs.items()}


def show(console: Console, results: dict) -> None:
    size = results["size_mb"]
    table = Table(title=f"A {size} MB image (one random layer), one run (seconds)")
    for column in ("what", "minidocker", "peer", "peer is", "ratio", "target", "verdict"):
        table.add_column(column, justify="left" if column in ("what", "peer is") else "right")
    rows = [("skopeo copy into the server", "server", "distribution", "push_s", "server_push"),
            ("skopeo copy out of the server", "server", "distribution", "pull_s",
             "server_pull"),
            ("push (client) to distribution", "client", "skopeo", "push_s", "client_push"),
            ("pull (client) from distribution", "client", "skopeo", "pull_s", "client_pull")]
    for label, part, peer, field, key in rows:
        ratio = results["ratios"][key]
        table.add_row(label, f"{results[part]['minidocker'][field]:.2f}",
                      f"{results[part][peer][field]:.2f}", peer, f"{ratio['value']:.2f}×",
                      f"≤ {ratio['target']:.1f}×",
                      "[green]met[/]" if ratio["met"] else "[red]missed[/]")
    console.print(table)
    m = results["memory"]
    verdict = "[green]met[/]" if m["met"] else "[red]missed[/]"
    console.print(f"server memory while a {m['blob_mb']} MiB blob uploads: idle "
                  f"{m['idle_rss_mb']} MB, peak {m['peak_rss_mb']} MB (target ≤ "
                  f"{m['target_mb']} MB: {verdict}); {m['seconds']} s, {m['mb_per_s']} MB/s")


if __name__ == "__main__":
    sys.exit(main())
