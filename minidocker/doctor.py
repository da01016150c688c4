"""``minidocker doctor``: can this machine run containers? Each check says how to fix a failure.

It looks at what the kernel offers (namespace types, overlayfs, the cgroup layout), the tools
minidocker uses (busybox-static, iptables) and the state (the base image).

Man pages: namespaces(7), cgroups(7), overlayfs (kernel docs), iptables(8).
Used by: ``./kit setup`` and README's troubleshooting; the notebooks point to it when a
feature is missing (notebook 07-volumes).
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from minidocker import cgroups
from minidocker.image.store import list_images
from minidocker.kernel import unshare
from minidocker.namespaces import NAMESPACES, Report, flags_for, in_child
from minidocker.state import state_root

MIN_KERNEL = (5, 4)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def checks() -> list[Check]:
    found = [check_root(), check_kernel()]
    found += [check_namespace(kind) for kind in NAMESPACES]
    found += [check_overlay(), check_cgroups(), check_iptables(), check_busybox(),
              check_base_image()]
    return found


def check_root() -> Check:
    ok = os.geteuid() == 0
    return Check("running as root", ok, f"euid {os.geteuid()}", "run with sudo")


def check_kernel() -> Check:
    release = os.uname().release
    version = tuple(int(p) for p in release.split("-")[0].split(".")[:2])
    return Check("kernel version", version >= MIN_KERNEL, release,
                 f"use a Linux kernel >= {'.'.join(map(str, MIN_KERNEL))} (Debian 12, "
                 "Ubuntu 24.04)")


def check_namespace(kind: str) -> Check:
    """Try the namespace for real: a forked child unshares it and reports."""
    detail = in_child(f"try the {kind} namespace", _try_unshare, kind)
    return Check(f"{kind} namespace", detail == "works", detail,
                 f"enable CONFIG_{kind.upper()}_NS in the kernel, or run as root outside a "
                 "restricted sandbox")


def _try_unshare(report: Report, kind: str) -> str:
    report.step(f"unshare {kind}")
    try:
        unshare(flags_for([kind]))
    except OSError as exc:
        return os.strerror(exc.errno)
    return "works"


def check_overlay() -> Check:
    ok = "overlay" in Path("/proc/filesystems").read_text()
    return Check("overlayfs", ok, "available" if ok else "missing", "modprobe overlay")


LAYOUTS = {
    "v2": "v2 only (unified hierarchy at /sys/fs/cgroup)",
    "hybrid": "hybrid (v1 controllers, and a v2 tree at /sys/fs/cgroup/unified)",
    "v1": "v1 only (one hierarchy per controller)",
}


def check_cgroups() -> Check:
    return Check("cgroup layout", True, LAYOUTS[cgroups.layout()], required=False)


def check_iptables() -> Check:
    if not shutil.which("iptables"):
        return Check("iptables", False, "not installed", "apt-get install iptables",
                     required=False)
    out = subprocess.run(["iptables", "--version"], capture_output=True, text=True).stdout
    return Check("iptables backend", True, out.strip(), required=False)


def check_busybox() -> Check:
    ok = os.path.exists("/bin/busybox")
    return Check("busybox-static", ok, "/bin/busybox" if ok else "missing",
                 "apt-get install busybox-static")


def check_base_image() -> Check:
    ok = "busybox:latest" in list_images()
    return Check("base image busybox", ok, f"in {state_root()}" if ok else "missing",
                 "sudo minidocker setup")


def report() -> int:
    failed = 0
    for check in checks():
        mark = "ok" if check.ok else ("FAIL" if check.required else "warn")
        line = f"[{mark:>4}] {check.name}: {check.detail}"
        if not check.ok:
            line += f"\n       fix: {check.fix}"
            failed += check.required
        print(line)
    print("All required checks pass." if not failed else f"{failed} required check(s) failed.")
    return 1 if failed else 0



