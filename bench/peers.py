"""The contestants of the benchmark: how each is set up, runs ``true`` once, and is taken down.

Every peer starts a container from the same root filesystem (minidocker's busybox image) and
runs ``true`` in it, so the time measured is the engine's own work: setting up namespaces, the
cgroup and the root filesystem, exec, exit, cleanup. minidocker and runc also run once more
with the same resource limits (``LIMITS``), and minidocker's cgroup work is timed on its own
(``cgroup_case``). Everything a peer creates lives in one temporary workspace (state roots,
runc bundles, a podman store); ``Workspace`` undoes it all at the end, mounts first, and removes
any cgroup a container of the benchmark still has. podman also writes a few paths on the host
that no flag moves; those are noted before it starts and removed afterwards if they were new.

Used by: bench/run.py.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

from minidocker import cgroups, kernel
from minidocker.container import Config, HostConfig, run
from minidocker.container.create import create
from minidocker.container.names import new_id
from minidocker.container.start import start
from minidocker.image.busybox import create_busybox_image
from minidocker.image.store import Image
from minidocker.namespaces import Stdio

PODMAN_IMAGE = "localhost/minidocker-bench/busybox:latest"
# Paths podman (4.x) creates on the host whatever --root/--runroot say: runc's default state
# dir (podman's cleanup needs it, so it cannot be moved), netavark's run dir and the blob-info
# cache of containers/image. Removed afterwards when they did not exist before, deepest first.
PODMAN_HOST_PATHS = ["/run/runc", "/run/containers/networks", "/run/containers",
                     "/var/lib/containers/cache", "/var/lib/containers"]
PODMAN_HOST_FILES = {"blob-info-cache-v1.boltdb"}  # the only files podman leaves there
# Where rootful podman's bridge networks write on the host whatever its flags say: CNI's
# address leases and result cache (netavark keeps its leases under /run/containers/networks,
# above) and each container's named network namespace (a file, an nsfs bind mount on it).
# A tmpfs over each in the benchmark's private mount namespace (private_podman_network_dirs).
PODMAN_NETWORK_DIRS = ["/var/lib/cni", "/run/netns"]
# The sandbox this course was written on refuses podman's default rlimits (INTEROP.md).
PODMAN_RUN_FLAGS = ["--network", "none", "--ulimit", "nofile=1024:1024",
                    "--ulimit", "nproc=1000:1000"]
# The limits of the "+ limits" cases: `run`'s flags, and what they become for the engine.
LIMITS = {"memory": "64m", "pids_limit": "100", "cpus": "0.5"}
LIMIT_FLAGS = ["-m", "64m", "--pids-limit", "100", "--cpus", "0.5"]


class BenchError(Exception):
    """A peer could not be set up or a run failed; the message says which and why."""


class Skipped(BenchError):
    """A peer that cannot take part on this machine (not installed, or refused to start)."""


@dataclass
class Case:
    """One thing to time. ``once()`` runs it a single time and raises ``BenchError`` if it
    failed; it may return a breakdown of its own time as ``{phase: seconds}``."""

    key: str  # short id, used in the JSON
    group: str  # "context", "cli" or "api"
    label: str  # who runs, as the table shows it
    command: str  # what is run, as a reader would type it
    once: Callable[[], dict[str, float] | None]


@dataclass
class Workspace:
    """A temporary directory for every peer's state, and the undo list that clears it."""

    path: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="minidocker-bench-")))
    undo: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> "Workspace":
        self.undo.callback(self._remove)  # registered first, so it runs last
        return self

    def __exit__(self, *exc_info) -> None:
        self.undo.close()

    def dir(self, *parts: str) -> Path:
        path = self.path.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _remove(self) -> None:
        """Unmount whatever is still mounted below the workspace (podman's storage binds its
        overlay dir onto itself), deepest first, then delete the tree."""
        for mount_point in sorted(mounts_below(self.path), key=len, reverse=True):
            kernel.umount2(mount_point, kernel.MNT_DETACH)
        if mounts_below(self.path):
            raise BenchError(f"mounts are still left below {self.path}; not deleting it")
        shutil.rmtree(self.path)


def mounts_below(path: Path) -> list[str]:
    """Mount points under ``path`` in this mount namespace (from /proc/self/mountinfo)."""
    prefix = str(path) + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mount_point = _unescape(line.split()[4])
            if mount_point.startswith(prefix):
                found.append(mount_point)
    return found


def _unescape(field_text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_text = field_text.replace(code, char)
    return field_text


def check(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command; a non-zero exit becomes a ``BenchError`` with the end of its stderr."""
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            **kwargs)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        raise BenchError(f"'{' '.join(argv[:3])} ...' exited {result.returncode}: "
                         + " / ".join(tail))
    return result


def timed_command(argv: list[str], env: dict[str, str] | None = None):
    """A ``Case.once`` that runs ``argv`` with stdout thrown away, failing on a non-zero exit."""
    def once() -> None:
        check(argv, env=env)
    return once


# --- context: what any Python program pays ---------------------------------------------------

# Bytecode is written and reused, as an installed package's is (pip compiles it), whatever the
# caller's PYTHONDONTWRITEBYTECODE says: only the warm-up rounds compile (as in startup.py).
BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


def python_cases() -> list[Case]:
    """Python's own start-up, and start-up plus the imports ``minidocker run`` needs."""
    python = sys.executable
    imports = "import minidocker.cli, minidocker.container.lifecycle"
    env = {**os.environ, **BYTECODE}
    return [
        Case("python", "context", "python start-up", f"{_short(python)} -c pass",
             timed_command([python, "-c", "pass"])),
        Case("python-imports", "context", "python + CLI imports",
             f"{_short(python)} -c '{imports}'", timed_command([python, "-c", imports], env=env)),
    ]


def _short(path: str) -> str:
    return path.replace(os.getcwd() + "/", "")


# --- minidocker ------------------------------------------------------------------------------

def minidocker_cases(ws: Workspace) -> tuple[list[Case], Path]:
    """The CLI and the in-process API, each without and with ``LIMITS``, on a state root of
    their own; the API's run in its steps; the cgroup work alone. Also returns the busybox
    image's root directory, which the other peers copy."""
    state = ws.dir("minidocker")
    ws.undo.callback(_release_cgroups, state)  # runs before the state root is deleted
    ws.undo.enter_context(_environment("MINIDOCKER_ROOT", str(state)))  # for the API case
    image_root = root_directory(create_busybox_image())
    entry_point = Path(sys.executable).with_name("minidocker")
    if not entry_point.exists():
        found = shutil.which("minidocker")
        if not found:
            raise BenchError("the 'minidocker' command is not installed: run 'sudo ./kit setup'")
        entry_point = Path(found)
    env = {**os.environ, **BYTECODE, "MINIDOCKER_ROOT": str(state)}
    # --network none, as podman and runc run here: networking has its own bench (network.py)
    cli = Case("minidocker-cli", "cli", "minidocker",
               "minidocker run --rm --network none busybox true",
               timed_command([str(entry_point), "run", "--rm", "--network", "none", "busybox",
                              "true"], env=env))
    cli_limits = Case("minidocker-cli-limits", "cli", "minidocker + limits",
                      f"minidocker run --rm --network none {' '.join(LIMIT_FLAGS)} busybox true",
                      timed_command([str(entry_point), "run", "--rm", "--network", "none",
                                     *LIMIT_FLAGS, "busybox", "true"], env=env))
    devnull = os.open(os.devnull, os.O_RDWR)
    ws.undo.callback(os.close, devnull)
    stdio = Stdio(devnull, devnull, 2)
    limits = cgroups.build_limits(**LIMITS)  # checked once, as the CLI does before it runs

    def api_once(limited: bool) -> Callable[[], None]:
        def once() -> None:
            host = HostConfig(AutoRemove=True, Resources=limits if limited else cgroups.Limits())
            code = run(Config(Image="busybox", Cmd=["true"]), host, stdio=stdio).wait()
            if code != 0:
                raise BenchError(f"run(spec).wait() returned {code}, expected 0")
        return once

    def phases_once() -> dict[str, float]:
        """The same work as ``run()`` (which is ``start(create(spec))``), timed in its steps."""
        t0 = perf_counter()
        record = create(Config(Image="busybox", Cmd=["true"]), HostConfig(AutoRemove=True))
        t1 = perf_counter()
        container = start(record, stdio)
        t2 = perf_counter()
        code = container.wait()
        t3 = perf_counter()
        if code != 0:
            raise BenchError(f"start(create(spec)).wait() returned {code}, expected 0")
        return {"create": t1 - t0, "start": t2 - t1, "wait": t3 - t2}

    limits_text = ", ".join(f'{k}="{v}"' for k, v in LIMITS.items())
    api = Case("minidocker-api", "api", "minidocker", "run(config, host).wait()  # in-process",
               api_once(False))
    api_limits = Case("minidocker-api-limits", "api", "minidocker + limits",
                      f"host.Resources = build_limits({limits_text})", api_once(True))
    phases = Case("minidocker-api-phases", "phases", "minidocker",
                  "create(spec); start(...); .wait()", phases_once)
    cases = [cli, cli_limits, api, api_limits, phases, cgroup_case(limits)]
    if shutil.which("runc"):  # the same command, with runc spawning PID 1 from a bundle
        cases.insert(1, Case("minidocker-cli-runc", "cli", "minidocker --runtime runc",
                             "minidocker run --rm --network none --runtime runc busybox true",
                             timed_command([str(entry_point), "run", "--rm", "--network",
                                            "none", "--runtime", "runc", "busybox", "true"],
                                           env=env)))
    return cases, image_root


def root_directory(image: Image) -> Path:
    """The busybox image as one directory, for the peers to copy: its one unpacked layer
    (busybox is a single layer, so that layer is the whole root)."""
    layers = image.layer_dirs()
    if len(layers) != 1:
        raise BenchError(f"the busybox image has {len(layers)} layers; the peers need one")
    return Path(layers[0])


def cgroup_case(limits: cgroups.Limits) -> Case:
    """A container's cgroup work alone, in the order ``start()`` and ``wait()`` do it for a run
    with ``limits``: make the cgroup and write the limits, fork (not timed: ``start()`` forks
    the shim there), move the child in, and once it is gone remove the cgroup. The child only
    waits for the parent to close a pipe."""

    def once() -> dict[str, float]:
        t0 = perf_counter()
        cgroup = cgroups.for_container(new_id())
        try:
            cgroup.create()
            t1 = perf_counter()
            cgroup.set_limits(limits)
            t2 = perf_counter()
            t3, t4 = _join_a_child(cgroup)
        except BaseException as exc:
            cgroup.destroy()
            if isinstance(exc, OSError):
                raise BenchError(f"cgroup {cgroup.name}: {exc}") from exc
            raise
        t5 = perf_counter()
        cgroup.destroy()
        t6 = perf_counter()
        return {"create": t1 - t0, "limits": t2 - t1, "join": t4 - t3, "destroy": t6 - t5}

    return Case("minidocker-cgroup", "cgroup", "minidocker",
                "for_container(id).create(); .set_limits(); .add_process(pid); .destroy()",
                once)


def _join_a_child(cgroup: cgroups.Cgroup) -> tuple[float, float]:
    """Fork a child that waits on a pipe, time moving it into ``cgroup``, then let it go and
    reap it. Returns the clock before and after the move."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait until the parent closes its end, then go
        try:
            os.close(write_end)
            os.read(read_end, 1)
        finally:
            os._exit(0)
    os.close(read_end)
    try:
        before = perf_counter()
        cgroup.add_process(pid)
        return before, perf_counter()
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def _release_cgroups(state: Path) -> None:
    """A container that was interrupted mid-run still has its cgroup (and maybe a process in
    it): remove it, for every container record left in the benchmark's own state root."""
    containers = state / "containers"
    if containers.is_dir():
        for record in containers.iterdir():
            cgroups.for_container(record.name).destroy()


@contextlib.contextmanager
def _environment(name: str, value: str):
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


# --- runc ------------------------------------------------------------------------------------

def runc_cases(ws: Workspace, image_root: Path, skipped: dict[str, str]) -> list[Case]:
    """``runc run`` on an OCI bundle: a copy of the busybox root plus runc's own default
    ``config.json`` (``runc spec``), changed only to run ``true`` without a terminal; and a
    second bundle on the same root whose config adds ``LIMITS`` under ``linux.resources``.
    If only the second cannot run here, it goes to ``skipped`` with the reason."""
    runc = shutil.which("runc")
    if not runc:
        raise Skipped("runc is not installed (apt-get install runc)")
    bundle = ws.dir("runc", "bundle")
    state = ws.dir("runc", "state")  # runc's --root: its container state, not /run/runc
    shutil.copytree(image_root, bundle / "rootfs", symlinks=True)
    check([runc, "spec"], cwd=bundle)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["true"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    ws.undo.callback(_delete_runc_leftovers, runc, state)
    counter = iter(range(1_000_000))

    def once_in(bundle_dir: Path) -> Callable[[], None]:
        def once() -> None:
            name = f"mdbench-{os.getpid()}-{next(counter)}"
            check([runc, "--root", str(state), "run", "--bundle", str(bundle_dir), name])
        return once

    plain = once_in(bundle)
    try:
        plain()
    except BenchError as exc:
        raise Skipped(f"runc cannot run containers here: {exc}") from exc
    cases = [Case("runc", "cli", "runc", "runc run --bundle <busybox copy> <id>", plain)]
    limited_bundle = ws.dir("runc", "bundle-limits")
    config["root"]["path"] = str(bundle / "rootfs")  # the same root, not a second copy
    limited = once_in(limited_bundle)
    # Docker gives as much swap as memory (memory+swap = 2 × memory), as minidocker does;
    # without swap accounting runc refuses a swap limit, so then there is none.
    default_resources = config["linux"].get("resources", {})  # runc spec: deny all devices
    for swap in (True, False):
        config["linux"]["resources"] = {**default_resources, **runc_resources(swap)}
        (limited_bundle / "config.json").write_text(json.dumps(config, indent=2))
        try:
            limited()
        except BenchError as exc:
            error = exc
            continue
        memory = "memory + swap" if swap else "memory"
        cases.append(Case("runc-limits", "cli", "runc + limits",
                          f"runc run, linux.resources: {memory}, pids, cpu quota/period",
                          limited))
        break
    else:
        skipped["runc-limits"] = f"runc cannot apply the limits here: {error}"
    return cases


def runc_resources(swap: bool) -> dict:
    """``LIMITS`` as OCI ``linux.resources``: what Docker hands runc for the same flags."""
    limits = cgroups.build_limits(**LIMITS)
    memory = {"limit": limits.memory}
    if swap:
        memory["swap"] = 2 * limits.memory
    return {"memory": memory, "pids": {"limit": limits.pids_limit},
            "cpu": {"quota": limits.cpu_quota, "period": limits.cpu_period}}


def _delete_runc_leftovers(runc: str, state: Path) -> None:
    """``runc run`` deletes its container when it exits; one that was interrupted is not."""
    listed = subprocess.run([runc, "--root", str(state), "list", "-q"], capture_output=True,
                            text=True)
    for name in listed.stdout.split():
        subprocess.run([runc, "--root", str(state), "delete", "-f", name], capture_output=True)


# --- podman ----------------------------------------------------------------------------------

def podman_case(ws: Workspace, image_root: Path) -> Case:
    """``podman run --rm`` on the busybox root imported as an image, with a store of its own."""
    podman_bin = shutil.which("podman")
    if not podman_bin:
        raise Skipped("podman is not installed (apt-get install podman)")
    home = ws.dir("podman")
    tmp = ws.dir("podman", "tmp")
    podman = [podman_bin, "--root", str(home / "root"), "--runroot", str(home / "runroot"),
              "--tmpdir", str(tmp), "--network-config-dir", str(ws.dir("podman", "networks")),
              "--events-backend", "file", "--runtime", "runc"]
    env = {**os.environ, "TMPDIR": str(tmp)}  # podman import stages the tar there
    existed = {path: os.path.lexists(path) for path in PODMAN_HOST_PATHS}
    ws.undo.callback(_remove_new_host_paths, existed)
    ws.undo.callback(subprocess.run, [*podman, "rmi", "-af"], capture_output=True, env=env)
    run_flags = list(PODMAN_RUN_FLAGS)
    try:
        _import(podman, image_root, env)
        manager = check([*podman, "info", "--format", "{{.Host.CgroupManager}}"], env=env)
        if manager.stdout.strip() == "cgroupfs":  # systemd's scopes go away by themselves
            parent = f"minidocker-bench-{os.getpid()}"
            run_flags += ["--cgroup-parent", f"/{parent}"]
            ws.undo.callback(_remove_cgroup_dirs, parent)
        argv = [*podman, "run", "--rm", *run_flags, PODMAN_IMAGE, "true"]
        check(argv, env=env)  # the first run creates podman's database and runtime dirs
    except BenchError as exc:
        raise Skipped(f"podman cannot run containers here: {exc}") from exc
    return Case("podman", "cli", "podman", "podman run --rm <busybox import> true",
                timed_command(argv, env=env))


def private_podman_network_dirs(ws: Workspace) -> None:
    """A tmpfs over each of ``PODMAN_NETWORK_DIRS``, seen only in this (the benchmark's
    private) mount namespace and unmounted at the end; a directory made for it is removed
    again. For podman on a bridge network: nothing of its networking reaches the host's files."""
    for directory in PODMAN_NETWORK_DIRS:
        if not os.path.isdir(directory):
            os.makedirs(directory)
            ws.undo.callback(os.rmdir, directory)
        kernel.mount("tmpfs", directory, "tmpfs", 0, "mode=755")
        ws.undo.callback(kernel.umount2, directory, kernel.MNT_DETACH)


def _import(podman: list[str], image_root: Path, env: dict[str, str]) -> None:
    """Stream the busybox root as a tar into ``podman import``: one layer, no config."""
    importer = subprocess.Popen([*podman, "import", "-", PODMAN_IMAGE], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    with tarfile.open(fileobj=importer.stdin, mode="w|") as tar:
        tar.add(image_root, arcname=".")
    importer.stdin.close()
    error = importer.stderr.read().decode()
    if importer.wait() != 0:
        raise BenchError(f"podman import failed: {error.strip()}")


def _remove_cgroup_dirs(parent: str) -> None:
    """Remove the cgroup parent given to podman (and its ``conmon`` child) in every
    hierarchy; rmdir(2) only removes empty cgroups, so a live process keeps its own."""
    for hierarchy in _cgroup_mounts():
        top = Path(hierarchy, parent)
        if not top.is_dir():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p:
                                len(p.parts), reverse=True):
            directory.rmdir()
        top.rmdir()


def _cgroup_mounts() -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[2] in ("cgroup", "cgroup2")]


def _remove_new_host_paths(existed: dict[str, bool]) -> None:
    """Remove the host paths podman created (they did not exist before), if they hold only
    what podman leaves there; anything else in them is not ours, and stays."""
    for path in PODMAN_HOST_PATHS:  # listed children first
        if existed[path] or not os.path.isdir(path):
            continue
        for dirpath, _dirs, filenames in os.walk(path, topdown=False):
            for name in filenames:
                if name in PODMAN_HOST_FILES:
                    os.unlink(os.path.join(dirpath, name))
            with contextlib.suppress(OSError):  # not empty: someone else's
                os.rmdir(dirpath)
