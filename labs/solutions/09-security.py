"""Lab 09 — least privilege by hand: a reference solution (spoilers: try the lab first).

Check it: sudo minidocker lab check 09 labs/solutions/09-security.py
"""

import ctypes
import errno
import struct

from minidocker import kernel

libc = ctypes.CDLL(None, use_errno=True)

LINUX_CAPABILITY_VERSION_3 = 0x20080522  # <linux/capability.h>: two 32-bit words per set
SECCOMP_DATA_NR, SECCOMP_DATA_ARCH = 0, 4  # offsets in struct seccomp_data
BPF_LD_W_ABS, BPF_JMP_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06  # <linux/filter.h> opcodes


class CapHeader(ctypes.Structure):
    """``struct __user_cap_header_struct``."""

    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    """``struct __user_cap_data_struct``: one per 32-bit word of the sets."""

    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    """``struct sock_fprog``: how many instructions, and where they are."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def drop_bounding_set(keep: set[int]) -> None:
    """Step 1: drop every capability not in ``keep`` from the bounding set."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for number in range(last + 1):
        if number not in keep:
            kernel.prctl(kernel.PR_CAPBSET_DROP, number)  # needs CAP_SETPCAP: do it first


def set_capabilities(keep: set[int]) -> None:
    """Step 2: permitted = effective = ``keep``, inheritable = nothing (capset(2))."""
    mask = sum(1 << number for number in keep)
    header = CapHeader(LINUX_CAPABILITY_VERSION_3, 0)  # pid 0: this thread
    data = (CapData * 2)()
    for word in (0, 1):  # bits 0-31 in data[0], 32-63 in data[1]
        part = (mask >> (32 * word)) & 0xFFFFFFFF
        data[word].effective = data[word].permitted = part
        data[word].inheritable = 0
    if libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {errno.errorcode.get(err, err)}")


def instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    """One ``struct sock_filter``: u16 code, u8 jt, u8 jf, u32 k."""
    return struct.pack("=HBBI", code, jt, jf, k)


def build_filter(blocked_nr: int, arch: int) -> bytes:
    """Step 3: a classic BPF program: ERRNO(EPERM) for ``blocked_nr``, ALLOW otherwise, and
    KILL_PROCESS for a call from another architecture (its numbers mean other calls)."""
    return b"".join([
        instruction(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),            # A = arch
        instruction(BPF_JMP_JEQ_K, 1, 0, arch),                        # our ABI? skip the kill
        instruction(BPF_RET_K, 0, 0, kernel.SECCOMP_RET_KILL_PROCESS),
        instruction(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),              # A = nr
        instruction(BPF_JMP_JEQ_K, 0, 1, blocked_nr),                  # the blocked call?
        instruction(BPF_RET_K, 0, 0, kernel.SECCOMP_RET_ERRNO | errno.EPERM),
        instruction(BPF_RET_K, 0, 0, kernel.SECCOMP_RET_ALLOW),
    ])


def install_filter(program: bytes) -> None:
    """Step 4: no_new_privs, then the filter (prctl(2) PR_SET_SECCOMP)."""
    # Without CAP_SYS_ADMIN (dropped in step 2) only a no_new_privs process may install one.
    kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
    code = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(code))
    kernel.prctl(kernel.PR_SET_SECCOMP, kernel.SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
