"""Checker of lab 09 — least privilege by hand: capabilities and a seccomp filter.

Each step runs the student's functions in a *container* process of the sandbox (sandbox.py:
a forked child, PID 1 of a new PID namespace, in a mount namespace of its own with a tmpfs on
``/tmp``), then lets that child try what the step should now forbid and what it should still
allow, and reads the kernel's evidence, ``/proc/<pid>/status`` (CapBnd, CapEff, CapPrm, CapInh,
NoNewPrivs, Seccomp). The sets asked for are Docker's default set *without* CAP_CHOWN, so that
``chown`` shows the difference.

Step 3 is checked without the kernel: the program's bytes are run by a tiny classic-BPF
interpreter (``run_bpf``) on three ``struct seccomp_data``: the blocked call, another call, and
the blocked number from another architecture. Step 4 then installs it for real.

Man pages: capabilities(7) prctl(2) capset(2) seccomp(2) proc(5).
Used by: ``minidocker lab check 09``; the lab is labs/09-security/.
"""

import errno
import os
import struct

from minidocker import kernel
from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.sandbox import CheckFailed, call_student, read_proc, run_in_container
from minidocker.security import capabilities, syscalls
from minidocker.security.bpf import return_name

KEEP = frozenset(capabilities.BY_NAME[name].number
                 for name in capabilities.DOCKER_DEFAULT - {"CAP_CHOWN"})
AUDIT_ARCH = {"x86_64": kernel.AUDIT_ARCH_X86_64, "aarch64": kernel.AUDIT_ARCH_AARCH64}
# The call the filter blocks: mkdir(2) where the architecture has it (os.mkdir uses it there),
# else mkdirat(2) (aarch64 has only the *at calls).
BLOCKED = "mkdir" if syscalls.number(syscalls.NATIVE, "mkdir") is not None else "mkdirat"


def mask(numbers) -> int:
    return sum(1 << n for n in numbers)


def status() -> dict[str, str]:
    """This process's /proc/<pid>/status, read through the sandbox's /proc."""
    fields = {}
    for line in read_proc("self/status").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def attempt(action) -> str:
    """``ok``, or the errno's name the kernel answered."""
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"


def scratch() -> None:
    """In the container, before the student's code drops anything: a private tmpfs on /tmp
    holding a file to chown, so that nothing is written on the host."""
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    kernel.mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777")
    with open("/tmp/file", "w") as f:
        f.write("lab 09\n")


HINTS = {
    ("set_capabilities", errno.EPERM): "capset refused the sets (EPERM): effective must be "
    "inside permitted, and permitted can only shrink; pass the same mask as both",
    ("set_capabilities", errno.EINVAL): "capset refused the header (EINVAL): version "
    "LINUX_CAPABILITY_VERSION_3 wants an array of *two* data structs, and pid 0",
    ("install_filter", errno.EACCES): "the kernel refused the filter with EACCES: a process "
    "without CAP_SYS_ADMIN must set PR_SET_NO_NEW_PRIVS first",
    ("install_filter", errno.EINVAL): "the kernel refused the program with EINVAL: "
    "sock_fprog.len counts instructions (8 bytes each), not bytes, and the program must be "
    "valid classic BPF ending in a ret",
    ("install_filter", errno.EFAULT): "the kernel could not read the program (EFAULT): "
    "sock_fprog.filter must be the address of the bytes (ctypes.addressof of a buffer that "
    "stays alive), and prctl gets the address of the sock_fprog",
}


def call(student, name: str, *args):
    """Call one of the student's functions; an OSError becomes a FAIL that says what the
    kernel meant by it."""
    try:
        return call_student(function(student, name), *args)
    except OSError as exc:
        hint = HINTS.get((name, exc.errno))
        if hint is None:
            raise
        raise CheckFailed(f"{name}: {hint} ({exc})") from None


def shown(bits: int) -> str:
    names = [n.removeprefix("CAP_") for n in capabilities.names(bits)]
    return ", ".join(names) if names else "none"


# --- step 1: the bounding set ---------------------------------------------------------------------

def check_bounding_set(student, _workspace) -> str:
    def container() -> dict:
        scratch()
        call(student, "drop_bounding_set", set(KEEP))
        return {"status": status()}

    seen = run_in_container(container)["status"]
    bounding, effective = int(seen["CapBnd"], 16), int(seen["CapEff"], 16)
    if bounding & ~mask(KEEP):
        raise CheckFailed(f"the bounding set still holds {shown(bounding & ~mask(KEEP))}: drop "
                          "every capability number not in keep, up to cap_last_cap")
    if bounding != mask(KEEP):
        raise CheckFailed(f"the bounding set lost capabilities that keep asked for: "
                          f"{shown(mask(KEEP) & ~bounding)}")
    return (f"CapBnd {bounding:016x} ({len(KEEP)} capabilities, no CHOWN); CapEff still "
            f"{effective:016x}: the bounding set is only the ceiling")


# --- step 2: capset -----------------------------------------------------------------------------

def check_capset(student, _workspace) -> str:
    def container() -> dict:
        scratch()
        call(student, "drop_bounding_set", set(KEEP))
        call(student, "set_capabilities", set(KEEP))
        seen = {"status": status()}
        seen["chown"] = attempt(lambda: os.chown("/tmp/file", 1000, 1000))
        seen["write"] = attempt(lambda: open("/tmp/other", "w").close())
        seen["regain"] = attempt(lambda: kernel.capset(mask(KEEP) | 1, mask(KEEP) | 1, 0))
        return seen

    seen = run_in_container(container)
    fields = seen["status"]
    effective, permitted = int(fields["CapEff"], 16), int(fields["CapPrm"], 16)
    inheritable = int(fields["CapInh"], 16)
    if effective != mask(KEEP) or permitted != mask(KEEP):
        raise CheckFailed(f"CapEff is {effective:016x} and CapPrm {permitted:016x}, but both "
                          f"should be {mask(KEEP):016x}: pass the same mask as effective and "
                          "permitted, split into two 32-bit words (data[0] low, data[1] high)")
    if inheritable:
        raise CheckFailed(f"CapInh is {inheritable:016x}: leave the inheritable set empty")
    if seen["chown"] != "EPERM":
        raise CheckFailed(f"chown without CAP_CHOWN gave {seen['chown']}, not EPERM")
    if seen["write"] != "ok":
        raise CheckFailed(f"creating a file failed with {seen['write']}: only CAP_CHOWN "
                          "should be gone")
    if seen["regain"] != "EPERM":
        raise CheckFailed("the process could take CAP_CHOWN back with capset: permitted "
                          "must no longer hold it")
    return (f"CapEff = CapPrm = {effective:016x}, CapInh 0; chown -> EPERM, creating a file "
            "works, and capset cannot bring CAP_CHOWN back (EPERM)")


# --- step 3: the BPF program, run by an interpreter -----------------------------------------------

def seccomp_data(nr: int, arch: int) -> bytes:
    """``struct seccomp_data``: int nr, u32 arch, u64 instruction_pointer, u64 args[6]."""
    return struct.pack("=iIQ6Q", nr, arch, 0, *([0] * 6))


def run_bpf(program: bytes, data: bytes) -> int:
    """Run a classic BPF program the way the kernel would on ``data``; return what it
    returns. Supports what seccomp filters use: ld [k], and/or/add #k, jeq/jgt/jge/jset #k,
    ja, ret #k."""
    if not program or len(program) % 8:
        raise CheckFailed(f"the program is {len(program)} bytes: each instruction is 8 "
                          "(struct.pack('=HBBI', code, jt, jf, k)), and there must be one")
    code = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    a, pc = 0, 0
    while pc < len(code):
        op, jt, jf, k = code[pc]
        pc += 1
        if op == 0x20:  # ld [k]
            if k + 4 > len(data) or k % 4:
                raise CheckFailed(f"instruction {pc - 1} loads at offset {k}, outside struct "
                                  "seccomp_data (or not 4-aligned)")
            a = struct.unpack_from("=I", data, k)[0]
        elif op in (0x54, 0x44, 0x04):  # and, or, add #k
            a = {0x54: a & k, 0x44: a | k, 0x04: (a + k) & 0xFFFFFFFF}[op]
        elif op == 0x05:  # ja
            pc += k
        elif op in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset #k
            taken = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[op]
            pc += jt if taken else jf
        elif op == 0x06:  # ret #k
            return k
        else:
            raise CheckFailed(f"instruction {pc - 1} has code {op:#06x}, which this lab's "
                              "interpreter does not know: use ld [k] (0x20), jeq #k (0x15) "
                              "and ret #k (0x06)")
    raise CheckFailed("the program runs off its end without a ret: the kernel refuses that")


def check_filter_program(student, _workspace) -> str:
    arch = AUDIT_ARCH.get(syscalls.NATIVE)
    if arch is None:
        raise CheckFailed(f"this lab knows x86_64 and aarch64, not {syscalls.NATIVE}")
    nr = syscalls.number(syscalls.NATIVE, BLOCKED)
    other = syscalls.number(syscalls.NATIVE, "getpid")
    program = call(student, "build_filter", nr, arch)
    if not isinstance(program, bytes | bytearray):
        raise CheckFailed(f"build_filter returned {type(program).__name__}, not bytes: join "
                          "the packed instructions with b''.join(...)")
    blocked = run_bpf(bytes(program), seccomp_data(nr, arch))
    allowed = run_bpf(bytes(program), seccomp_data(other, arch))
    foreign = run_bpf(bytes(program), seccomp_data(nr, kernel.AUDIT_ARCH_I386))
    if blocked != kernel.SECCOMP_RET_ERRNO | errno.EPERM:
        raise CheckFailed(f"{BLOCKED} (nr {nr}) gets {return_name(blocked)}, not ERRNO(1): "
                          "SECCOMP_RET_ERRNO | EPERM")
    if allowed != kernel.SECCOMP_RET_ALLOW:
        raise CheckFailed(f"getpid (nr {other}) gets {return_name(allowed)}, not ALLOW")
    if foreign & kernel.SECCOMP_RET_ACTION_FULL not in (kernel.SECCOMP_RET_KILL_PROCESS,
                                                          kernel.SECCOMP_RET_KILL_THREAD):
        raise CheckFailed(f"a call from another architecture (i386) gets {return_name(foreign)}: "
                          "check seccomp_data.arch first and kill anything else, because "
                          f"number {nr} means another call there")
    return (f"{len(program) // 8} instructions: {BLOCKED} -> ERRNO(1), getpid -> ALLOW, "
            f"another architecture -> {return_name(foreign)}")


# --- step 4: installed ----------------------------------------------------------------------------

def check_install(student, _workspace) -> str:
    nr = syscalls.number(syscalls.NATIVE, BLOCKED)
    arch = AUDIT_ARCH[syscalls.NATIVE]
    program = bytes(call(student, "build_filter", nr, arch))

    def container() -> dict:
        scratch()
        before = status()  # what this process inherited, before the student's code
        call(student, "drop_bounding_set", set(KEEP))
        call(student, "set_capabilities", set(KEEP))
        call(student, "install_filter", program)
        seen = {"status": status(), "before": before}
        seen["mkdir"] = attempt(lambda: os.mkdir("/tmp/dir"))
        seen["mkdir_existing"] = attempt(lambda: os.mkdir("/tmp"))
        seen["write"] = attempt(lambda: open("/tmp/other", "w").close())
        seen["rename"] = attempt(lambda: os.rename("/tmp/other", "/tmp/moved"))
        seen["chown"] = attempt(lambda: os.chown("/tmp/file", 1000, 1000))
        return seen

    seen = run_in_container(container)
    fields = seen["status"]
    if fields.get("NoNewPrivs") != "1":
        raise CheckFailed("NoNewPrivs is not 1: set PR_SET_NO_NEW_PRIVS before the filter "
                          "(without CAP_SYS_ADMIN the kernel requires it)")
    if fields.get("Seccomp") != "2":
        raise CheckFailed(f"Seccomp is {fields.get('Seccomp')}, not 2 (filter mode)")
    # Whatever started the checker may have installed filters (a container runtime does):
    # Seccomp is 2 then already, so count them instead.
    filters = int(fields.get("Seccomp_filters", "1"))
    inherited = int(seen["before"].get("Seccomp_filters", "0"))
    if filters <= inherited:
        raise CheckFailed(f"no filter was added: Seccomp_filters is {filters}, as it was before "
                          "your code ran; install yours with prctl(PR_SET_SECCOMP, "
                          "SECCOMP_MODE_FILTER, &prog)")
    if seen["mkdir"] != "EPERM":
        raise CheckFailed(f"mkdir under the filter gave {seen['mkdir']}, not EPERM")
    if seen["write"] != "ok" or seen["rename"] != "ok":
        raise CheckFailed(f"other calls must still work: creating a file gave {seen['write']},"
                          f" rename gave {seen['rename']}")
    if seen["chown"] != "EPERM":
        raise CheckFailed(f"chown gave {seen['chown']}: the capabilities of step 2 are gone")
    # no_new_privs cannot be cleared: if the checker inherited it, this machine cannot show
    # whether the student set it (without it, the kernel would refuse the filter: EACCES).
    inherited_nnp = (" (it was 1 already when your code started, inherited from what ran the "
                     "checker: this machine cannot show that you set it)"
                     if seen["before"].get("NoNewPrivs") == "1" else "")
    return (f"NoNewPrivs 1{inherited_nnp}, Seccomp 2 ({filters} filter); mkdir -> "
            f"EPERM (even of an existing directory: {seen['mkdir_existing']}, not EEXIST: the "
            "filter answers before the kernel looks), files and rename still work, chown -> "
            "EPERM")


LAB = Lab(
    directory="09-security",
    steps=(
        Step(1, "the bounding set: Docker's default set without CAP_CHOWN", check_bounding_set),
        Step(2, "capset: effective = permitted = the set; chown refused", check_capset),
        Step(3, "a seccomp filter as classic BPF bytes (mkdir -> EPERM)", check_filter_program),
        Step(4, "the filter installed: no_new_privs, mkdir refused, the rest works",
             check_install),
    ),
    cumulative=True,
)
