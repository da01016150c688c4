"""Checker of lab 07 — volumes: bind-mount a host directory into a container that already runs.

For every step the sandbox (sandbox.py) mounts a tmpfs on a scratch directory and lays out a
copy of the busybox image (``rootfs/``, with a marker file ``/etc/lab07`` only the container
has) and the host's side of a volume (``host/data/`` with ``hello.txt``, and a file
``host/app.conf``). Then it starts a real, running container on that copy: ``sleep`` as PID 1 of
new PID, mount, UTS and IPC namespaces, in a root built by stage 2 (private mounts, /proc, /sys,
/dev, pivot_root, the old root detached). The student's code is then asked to reach into that
container; the checker looks from inside (a probe that joins the container's mount namespace,
as ``minidocker exec`` would) and from outside (the container's ``/proc/<pid>/mountinfo``, the
host's directory, the sandbox's own mount table, which plays the host's). Everything goes with
the sandbox.

Man pages: setns(2) mount_namespaces(7) open_tree(2) move_mount(2) mount_setattr(2) mount(2)
proc(5). Used by: ``minidocker lab check 07``; the lab is labs/07-volumes/.
"""

import errno
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from minidocker import namespaces, rootfs
from minidocker.labs.framework import ImageWorkspace, Lab, Step, busybox_workspace, function
from minidocker.labs.sandbox import (
    CheckFailed,
    HostView,
    call_student,
    describe_error,
    in_child,
    mount_scratch,
    mount_table,
    read_file,
    write_file,
)

MARKER = "/etc/lab07"  # only the container's root has it
MARKER_TEXT = "inside the container\n"
HELLO = "hello from the host\n"
CONFIG = "colour=blue\n"
TOP = "/lab07"  # every mount point of the checks lies below it (absent from the image)


@dataclass
class Stage:
    """One step's container, and the host's side of its volume, in a tmpfs of the sandbox."""

    scratch: str
    root: str  # the container's root filesystem (a copy of busybox), seen from the host
    host_dir: str  # a directory of the host, to mount into the container
    host_file: str  # a file of the host, to mount too
    container: namespaces.Process

    @property
    def pid(self) -> int:
        return self.container.pid

    def stop(self) -> None:
        self.container.signal(signal.SIGKILL)
        self.container.wait()


@contextmanager
def stage(space: ImageWorkspace) -> Iterator[Stage]:
    """In the sandbox: a tmpfs on the scratch directory, the image's copy, the host's files,
    and a container running on the copy. The container is stopped at the end."""
    mount_scratch(space.scratch)
    root = os.path.join(space.scratch, "rootfs")
    shutil.copytree(space.image, root, symlinks=True)
    write_file(root + MARKER, MARKER_TEXT)
    host_dir = os.path.join(space.scratch, "host", "data")
    host_file = os.path.join(space.scratch, "host", "app.conf")
    write_file(os.path.join(host_dir, "hello.txt"), HELLO)
    write_file(host_file, CONFIG)
    quiet = os.open(os.devnull, os.O_RDWR)
    try:
        container = namespaces.spawn(
            ["sleep", "600"], ["mnt", "pid", "uts", "ipc"],
            stdio=namespaces.Stdio(quiet, quiet, quiet),
            setup=lambda: rootfs.enter_rootfs(rootfs.RootfsSpec(root)))
    finally:
        os.close(quiet)
    here = Stage(space.scratch, root, host_dir, host_file, container)
    try:
        yield here
    finally:
        here.stop()


def try_write(path: str, text: str = "written\n") -> str:
    """``"ok"`` if ``path`` could be written, else the errno's name (``"EROFS"``)."""
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"


# --- looking from inside and from outside ------------------------------------------------------

def inside(pid: int, probe: Callable[[], dict]) -> dict:
    """Run ``probe`` in a forked child that joined ``pid``'s mount namespace (what ``minidocker
    exec`` does first) and return the dict it reports. A NotImplementedError or CheckFailed
    raised in there is raised here again."""

    def joined() -> dict:
        namespaces.join(pid, ["mnt"])
        return probe()

    return in_child(joined, "the probe died")


def container_mounts(pid: int) -> list[dict]:
    """The container's mount table, read from the host: ``/proc/<pid>/mountinfo``."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return mount_table(f.read())


def mount_at(pid: int, point: str) -> dict | None:
    found = [m for m in container_mounts(pid) if m["point"] == point]
    return found[-1] if found else None  # the top one, if several are stacked there


def mountinfo_options(pid: int, point: str) -> list[str]:
    """The per-mount options (mountinfo's 6th field: rw or ro, nosuid, ...) of ``point``."""
    with open(f"/proc/{pid}/mountinfo") as f:
        lines = [line.split() for line in f]
    found = [fields[5].split(",") for fields in lines if fields[4] == point]
    return found[-1] if found else []


@contextmanager
def nothing_on_the_host() -> Iterator[None]:
    """The sandbox shares the machine's files (only its mounts are its own): a mount point made
    on the host's side instead of the container's would land in the real /. Remove it, and
    fail."""
    existed = os.path.lexists(TOP)
    yield
    if not existed and os.path.lexists(TOP):
        shutil.rmtree(TOP, ignore_errors=True)
        if os.path.lexists(TOP):
            os.remove(TOP)
        raise CheckFailed(f"{TOP} was made on the host (and the checker removed it): the mount "
                          "point belongs inside the container, so make it after setns(2), in "
                          "the child that joined the container's mount namespace")


def expect_host_unchanged(before: HostView, what: str) -> None:
    """The caller (the sandbox, playing the host) is where it was, with the mounts it had."""
    after = HostView.now()
    if after.namespaces["mnt"] != before.namespaces["mnt"]:
        raise CheckFailed(f"{what} moved its caller (the host, here) into another mount "
                          f"namespace ({after.namespaces['mnt']}): setns(2) in a forked child, "
                          "so that the caller keeps the host's mount table")
    for mount_id in after.mounts.keys() - before.mounts.keys():
        point, fstype = after.mounts[mount_id]
        raise CheckFailed(f"a {fstype} mount on {point} appeared in the host's mount table: "
                          "the mount belongs in the container's mount namespace only (attach "
                          "it from the child that joined it)")
    for mount_id in before.mounts.keys() - after.mounts.keys():
        point, fstype = before.mounts[mount_id]
        raise CheckFailed(f"the host's {fstype} mount on {point} disappeared")


# --- step 1: a child in the container's mount namespace ----------------------------------------

def check_enter(student, space: ImageWorkspace) -> str:
    run = function(student, "run_in_mount_namespace")
    with stage(space) as here:
        proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)  # the sandbox's, for the child
        container_ns = os.readlink(f"/proc/{here.pid}/ns/mnt")
        read_fd, write_fd = os.pipe()

        def look() -> None:  # runs in the student's child
            seen = {"mnt": os.readlink("self/ns/mnt", dir_fd=proc),
                    "marker": read_file(MARKER), "cwd": os.getcwd(),
                    "host_files": os.path.exists(here.host_dir)}
            os.write(write_fd, (json.dumps(seen) + "\n").encode())

        before = HostView.now()
        call_student(run, here.pid, look)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            report = f.read()
        expect_host_unchanged(before, "run_in_mount_namespace()")
        if not report:
            raise CheckFailed("run_in_mount_namespace() returned, but the function it was given "
                              "never ran (or died before it could say what it saw): call "
                              "function() in the child, after setns(2)")
        seen = json.loads(report.splitlines()[0])
        if seen["mnt"] == before.namespaces["mnt"]:
            extra = (" /etc/lab07 is readable, so you changed only its root (chroot?): "
                     "a mount made there would still land in the host's table"
                     if seen["marker"] == MARKER_TEXT else "")
            raise CheckFailed("the function ran in the host's mount namespace, not the "
                              f"container's ({container_ns}): open /proc/<pid>/ns/mnt and "
                              f"setns(2) into it (nstype CLONE_NEWNS).{extra}")
        if seen["mnt"] != container_ns:
            raise CheckFailed(f"the function ran in a new mount namespace ({seen['mnt']}), not "
                              f"the container's ({container_ns}): unshare(2) makes a new one, "
                              "setns(2) joins one that exists")
        if seen["marker"] != MARKER_TEXT:
            raise CheckFailed("the function ran in the container's mount namespace, but / "
                              "was not the container's root (/etc/lab07 was missing)")
        error, _stderr = call_with_stderr(run, here.pid, fail)
        if error is None:
            raise CheckFailed("given a function that raises, run_in_mount_namespace() returned "
                              "as if all went well: wait for the child, and raise when its exit "
                              "code is not 0 (the caller must know that the mount did not "
                              "happen)")
    return ("the child joined the container's mount namespace: there / was the container's "
            f"root ({MARKER} readable, cwd {seen['cwd']}), the host's directory out of sight, "
            "and the caller stayed in the host's namespace; a failure in the child was raised "
            "in the caller")


def fail() -> None:
    """A function that fails, as a mount can: the caller must hear of it."""
    raise OSError(errno.ENOENT, "a function that fails, on purpose")


def call_with_stderr(function: Callable, *args) -> tuple[BaseException | None, str]:
    """Call a student's function with fd 2 sent to a file; return what it raised (None if it
    returned) and what it, or its children, wrote on stderr. A NotImplementedError and a
    CheckFailed go through."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as errors:
        os.dup2(errors.fileno(), 2)
        raised = None
        try:
            call_student(function, *args)
        except (NotImplementedError, CheckFailed):
            raise
        except Exception as exc:
            raised = exc
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        errors.seek(0)
        return raised, errors.read().decode(errors="replace")


# --- step 2: the mount point, inside -----------------------------------------------------------

def check_mount_point(student, space: ImageWorkspace) -> str:
    make = function(student, "make_mount_point")
    with nothing_on_the_host(), stage(space) as here:
        hostname = read_file(here.root + "/etc/hostname")

        def make_new() -> dict:
            call_student(make, TOP + "/data", True)
            call_student(make, TOP + "/conf/app.conf", False)
            return {}

        def make_existing() -> dict:
            call_student(make, TOP + "/data", True)  # again: it exists already
            call_student(make, "/etc/hostname", False)  # a file of the image
            return {}

        inside(here.pid, make_new)
        data, conf = here.root + TOP + "/data", here.root + TOP + "/conf/app.conf"
        if not os.path.isdir(data):
            what = "a file" if os.path.exists(data) else "nothing"
            raise CheckFailed(f"the container has {what} at {TOP}/data: make_mount_point(path, "
                              "True) makes a directory, with its parents")
        if not os.path.isfile(conf):
            what = "a directory" if os.path.isdir(conf) else "nothing"
            raise CheckFailed(f"the container has {what} at {TOP}/conf/app.conf: "
                              "make_mount_point(path, False) makes an empty file (a file can "
                              "only be mounted on a file), with the directories above it")
        if os.path.getsize(conf) != 0:
            raise CheckFailed(f"{TOP}/conf/app.conf is not empty: make an empty file")
        try:
            inside(here.pid, make_existing)
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}: when the mount point exists already, leave it as it is "
                              "(the mount will cover it)") from None
        if read_file(here.root + "/etc/hostname") != hostname:
            raise CheckFailed("/etc/hostname of the image changed: when the mount point exists "
                              "already, leave it as it is (the mount will cover it)")
    return (f"inside the container, {TOP}/data is a new directory and {TOP}/conf/app.conf an "
            "empty file, parents made; an existing /etc/hostname was left alone; the host's / "
            "got nothing")


# --- step 3: the host's directory in the running container -------------------------------------

def explain_failure(exc: BaseException, stderr: str) -> str:
    """A sentence for the usual ways a hot mount fails, with what to do instead."""
    said = f"{exc} {stderr}"
    if "/proc/self/fd" in said and ("No such file" in said or "ENOENT" in said):
        return ("mounting from /proc/self/fd/N failed with ENOENT: after setns(2), /proc is "
                "the container's, where your process does not exist. And even through the "
                "host's /proc, mount(2) with MS_BIND refuses a source from another mount "
                "namespace (EINVAL): take the host path as a detached tree with open_tree(2) "
                "before setns, and attach it with move_mount(2)")
    if "Invalid argument" in said and "mount(" in said:
        return ("mount(2) refused with EINVAL: a bind mount's source must be a mount of the "
                "caller's own namespace, and the host's is not the container's. Take the host "
                "path as a detached tree with open_tree(OPEN_TREE_CLONE) before setns(2), and "
                "attach it with move_mount(2) after")
    if "No such file" in said and ("open_tree" in said or "mount(" in said):
        return (f"{describe_error(exc)}: take the host path before setns(2) (open_tree); from "
                "inside the container, the host's paths do not exist")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return describe_error(exc) + (f" (stderr said: {lines[-1]})" if lines else "")


def hot_mount(student, here: Stage, host_path: str, target: str, readonly: bool) -> None:
    mount = function(student, "hot_mount")
    before = HostView.now()
    error, stderr = call_with_stderr(mount, here.pid, host_path, target, readonly)
    if error is not None:
        raise CheckFailed(f"hot_mount(pid, {host_path.replace(here.scratch, '...')!r}, "
                          f"{target!r}) failed: " + explain_failure(error, stderr))
    expect_host_unchanged(before, "hot_mount()")


def expect_mounted(here: Stage, target: str, host_path: str) -> dict:
    """The container's mount table has a bind of ``host_path`` on ``target``."""
    mount = mount_at(here.pid, target)
    if mount is None:
        raise CheckFailed(f"the container's /proc/{here.pid}/mountinfo has no mount on {target}: "
                          "attach the tree there (move_mount), inside the container's mount "
                          "namespace (copying the files is not a mount: later writes would not "
                          "show on the other side)")
    expected_root = "/" + os.path.relpath(host_path, here.scratch)
    if mount["fstype"] != "tmpfs" or mount["root"] != expected_root:
        raise CheckFailed(f"the mount on {target} shows {mount['root']} of a {mount['fstype']}, "
                          f"not the host's {expected_root}: clone the host path itself "
                          "(open_tree(host_path, OPEN_TREE_CLONE))")
    shared = [tag for tag in mount["tags"] if tag.startswith("shared:")]
    if shared:
        raise CheckFailed(f"the new mount on {target} is {shared[0]}: a peer of the host's "
                          "mount, so a mount made later below it on either side appears on the "
                          "other. Make it private, as Docker's binds are (rprivate): "
                          "mount_setattr(tree, propagation=kernel.MS_PRIVATE) before attaching")
    return mount


def check_hot_mount(student, space: ImageWorkspace) -> str:
    with nothing_on_the_host(), stage(space) as here:
        hot_mount(student, here, here.host_dir, TOP + "/data", False)
        hot_mount(student, here, here.host_file, TOP + "/app.conf", False)
        write_file(os.path.join(here.host_dir, "from-host.txt"), "written by the host after\n")

        def probe() -> dict:
            return {"hello": read_file(TOP + "/data/hello.txt"),
                    "late": read_file(TOP + "/data/from-host.txt"),
                    "config": read_file(TOP + "/app.conf"),
                    "write": try_write(TOP + "/data/from-inside.txt", "written inside\n"),
                    "marker": read_file(MARKER)}

        seen = inside(here.pid, probe)
        mount = expect_mounted(here, TOP + "/data", here.host_dir)
        expect_mounted(here, TOP + "/app.conf", here.host_file)
        if seen["hello"] != HELLO:
            raise CheckFailed(f"inside the container, {TOP}/data/hello.txt cannot be read")
        if seen["late"] is None:
            raise CheckFailed("a file the host wrote after hot_mount() did not show inside: "
                              "the container needs a mount of the host's directory, not a copy")
        if seen["config"] != CONFIG:
            raise CheckFailed(f"inside the container, {TOP}/app.conf does not show the host's "
                              "file: a file mounts on a file (is_dir False for step 2)")
        if seen["write"] != "ok":
            raise CheckFailed(f"writing {TOP}/data/from-inside.txt inside the container failed "
                              f"({seen['write']}): without readonly the mount is writable")
        if read_file(os.path.join(here.host_dir, "from-inside.txt")) != "written inside\n":
            raise CheckFailed("a file written inside the container did not reach the host's "
                              "directory")
    return (f"{TOP}/data in the running container is a private bind of the host's directory "
            f"(root {mount['root']} of the host's tmpfs in its mountinfo), and {TOP}/app.conf "
            "of the host's file: the host's later file shows inside, the container's write "
            "reaches the host, and the host's mount table did not change")


# --- step 4: read-only ----------------------------------------------------------------------------

def check_readonly(student, space: ImageWorkspace) -> str:
    with nothing_on_the_host(), stage(space) as here:
        hot_mount(student, here, here.host_dir, TOP + "/ro", True)

        def probe() -> dict:
            return {"hello": read_file(TOP + "/ro/hello.txt"),
                    "write": try_write(TOP + "/ro/from-inside.txt"),
                    "root_write": try_write("/tmp/lab07-rw")}

        seen = inside(here.pid, probe)
        if try_write(os.path.join(here.host_dir, "from-host.txt")) == "EROFS":
            raise CheckFailed("the host's own directory became read-only too: the whole "
                              "filesystem was made read-only (a remount without MS_BIND changes "
                              "the superblock). Make only the new mount read-only: "
                              "MOUNT_ATTR_RDONLY with mount_setattr(2), or "
                              "MS_REMOUNT | MS_BIND | MS_RDONLY on the mount point")
        expect_mounted(here, TOP + "/ro", here.host_dir)
        if seen["hello"] != HELLO:
            raise CheckFailed(f"inside the container, {TOP}/ro/hello.txt cannot be read")
        if seen["write"] == "ok":
            raise CheckFailed(f"writing {TOP}/ro/from-inside.txt inside the container worked: "
                              "with readonly, make the mount read-only (MOUNT_ATTR_RDONLY)")
        if seen["write"] != "EROFS":
            raise CheckFailed(f"writing in {TOP}/ro failed with {seen['write']}, not EROFS "
                              "(read-only file system)")
        if seen["root_write"] != "ok":
            raise CheckFailed(f"the container's own / is no longer writable ({seen['root_write']}"
                              "): make only the new mount read-only")
        options = mountinfo_options(here.pid, TOP + "/ro")
    return (f"inside, {TOP}/ro reads the host's files and a write fails with EROFS (mountinfo: "
            f"{options[0]}); the host still writes its directory, and the container its own /")


LAB = Lab(
    directory="07-volumes",
    steps=(
        Step(1, "run a function in a forked child that joined a container's mount namespace",
             check_enter),
        Step(2, "make the mount point inside the container", check_mount_point),
        Step(3, "bind a host directory and a host file into the running container",
             check_hot_mount),
        Step(4, "make that bind read-only, for the container only", check_readonly),
    ),
    cumulative=True,
    workspace=lambda: busybox_workspace("07"),
)
