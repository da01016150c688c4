"""Lab 09 — least privilege by hand: drop capabilities, install a seccomp filter.

A container's root is still root: what keeps it in is what the kernel lets it *do*. Here you
write, with ctypes and prctl(2), the last steps ``minidocker run`` takes before it execs the
command (see minidocker/security/__init__.py ``apply``):

  Step 1  drop_bounding_set(keep)   the ceiling: capabilities outside it never come back
  Step 2  set_capabilities(keep)    capset(2): effective = permitted = keep, inheritable = {}
  Step 3  build_filter(nr, arch)    a classic BPF program, as bytes: nr -> EPERM, else ALLOW
  Step 4  install_filter(program)   no_new_privs, then prctl(PR_SET_SECCOMP)

The checker runs your functions in a forked child (a throwaway sandbox), then has that child try
the blocked actions (chown without CAP_CHOWN, mkdir under the filter) and the allowed ones, and
reads its /proc/<pid>/status (CapBnd, CapEff, NoNewPrivs, Seccomp).

    sudo minidocker lab check 09                # this file
    sudo minidocker lab check 09 PATH           # a copy of it

Steps and hints: labs/09-security/README.md. Man pages: capabilities(7) prctl(2) capset(2)
seccomp(2); the kernel's Documentation/userspace-api/seccomp_filter.rst.
"""

import ctypes
import errno  # noqa: F401  (errno.EPERM, for step 3)
import struct  # noqa: F401  (struct.pack, for step 3)

from minidocker import kernel  # kernel.prctl, kernel.PR_*, kernel.SECCOMP_*

libc = ctypes.CDLL(None, use_errno=True)  # libc.capset(header_pointer, data_array)

LINUX_CAPABILITY_VERSION_3 = 0x20080522  # <linux/capability.h>: two 32-bit words per set
SECCOMP_DATA_NR, SECCOMP_DATA_ARCH = 0, 4  # offsets in struct seccomp_data
BPF_LD_W_ABS, BPF_JMP_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06  # <linux/filter.h> opcodes


def drop_bounding_set(keep: set[int]) -> None:
    """Step 1: drop every capability whose number is not in ``keep`` from the bounding set
    (/proc/sys/kernel/cap_last_cap is the highest number this kernel knows)."""
    # TODO Step 1: for each capability number not in keep: prctl(PR_CAPBSET_DROP, number).
    raise NotImplementedError("Step 1: drop_bounding_set() is not written yet")


def set_capabilities(keep: set[int]) -> None:
    """Step 2: leave this thread with effective = permitted = ``keep`` and an empty
    inheritable set, by calling capset(2) through ctypes."""
    # TODO Step 2: build struct __user_cap_header_struct {u32 version; int pid} and an array
    #              of two struct __user_cap_data_struct {u32 effective, permitted,
    #              inheritable}, then call libc.capset(header, data); raise OSError if it
    #              returns -1 (ctypes.get_errno()).
    raise NotImplementedError("Step 2: set_capabilities() is not written yet")


def build_filter(blocked_nr: int, arch: int) -> bytes:
    """Step 3: a seccomp filter as the kernel reads it (an array of struct sock_filter):
    a call from another architecture than ``arch`` -> SECCOMP_RET_KILL_PROCESS; system call
    number ``blocked_nr`` -> SECCOMP_RET_ERRNO | EPERM; every other call -> SECCOMP_RET_ALLOW."""
    # TODO Step 3: pack each instruction with struct.pack("=HBBI", code, jt, jf, k):
    #              load the arch, compare, kill; load the number, compare, errno; allow.
    raise NotImplementedError("Step 3: build_filter() is not written yet")


def install_filter(program: bytes) -> None:
    """Step 4: install ``program`` on this thread (and everything it forks and execs)."""
    # TODO Step 4: prctl(PR_SET_NO_NEW_PRIVS, 1); then a struct sock_fprog {unsigned short
    #              len (instructions, not bytes); void *filter} and
    #              prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, address of the sock_fprog).
    raise NotImplementedError("Step 4: install_filter() is not written yet")
