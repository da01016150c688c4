"""Stage 9 — least privilege: what the container's root may still do.

Namespaces decide what a container *sees*; this stage decides what its root may *do*. Three
mechanisms, all set in the container process just before it execs its command:

  capabilities   root's power cut into ~40 pieces; Docker keeps 14 (capabilities.py)
  no_new_privs   exec can never grant more: setuid bits and file capabilities stop working
  seccomp        a BPF filter on every system call (bpf.py, seccomp.py, profiles.py)

``apply(options)`` does it in runc's order (libcontainer/standard_init_linux.go):
  1. no_new_privs, if asked: a prctl that needs no privilege;
  2. seccomp, if no_new_privs is *off*: installing a filter then needs CAP_SYS_ADMIN, which
     step 3 may take away — so it goes first, and the filter must allow steps 3-4's calls
     (prctl, capset, setuid); this is Docker's default case;
  3. capabilities: bounding set (needs CAP_SETPCAP), ambient, then — if the container runs
     as another user — setuid with PR_SET_KEEPCAPS on, then capset;
  4. seccomp, if no_new_privs is *on*: as late as possible, so that the filter sees as few of
     minidocker's own calls as possible;
  5. execve — the caller's next line.

Man pages: capabilities(7) prctl(2) (PR_SET_NO_NEW_PRIVS) seccomp(2); Docker's "docker run"
reference (--cap-add, --cap-drop, --privileged, --security-opt). Used by: notebook 09-security.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from minidocker import kernel
from minidocker.errors import MinidockerError
from minidocker.security import capabilities, seccomp
from minidocker.security.bpf import Program
from minidocker.security.capabilities import DOCKER_DEFAULT
from minidocker.security.profiles import load_profile

__all__ = ["SecurityOptions", "apply", "load_profile", "parse_security_opts",
           "set_no_new_privs", "status"]


def _default_filter() -> Program:
    return seccomp.compile(seccomp.default_profile(), DOCKER_DEFAULT)


@dataclass
class SecurityOptions:
    """What stage 9 does to one container. ``seccomp`` is the compiled filter, or None for
    ``unconfined``; ``seccomp_profile`` says where it came from (as ``docker inspect`` shows:
    "default", "unconfined" or a file's path)."""

    capabilities: frozenset[str] = DOCKER_DEFAULT
    no_new_privs: bool = False
    seccomp: Program | None = field(default_factory=_default_filter)
    seccomp_profile: str = "default"
    privileged: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready record (for the container's state on disk)."""
        return {"capabilities": sorted(self.capabilities), "no_new_privs": self.no_new_privs,
                "seccomp": self.seccomp.to_bytes().hex() if self.seccomp else None,
                "seccomp_profile": self.seccomp_profile, "privileged": self.privileged}

    @classmethod
    def from_dict(cls, data: dict) -> "SecurityOptions":
        program = data.get("seccomp")
        return cls(frozenset(data["capabilities"]), data["no_new_privs"],
                   Program.from_bytes(bytes.fromhex(program)) if program else None,
                   data.get("seccomp_profile", "default"), data.get("privileged", False))


def parse_security_opts(security_opt=(), cap_add=(), cap_drop=(),
                        privileged: bool = False) -> SecurityOptions:
    """The options of ``docker run --security-opt ... --cap-add ... --cap-drop ...
    --privileged``, with Docker's rules:

    - ``no-new-privileges`` or ``no-new-privileges=true|false``;
    - ``seccomp=unconfined`` (no filter), ``seccomp=PROFILE.json`` (Docker's JSON format);
    - ``apparmor=...``, ``label=...``: accepted with a warning (no LSM in this kit);
    - ``:`` instead of ``=`` still works, as in Docker (deprecated there);
    - ``--privileged``: every capability and no seccomp filter.
    """
    caps = capabilities.resolve(cap_add, cap_drop, privileged)
    options = SecurityOptions(caps, seccomp=None, privileged=privileged)
    profile_name = "default"
    for opt in security_opt:
        key, value = _split(opt)
        if key == "no-new-privileges":
            options.no_new_privs = _bool(value, opt)
        elif key == "seccomp":
            profile_name = value
        elif key in ("apparmor", "label"):
            options.warnings.append(f"--security-opt {opt}: minidocker has no Linux security "
                                    f"module (AppArmor, SELinux) support; ignored")
        else:
            raise MinidockerError(
                f"invalid --security-opt {opt!r}: use no-new-privileges[=true|false], "
                f"seccomp=unconfined, seccomp=PROFILE.json, apparmor=... or label=...")
    if privileged or profile_name == "unconfined":
        options.seccomp_profile = "unconfined"
    elif profile_name == "default":
        options.seccomp = seccomp.compile(seccomp.default_profile(), caps)
    else:
        options.seccomp = seccomp.compile(load_profile(profile_name), caps)
        options.seccomp_profile = profile_name
    return options


def _split(opt: str) -> tuple[str, str | None]:
    if opt == "no-new-privileges":
        return opt, "true"
    for separator in ("=", ":"):
        if separator in opt:
            key, value = opt.split(separator, 1)
            return key, value
    raise MinidockerError(f"invalid --security-opt {opt!r}: expected KEY=VALUE, "
                          f"e.g. seccomp=unconfined or no-new-privileges=true")


def _bool(value: str | None, opt: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if value is None or value.lower() not in words:
        raise MinidockerError(f"invalid --security-opt {opt!r}: no-new-privileges takes "
                              f"true or false")
    return words[value.lower()]


# --- in the container, the last steps before exec ---------------------------------------------

def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)``: from now on, for this process and everything it
    execs, setuid/setgid bits and file capabilities grant nothing. It cannot be undone."""
    kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)


def apply(options: SecurityOptions, switch_user: Callable[[], None] | None = None) -> None:
    """Steps 1-4 of the module's story; call it as the very last thing before execve.
    ``switch_user`` (setgroups/setgid/setuid for ``--user``) runs between the bounding-set
    drop and capset, with PR_SET_KEEPCAPS on, as runc does."""
    if options.no_new_privs:
        set_no_new_privs()
    if options.seccomp is not None and not options.no_new_privs:
        seccomp.install(options.seccomp)  # while CAP_SYS_ADMIN is still ours
    capabilities.drop_bounding_set(options.capabilities)
    capabilities.clear_ambient()
    if switch_user is not None:
        capabilities.keep_caps(True)
        switch_user()
        capabilities.keep_caps(False)
    capabilities.set_process_caps(options.capabilities)
    if options.seccomp is not None and options.no_new_privs:
        seccomp.install(options.seccomp)


def status(pid: int | str = "self") -> str:
    """What stage 9 left on a process, from /proc/<pid>/status: a table for notebooks."""
    with open(f"/proc/{pid}/status") as f:
        nnp = next((line.split()[1] for line in f if line.startswith("NoNewPrivs:")), "?")
    filters = seccomp.read_status(pid)
    mode = {0: "off", 1: "strict", 2: "filter"}.get(filters.mode, "?")
    return (f"{capabilities.read_status(pid).show()}\n"
            f"no_new_privs {nnp}\n"
            f"seccomp      mode {filters.mode} ({mode}), {filters.filters} filter(s)")
