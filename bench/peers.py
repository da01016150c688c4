"""The contestants of the benchmark: how each is set up, runs ``true`` once, and is taken down.

Every peer starts a container from the same root filesystem (minidocker's busybox image) and
runs ``true`` in it, so the time measured is the engine's own work: setting up namespaces and
the root filesystem, exec, exit, cleanup. Everything a peer creates lives in one temporary
workspace (state roots, a runc bundle, a podman store); ``Workspace`` undoes it all at the end,
mounts first. podman also writes a few paths on the host that no flag moves; those are noted
before it starts and removed afterwards if they were new.

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

from minidocker import kernel
from minidocker.container import ContainerSpec, create, run, start
from minidocker.image.busybox import create_busybox_image
from minidocker.namespaces import Stdio

PODMAN_IMAGE = "localhost/minidocker-bench/busybox:latest"
# Paths podman (4.x) creates on the host whatever --root/--runroot say: runc's default state
# dir (podman's cleanup needs it, so it cannot be moved), netavark's run dir and the blob-info
# cache of containers/image. Removed afterwards when they did not exist before, deepest first.
PODMAN_HOST_PATHS = ["/run/runc", "/run/containers/networks", "/run/containers",
                     "/var/lib/containers/cache", "/var/lib/containers"]
PODMAN_HOST_FILES = {"blob-info-cache-v1.boltdb"}  # the only files podman leaves there
# The sandbox this course was written on refuses podman's default rlimits (INTEROP.md).
PODMAN_RUN_FLAGS = ["--network", "none", "--ulimit", "nofile=1024:1024",
                    "--ulimit", "nproc=1000:1000"]


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

def python_cases() -> list[Case]:
    """Python's own start-up, and start-up plus the imports ``minidocker run`` needs."""
    python = sys.executable
    imports = "import minidocker.cli, minidocker.foreground"
    return [
        Case("python", "context", "python start-up", f"{_short(python)} -c pass",
             timed_command([python, "-c", "pass"])),
        Case("python-imports", "context", "python + CLI imports",
             f"{_short(python)} -c '{imports}'", timed_command([python, "-c", imports])),
    ]


def _short(path: str) -> str:
    return path.replace(os.getcwd() + "/", "")


# --- minidocker ------------------------------------------------------------------------------

def minidocker_cases(ws: Workspace) -> tuple[list[Case], Path]:
    """The CLI and the in-process API, on a state root of their own; also returns the busybox
    image's root directory, which the other peers copy."""
    state = ws.dir("minidocker")
    ws.undo.enter_context(_environment("MINIDOCKER_ROOT", str(state)))  # for the API case
    image_root = create_busybox_image()
    entry_point = Path(sys.executable).with_name("minidocker")
    if not entry_point.exists():
        found = shutil.which("minidocker")
        if not found:
            raise BenchError("the 'minidocker' command is not installed: run 'sudo ./kit setup'")
        entry_point = Path(found)
    cli = Case("minidocker-cli", "cli", "minidocker", "minidocker run --rm busybox true",
               timed_command([str(entry_point), "run", "--rm", "busybox", "true"],
                             env={**os.environ, "MINIDOCKER_ROOT": str(state)}))
    devnull = os.open(os.devnull, os.O_RDWR)
    ws.undo.callback(os.close, devnull)
    stdio = Stdio(devnull, devnull, 2)

    def api_once() -> None:
        spec = ContainerSpec(image="busybox", command=["true"], remove=True)
        code = run(spec, stdio).wait()
        if code != 0:
            raise BenchError(f"run(spec).wait() returned {code}, expected 0")

    def phases_once() -> dict[str, float]:
        """The same work as ``run()`` (which is ``start(create(spec))``), timed in its steps."""
        spec = ContainerSpec(image="busybox", command=["true"], remove=True)
        t0 = perf_counter()
        record = create(spec)
        t1 = perf_counter()
        container = start(record, spec, stdio)
        t2 = perf_counter()
        code = container.wait()
        t3 = perf_counter()
        if code != 0:
            raise BenchError(f"start(create(spec)).wait() returned {code}, expected 0")
        return {"create": t1 - t0, "start": t2 - t1, "wait": t3 - t2}

    api = Case("minidocker-api", "api", "minidocker", "run(spec).wait()  # in-process", api_once)
    phases = Case("minidocker-api-phases", "phases", "minidocker",
                  "create(spec); start(...); .wait()", phases_once)
    return [cli, api, phases], image_root


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

def runc_case(ws: Workspace, image_root: Path) -> Case:
    """``runc run`` on an OCI bundle: a copy of the busybox root plus runc's own default
    ``config.json`` (``runc spec``), changed only to run ``true`` without a terminal."""
    runc = shutil.which("runc")
    if not runc:
        raise Skipped("runc is not installed (apt-get install runc)")
    bundle = ws.dir("runc", "bundle")
    state = ws.dir("runc", "state")  # runc's --root: its container state, not /run/runc
    shutil.copytree(image_root, bundle / "rootfs", symlinks=True)
    check([runc, "spec"], cwd=bundle)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = ["true"]
    config["process"]["terminal"] = False
    config_path.write_text(json.dumps(config, indent=2))
    ws.undo.callback(_delete_runc_leftovers, runc, state)
    counter = iter(range(1_000_000))

    def once() -> None:
        name = f"mdbench-{os.getpid()}-{next(counter)}"
        check([runc, "--root", str(state), "run", "--bundle", str(bundle), name])

    try:
        once()
    except BenchError as exc:
        raise Skipped(f"runc cannot run containers here: {exc}") from exc
    return Case("runc", "cli", "runc", "runc run --bundle <busybox copy> <id>", once)


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
