"""Stage 9 — seccomp: a filter on every system call the container makes.

Capabilities decide what a call may *do*; seccomp decides which calls may be *made* at all.
A filter is a classic BPF program (bpf.py) that the kernel runs on each system call, reading
``struct seccomp_data`` (``nr``, ``arch``, ``instruction_pointer``, ``args[6]``) and returning a
verdict: ALLOW, ERRNO(n) (the call fails with errno n), KILL_PROCESS, LOG, TRAP or TRACE.
The filter is inherited by children and across exec, and can never be removed.

The program ``compile()`` writes reads like this:
  1. check ``arch``: a syscall number means another call on another ABI (i386, x32), so calls
     from an architecture the filter was not written for are killed (libseccomp's default);
  2. compare ``nr`` with each listed call; for some, compare an argument too (``unshare`` is
     refused only when its flags ask for ``CLONE_NEWUSER`` — fork and plain clone still work);
  3. otherwise return the default action.
Docker's default profile is an *allow*-list (default ERRNO, ~350 calls allowed); minidocker's
default (``DEFAULT_RULES``) is a short *deny*-list, each rule with the threat it stops, because
it reads as a lesson. ``load_profile()`` reads Docker's JSON format, allow-lists included.

Like Docker, a rule can depend on the container's capabilities (``unless_caps``: mount is
refused unless the container was given CAP_SYS_ADMIN, which is what makes ``--cap-add
SYS_ADMIN`` useful); so a profile is compiled for a capability set.

Installing a filter (``install``) needs no_new_privs or CAP_SYS_ADMIN: otherwise a filter could
fool a setuid program. ``minidocker.security.apply`` follows runc's order for that.

Man pages: seccomp(2) prctl(2) (PR_SET_SECCOMP) syscall(2); the kernel's
Documentation/userspace-api/seccomp_filter.rst. Used by: notebook 09-security.
"""

import ctypes
import errno
import os
from dataclasses import dataclass, field

from minidocker import kernel
from minidocker.errors import MinidockerError
from minidocker.security import bpf, syscalls
from minidocker.security.bpf import BPF_JEQ, BPF_JGE, BPF_JGT, Assembler, Program

EPERM = kernel.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = kernel.SECCOMP_RET_ERRNO | errno.ENOSYS
ALLOW = kernel.SECCOMP_RET_ALLOW
BAD_ARCH_ACTION = kernel.SECCOMP_RET_KILL_PROCESS
AUDIT_ARCH = {"x86_64": kernel.AUDIT_ARCH_X86_64, "aarch64": kernel.AUDIT_ARCH_AARCH64}


@dataclass(frozen=True)
class ArgCheck:
    """A test on one argument: ``args[index] <op> value`` (``MASKED_EQ``: ``args[index] & value
    == value_two``). Comparisons use all 64 bits, as libseccomp does."""

    index: int
    op: str  # EQ NE MASKED_EQ LT LE GT GE
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Rule:
    """What to return for some system calls (when all ``args`` checks hold)."""

    names: tuple[str, ...]
    action: int
    reason: str = ""
    args: tuple[ArgCheck, ...] = ()
    unless_caps: frozenset[str] = frozenset()  # Docker's "excludes": {"caps": [...]}
    only_with_caps: frozenset[str] = frozenset()  # Docker's "includes": {"caps": [...]}
    arches: frozenset[str] = frozenset()  # empty: every architecture
    not_arches: frozenset[str] = frozenset()
    min_kernel: tuple[int, int] = (0, 0)


@dataclass
class Profile:
    """A seccomp policy: rules, then a default action for every other call."""

    default_action: int
    rules: list[Rule] = field(default_factory=list)
    name: str = "minidocker-default"


def _deny(names: str, reason: str, unless: str = "", action: int = EPERM,
          args: tuple[ArgCheck, ...] = ()) -> Rule:
    caps = frozenset(f"CAP_{cap}" for cap in unless.split())
    return Rule(tuple(names.split()), action, reason, args, unless_caps=caps)


_NEWUSER = (ArgCheck(0, "MASKED_EQ", kernel.CLONE_NEWUSER, kernel.CLONE_NEWUSER),)

# minidocker's default: the calls a container has no business making, and why.
DEFAULT_RULES: tuple[Rule, ...] = (
    _deny("init_module finit_module", "load a kernel module: any code in the host kernel",
          "SYS_MODULE"),
    _deny("delete_module", "unload a module the host depends on", "SYS_MODULE"),
    _deny("kexec_load kexec_file_load", "boot another kernel in place of the host's"),
    _deny("io_uring_setup io_uring_enter io_uring_register", "io_uring: file and network "
          "work that seccomp never sees, and a rich source of kernel bugs (Docker blocks it)"),
    _deny("reboot", "reboot the host, or change what Ctrl-Alt-Del does", "SYS_BOOT"),
    _deny("mount umount2 pivot_root", "mount over masked /proc paths, remount read-only "
          "ones writable, leave the root", "SYS_ADMIN"),
    _deny("fsopen fsconfig fsmount fspick move_mount open_tree mount_setattr",
          "the new mount API (Linux 5.2): the same power as mount(2)", "SYS_ADMIN"),
    _deny("swapon swapoff", "change the host's swap", "SYS_ADMIN"),
    _deny("keyctl add_key request_key", "the kernel keyring is not namespaced: read or plant "
          "keys of other containers and the host"),
    _deny("bpf", "load eBPF programs into the host kernel: trace every process",
          "SYS_ADMIN"),
    _deny("perf_event_open", "watch other processes and the kernel (side channels, kernel "
          "address leaks)", "SYS_ADMIN"),
    _deny("userfaultfd", "pause the kernel mid-copy on a page fault: the classic way to win "
          "a kernel race exploit", "SYS_PTRACE"),
    _deny("unshare clone", "a new user namespace brings a full capability set inside it, "
          "and kernel code no unprivileged user reaches (many CVEs)", "SYS_ADMIN",
          args=_NEWUSER),
    _deny("clone3", "its flags sit in memory seccomp cannot read: ENOSYS makes the C "
          "library fall back to clone(2), whose flags are checked above", "SYS_ADMIN",
          action=ENOSYS),
    _deny("setns", "join another namespace through a /proc/<pid>/ns file it can reach",
          "SYS_ADMIN"),
    _deny("open_by_handle_at name_to_handle_at", "open a host file by its handle, past the "
          "container's root (the 2014 'shocker' breakout)", "DAC_READ_SEARCH"),
    _deny("ptrace", "read and write other processes' memory; before Linux 4.8 it also "
          "got around seccomp", "SYS_PTRACE"),
    _deny("process_vm_readv process_vm_writev", "read or write another process's memory "
          "directly", "SYS_PTRACE"),
    _deny("acct", "switch process accounting on or off for the whole host", "SYS_PACCT"),
    _deny("settimeofday clock_settime clock_adjtime", "set the host's clock (time "
          "namespaces only offset the monotonic and boot clocks)", "SYS_TIME"),
    _deny("iopl ioperm", "raw access to the hardware's I/O ports", "SYS_RAWIO"),
    _deny("lookup_dcookie", "a profiling call that leaks kernel paths", "SYS_ADMIN"),
    _deny("syslog", "read and clear the kernel log (kernel addresses help exploits)",
          "SYSLOG"),
)


def default_profile() -> Profile:
    """minidocker's default: allow everything except ``DEFAULT_RULES``."""
    return Profile(ALLOW, list(DEFAULT_RULES))


def table(profile: Profile | None = None) -> str:
    """The rules of a profile, one line each: the calls, the verdict, and why."""
    profile = profile or default_profile()
    lines = [f"default: {bpf.return_name(profile.default_action)}"]
    for rule in profile.rules:
        when = " (unless " + ", ".join(sorted(rule.unless_caps)) + ")" if rule.unless_caps else ""
        args = " if " + " and ".join(_show(check) for check in rule.args) if rule.args else ""
        lines.append(f"{' '.join(rule.names)}{args} -> {bpf.return_name(rule.action)}{when}"
                     + (f"\n    {rule.reason}" if rule.reason else ""))
    return "\n".join(lines)


def _show(check: ArgCheck) -> str:
    if check.op == "MASKED_EQ":
        return f"args[{check.index}] & {check.value:#x} == {check.value_two:#x}"
    ops = {"EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
    return f"args[{check.index}] {ops[check.op]} {check.value:#x}"


# --- compiling a profile into a BPF program ---------------------------------------------------

def compile(profile: Profile, caps: frozenset[str] = frozenset(),
            arches: tuple[str, ...] = (syscalls.NATIVE,)) -> Program:
    """The BPF program for ``profile``, as it applies to a container holding ``caps``."""
    for arch in arches:
        if arch not in AUDIT_ARCH:
            raise MinidockerError(f"minidocker has no system call table for {arch!r}; "
                                  f"it can build filters for {', '.join(AUDIT_ARCH)}")
    asm = Assembler()
    asm.load(4, "which architecture (ABI) is calling?")
    if len(arches) == 1:
        asm.jump_if(BPF_JEQ, AUDIT_ARCH[arches[0]], 1, 0, f"AUDIT_ARCH_{arches[0].upper()}")
    else:
        for arch in arches:
            asm.jump_if(BPF_JEQ, AUDIT_ARCH[arch], 0, 1, f"AUDIT_ARCH_{arch.upper()}")
            asm.goto(arch)
    asm.ret(BAD_ARCH_ACTION, "another ABI: its numbers would mean other calls")
    for arch in arches:
        if len(arches) > 1:
            asm.label(arch)
        _compile_arch(asm, profile, arch, caps)
    return asm.assemble()


def _compile_arch(asm: Assembler, profile: Profile, arch: str, caps: frozenset[str]) -> None:
    asm.load(0, f"the system call number ({arch})")
    if arch == "x86_64":
        asm.jump_if(BPF_JGE, kernel.X32_SYSCALL_BIT, 0, 1, "x32 ABI? (number + 0x40000000)")
        asm.ret(BAD_ARCH_ACTION, "x32 calls would slip past the numbers below")
    for name, rules in _rules_by_call(profile, arch, caps).items():
        after = f"{arch}:{name}:next"
        block = Assembler()
        _compile_call(block, name, rules, profile.default_action)
        if len(block) <= 255:
            asm.jump_if(BPF_JEQ, syscalls.number(arch, name), 0, after, name)
        else:  # too far for a conditional jump: hop over an unconditional one
            asm.jump_if(BPF_JEQ, syscalls.number(arch, name), 1, 0, name)
            asm.goto(after)
        _compile_call(asm, f"{arch}:{name}", rules, profile.default_action)
        asm.label(after)
    asm.ret(profile.default_action, "every other call: the default action")


def _rules_by_call(profile: Profile, arch: str, caps: frozenset[str]) -> dict[str, list[Rule]]:
    """The rules that apply on ``arch`` with ``caps``, per call this architecture has; rules
    with argument checks before the plain one (the first plain rule decides)."""
    by_call: dict[str, list[Rule]] = {}
    for rule in profile.rules:
        if not _applies(rule, arch, caps):
            continue
        for name in rule.names:
            if syscalls.number(arch, name) is not None:
                by_call.setdefault(name, []).append(rule)
    return {name: sorted(rules, key=lambda r: not r.args) for name, rules in by_call.items()}


def _applies(rule: Rule, arch: str, caps: frozenset[str]) -> bool:
    if rule.unless_caps & caps or not rule.only_with_caps <= caps:
        return False
    if (rule.arches and arch not in rule.arches) or arch in rule.not_arches:
        return False
    return _kernel_version() >= rule.min_kernel


def _kernel_version() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _compile_call(asm: Assembler, tag: str, rules: list[Rule], default: int) -> None:
    """For one call: each rule's argument checks, then its verdict."""
    for i, rule in enumerate(rules):
        fail = f"{tag}:{i}:fail"
        for j, check in enumerate(rule.args):
            _compile_check(asm, check, fail, f"{tag}:{i}:{j}")
        asm.ret(rule.action, rule.reason)
        if not rule.args:
            return  # anything after a rule without conditions is never reached
        asm.label(fail)
    asm.ret(default, "the same call with other arguments: the default action")


def _compile_check(asm: Assembler, check: ArgCheck, fail: str, tag: str) -> None:
    """Jump to ``fail`` unless the check holds: high word first, then low word."""
    low, high = 16 + 8 * check.index, 20 + 8 * check.index
    arg = f"args[{check.index}]"
    value_lo, value_hi = check.value & 0xFFFFFFFF, check.value >> 32
    ok = f"{tag}:ok"
    if check.op == "EQ":
        asm.load(high, f"{arg} == {check.value:#x}?")
        asm.jump_if(BPF_JEQ, value_hi, 0, fail)
        asm.load(low)
        asm.jump_if(BPF_JEQ, value_lo, 0, fail)
        return
    if check.op == "MASKED_EQ":
        want_lo, want_hi = check.value_two & 0xFFFFFFFF, check.value_two >> 32
        if value_hi or want_hi:
            asm.load(high)
            asm.and_(value_hi)
            asm.jump_if(BPF_JEQ, want_hi, 0, fail)
        asm.load(low, f"{arg} & {check.value:#x} == {check.value_two:#x}?")
        asm.and_(value_lo)
        asm.jump_if(BPF_JEQ, want_lo, 0, fail)
        return
    if check.op == "NE":  # holds if either word differs
        asm.load(high, f"{arg} != {check.value:#x}?")
        asm.jump_if(BPF_JEQ, value_hi, 0, ok)
        asm.load(low)
        asm.jump_if(BPF_JEQ, value_lo, fail, 0)
    elif check.op in ("GT", "GE"):  # high word bigger: holds; equal: the low word decides
        asm.load(high, f"{arg} {'>' if check.op == 'GT' else '>='} {check.value:#x}?")
        asm.jump_if(BPF_JGT, value_hi, ok, 0)
        asm.jump_if(BPF_JEQ, value_hi, 0, fail)
        asm.load(low)
        asm.jump_if(BPF_JGT if check.op == "GT" else BPF_JGE, value_lo, 0, fail)
    else:  # LT and LE: the opposite of GE and GT
        asm.load(high, f"{arg} {'<' if check.op == 'LT' else '<='} {check.value:#x}?")
        asm.jump_if(BPF_JGT, value_hi, fail, 0)
        asm.jump_if(BPF_JEQ, value_hi, 0, ok)
        asm.load(low)
        asm.jump_if(BPF_JGE if check.op == "LT" else BPF_JGT, value_lo, fail, 0)
    asm.label(ok)


# --- installing it ----------------------------------------------------------------------------

# --- the spec's JSON form: what runc hands to libseccomp ----------------------------------

OCI_ACTIONS = {kernel.SECCOMP_RET_ALLOW: "SCMP_ACT_ALLOW", kernel.SECCOMP_RET_ERRNO: "SCMP_ACT_ERRNO",
               kernel.SECCOMP_RET_KILL_PROCESS: "SCMP_ACT_KILL_PROCESS",
               kernel.SECCOMP_RET_KILL_THREAD: "SCMP_ACT_KILL",
               kernel.SECCOMP_RET_LOG: "SCMP_ACT_LOG", kernel.SECCOMP_RET_TRAP: "SCMP_ACT_TRAP",
               kernel.SECCOMP_RET_TRACE: "SCMP_ACT_TRACE"}
OCI_ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


def oci_form(profile: Profile, caps: frozenset[str] = frozenset(),
             arch: str = syscalls.NATIVE) -> dict:
    """``profile`` as the OCI runtime spec's ``linux.seccomp``, for a container holding
    ``caps``: the rules that apply to it (capabilities, architecture, kernel) already chosen,
    as Docker does before it hands the profile to runc, which compiles it with libseccomp."""
    entries = []
    for rule in profile.rules:
        names = [n for n in rule.names if syscalls.number(arch, n) is not None]
        if names and _applies(rule, arch, caps):
            entry = {"names": names, **_oci_action(rule.action)}
            if rule.args:
                entry["args"] = [{"index": c.index, "value": c.value, "valueTwo": c.value_two,
                                  "op": f"SCMP_CMP_{c.op}"} for c in rule.args]
            entries.append(entry)
    default = _oci_action(profile.default_action)
    form = {"defaultAction": default["action"], "architectures": [OCI_ARCHES[arch]],
            "syscalls": entries}
    if "errnoRet" in default:
        form["defaultErrnoRet"] = default["errnoRet"]
    return form


def _oci_action(action: int) -> dict:
    """A filter's return value split into the spec's action name and its errno."""
    kind, data = action & kernel.SECCOMP_RET_ACTION_FULL, action & kernel.SECCOMP_RET_DATA
    if kind == kernel.SECCOMP_RET_ERRNO:
        return {"action": "SCMP_ACT_ERRNO", "errnoRet": data}
    return {"action": OCI_ACTIONS[kind]}


class _SockFprog(ctypes.Structure):
    """``struct sock_fprog``: how many instructions, and where they are."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: Program) -> None:
    """``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)``: from now on the kernel runs
    ``program`` on every system call of this thread and of everything it execs or forks."""
    code = ctypes.create_string_buffer(program.to_bytes())
    fprog = _SockFprog(len(program), ctypes.addressof(code))
    try:
        kernel.prctl(kernel.PR_SET_SECCOMP, kernel.SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
    except OSError as err:
        if err.errno == errno.EACCES:
            raise MinidockerError(
                "cannot install the seccomp filter: it needs no_new_privs or CAP_SYS_ADMIN; "
                "set no_new_privs first, or install it before dropping capabilities") from err
        raise


@dataclass(frozen=True)
class SeccompStatus:
    """``Seccomp:`` (0 off, 1 strict, 2 filter) and ``Seccomp_filters:`` of /proc/<pid>/status."""

    mode: int
    filters: int


def read_status(pid: int | str = "self") -> SeccompStatus:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return SeccompStatus(int(fields.get("Seccomp", 0)), int(fields.get("Seccomp_filters", 0)))
