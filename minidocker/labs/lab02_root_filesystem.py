"""Checker of lab 02 — the root filesystem: ``enter_rootfs(new_root)``, one step at a time.

For every step the sandbox (sandbox.py) mounts a tmpfs on a scratch directory and copies the
busybox image into it (``rootfs/``), next to a marker file that only the host side has
(``host-only-marker``). Then a *container* process (PID 1 of a new PID namespace, in a new mount
namespace) runs the student's steps 1..N on that copy and looks around: its mount table, what
``/`` holds, whether the marker can be reached, what ``/proc`` shows, whether ``/x`` can be
written. The sandbox checks that its own mounts did not change, and judges what was seen.

Man pages: mount_namespaces(7) mount(2) pivot_root(2) umount2(2) chroot(2) proc(5).
Used by: ``minidocker lab check 02``; the lab is labs/02-root-filesystem/.
"""

import errno
import os
import shutil
from dataclasses import dataclass

from minidocker import rootfs
from minidocker.labs.framework import ImageWorkspace, Lab, Step, busybox_workspace, function
from minidocker.labs.sandbox import (
    CheckFailed,
    HostView,
    call_student,
    expect_host_unchanged,
    mount_scratch,
    mount_table,
    read_proc,
    run_in_container,
    write_file,
)

STUDENT_STEPS = ["prepare_new_root", "pivot_into", "mount_proc"]  # steps 1-3, in order
KERNEL_TREES = ("/proc", "/sys", "/dev")  # mounts a runtime may add; not traces of the host


@dataclass
class Stage:
    """One step's copy of the image, inside the sandbox."""

    root: str  # new_root: a copy of the busybox image
    marker: str  # a file beside it, which only the host side can reach
    entries: list[str]  # what the image has at its top level


def stage(space: ImageWorkspace) -> Stage:
    """In the sandbox: a tmpfs on the scratch directory, a copy of the image, the marker."""
    mount_scratch(space.scratch)
    root = os.path.join(space.scratch, "rootfs")
    shutil.copytree(space.image, root, symlinks=True)
    marker = os.path.join(space.scratch, "host-only-marker")
    write_file(marker, "only the host can read this\n")
    return Stage(root, marker, sorted(os.listdir(root)))


# --- inside the container ------------------------------------------------------------------------

def enter(student, step: int, root: str) -> None:
    """Run the student's steps 1..``step``; step 4 is the whole story, ``enter_rootfs``."""
    if step == 4:
        call_student(function(student, "enter_rootfs"), root, True)
        return
    for name in STUDENT_STEPS[:step]:
        args = (root,) if name in ("prepare_new_root", "pivot_into") else ()
        call_student(function(student, name), *args)


def look_around(step: int, stage: Stage) -> dict:
    """What the container sees after the student's steps. No imports may happen here: after
    pivot_root the host's Python library is out of reach."""
    seen: dict = {"mounts": mount_table(read_proc("self/mountinfo"))}
    if step == 1:
        seen["image_at_root"] = os.path.exists(os.path.join(stage.root, "bin", "busybox"))
        return seen
    seen["busybox"] = os.path.exists("/bin/busybox")
    seen["entries"] = sorted(os.listdir("/"))
    seen["cwd_is_root"] = os.path.samefile(".", "/")
    points = [m["point"] for m in seen["mounts"]]
    seen["marker_at"] = [path for path in [stage.marker] + [p.rstrip("/") + stage.marker
                                                            for p in points]
                         if os.path.exists(path)]
    if step == 2:
        seen["escaped"] = try_chroot_escape(stage.marker)
    if step >= 3:
        seen["proc_self"] = os.readlink("/proc/self") if os.path.lexists("/proc/self") else None
        seen["proc_pids"] = sorted(d for d in os.listdir("/proc") if d.isdigit())
    if step == 4:
        seen["write_x"] = try_write("/x")
    return seen


def try_chroot_escape(marker: str) -> bool:
    """Let a root process try the classic chroot escape (rootfs.chroot_escape) and say whether
    it reached the marker. It runs in a forked child: the escape changes its root."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            rootfs.chroot_escape()
            os.write(write_fd, b"1" if os.path.exists(marker) else b"0")
        finally:
            os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 1)
    os.close(read_fd)
    os.waitpid(child, 0)
    return answer == b"1"


def try_write(path: str) -> str:
    """``"ok"`` if a file can be created at ``path``, else the errno's name (``"EROFS"``)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"


# --- in the sandbox: run, then judge what was seen ---------------------------------------------

def run_step(student, space: ImageWorkspace, step: int) -> tuple[dict, Stage]:
    here = stage(space)

    def container() -> dict:
        enter(student, step, here.root)
        return look_around(step, here)

    before = HostView.now()
    seen = run_in_container(container)
    expect_host_unchanged(before)
    return seen, here


def check_private_bind(student, space: ImageWorkspace) -> str:
    seen, here = run_step(student, space, 1)
    shared = [m for m in seen["mounts"] if any(t.startswith("shared:") for t in m["tags"])]
    if shared:
        raise CheckFailed(f"{len(shared)} mounts are still shared, like {shared[0]['point']} "
                          f"({shared[0]['tags'][0]}): a mount made under them would propagate "
                          "to the host. Make every mount private, recursively, first")
    if here.root not in [m["point"] for m in seen["mounts"]]:
        raise CheckFailed("new_root is not a mount point, and pivot_root(2) needs one: "
                          "bind-mount new_root onto itself")
    if not seen["image_at_root"]:
        raise CheckFailed("new_root is a mount point but no longer shows the image: bind "
                          "new_root onto itself (MS_BIND) instead of mounting something new")
    return (f"all {len(seen['mounts'])} mounts are private; new_root is a mount point (a bind "
            "of itself)")


def check_pivot(student, space: ImageWorkspace) -> str:
    seen, here = run_step(student, space, 2)
    if not seen["busybox"]:
        raise CheckFailed(f"/ is not the image (it holds {', '.join(seen['entries'][:8])}): "
                          "pivot_root into new_root")
    if not seen["cwd_is_root"]:
        raise CheckFailed("the working directory is still on the old root, a way back to the "
                          "host: chdir('/') right after pivot_root")
    old = [m["point"] for m in seen["mounts"]
           if m["point"] != "/" and not m["point"].startswith(KERNEL_TREES)]
    if old:
        raise CheckFailed(f"the old root is still mounted ({', '.join(old[:3])} ...): detach it "
                          "with umount2(..., MNT_DETACH)")
    if seen["marker_at"]:
        raise CheckFailed(f"the host's files are still reachable, at {seen['marker_at'][0]}")
    if seen["escaped"]:
        raise CheckFailed("a root process climbed out with the chroot escape and reached the "
                          "host's files: chroot is not enough, use pivot_root")
    leftovers = sorted(set(seen["entries"]) - set(here.entries))
    if leftovers:
        raise CheckFailed(f"leftover in /: {', '.join(leftovers)} (not in the image): remove "
                          "the directory that held the old root once it is detached")
    return (f"/ is the image ({' '.join(here.entries)}), one mount, and no way back: the host's "
            "marker is unreachable, even by a chroot escape")


def check_proc(student, space: ImageWorkspace) -> str:
    seen, _here = run_step(student, space, 3)
    proc = [m for m in seen["mounts"] if m["point"] == "/proc"]
    if not proc:
        raise CheckFailed("nothing is mounted on /proc: mount a procfs there (after "
                          "pivot_root, so that the path is the container's /proc)")
    if proc[-1]["fstype"] != "proc":
        raise CheckFailed(f"/proc holds a {proc[-1]['fstype']} mount, not a proc filesystem")
    if seen["proc_self"] != "1":
        raise CheckFailed(f"this /proc counts PIDs in another PID namespace (/proc/self is "
                          f"{seen['proc_self']}, but we are PID 1): mount a *new* procfs")
    return (f"/proc is a fresh procfs of the container's PID namespace: it lists PID "
            f"{', '.join(seen['proc_pids'])} only")


def check_readonly(student, space: ImageWorkspace) -> str:
    seen, here = run_step(student, space, 4)
    if try_write(os.path.join(os.path.dirname(here.root), "host-side-write")) == "EROFS":
        raise CheckFailed("the whole filesystem became read-only, for the host too: remount "
                          "with MS_BIND, so that only the container's mount of / changes")
    if not seen["busybox"] or not any(m["point"] == "/proc" for m in seen["mounts"]):
        raise CheckFailed("enter_rootfs(new_root, readonly=True) should do steps 1-3 as well")
    if seen["write_x"] == "ok":
        raise CheckFailed("writing /x worked: / is still writable")
    if seen["write_x"] != "EROFS":
        raise CheckFailed(f"writing /x failed with {seen['write_x']}, not EROFS (read-only "
                          "file system)")
    return "writing /x fails with EROFS (read-only file system); the host's side stays writable"


LAB = Lab(
    directory="02-root-filesystem",
    steps=(
        Step(1, "private mounts, and new_root bound onto itself", check_private_bind),
        Step(2, "pivot_root into new_root; the old root detached and removed", check_pivot),
        Step(3, "a fresh /proc", check_proc),
        Step(4, "a read-only root (enter_rootfs(new_root, readonly=True))", check_readonly),
    ),
    cumulative=True,
    workspace=lambda: busybox_workspace("02"),
)
