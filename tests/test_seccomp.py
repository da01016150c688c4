"""Stage 9: seccomp filters built in Python, read by a tiny interpreter and by the kernel."""

import errno
import json
import os
import signal
import struct
import sys

import pytest

from minidocker import kernel, security
from minidocker.errors import MinidockerError
from minidocker.security import bpf, seccomp, syscalls
from minidocker.security.capabilities import DOCKER_DEFAULT, all_capabilities, resolve
from minidocker.security.profiles import load_profile, parse_profile
from minidocker.security.seccomp import ALLOW, EPERM, ArgCheck, Profile, Rule

from .test_security_caps import BUSYBOX, run, status_of

ARCH = syscalls.NATIVE
NR = syscalls.TABLES[ARCH]


def evaluate(program: bpf.Program, nr: int, arch: int = seccomp.AUDIT_ARCH[ARCH],
             args=(0,) * 6) -> int:
    """Run ``program`` on one struct seccomp_data, as the kernel would (the subset we emit)."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    a, pc = 0, 0
    while True:
        ins = program.instructions[pc]
        if ins.code == bpf.BPF_LD | bpf.BPF_W | bpf.BPF_ABS:
            a = struct.unpack_from("<I", data, ins.k)[0]
        elif ins.code == bpf.BPF_ALU | bpf.BPF_AND | bpf.BPF_K:
            a &= ins.k
        elif ins.code == bpf.BPF_JMP | bpf.BPF_JA:
            pc += ins.k
        elif ins.code & 0x07 == bpf.BPF_JMP:
            test = {bpf.BPF_JEQ: a == ins.k, bpf.BPF_JGT: a > ins.k, bpf.BPF_JGE: a >= ins.k,
                    bpf.BPF_JSET: bool(a & ins.k)}[ins.code & 0xF0]
            pc += ins.jt if test else ins.jf
        elif ins.code == bpf.BPF_RET | bpf.BPF_K:
            return ins.k
        else:
            raise AssertionError(f"unexpected instruction {ins}")
        pc += 1


def filtered(caps=DOCKER_DEFAULT, filter_caps=DOCKER_DEFAULT, profile=None, **kwargs):
    program = seccomp.compile(profile or seccomp.default_profile(), filter_caps)
    return security.SecurityOptions(capabilities=caps, seccomp=program, **kwargs)


PROBE = """
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if result == -1 else 0
nr = json.loads(sys.argv[1])
seen = {"keyctl": call(nr["keyctl"], 0, -3, 0), "bpf": call(nr["bpf"], 0, 0, 0),
        "unshare(0)": call(nr["unshare"], 0)}
child = os.fork()
if child == 0:
    os._exit(7)
seen["fork"] = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
seen["unshare(CLONE_NEWUSER)"] = call(nr["unshare"], 0x10000000)
print(json.dumps(seen))
"""


def probe(options) -> dict:
    argv = [sys.executable, "-c", PROBE, json.dumps(NR)]
    code, out = run(argv, options)
    assert code == 0, out
    return json.loads(out.splitlines()[-1])


# --- the compiled program ---------------------------------------------------------------------

def test_default_filter_denies_the_listed_calls_only():
    program = seccomp.compile(seccomp.default_profile(), DOCKER_DEFAULT)
    for name in ("mount", "init_module", "kexec_load", "keyctl", "bpf", "ptrace", "setns"):
        assert evaluate(program, NR[name]) == EPERM, name
    for name in ("read", "write", "execve", "openat", "clone", "unshare"):
        assert evaluate(program, NR[name]) == ALLOW, name
    assert evaluate(program, NR["unshare"], args=(kernel.CLONE_NEWUSER | 0x1000_0000_0000,)
                    + (0,) * 5) == EPERM
    assert evaluate(program, NR["clone"], args=(kernel.CLONE_NEWUSER,) + (0,) * 5) == EPERM
    assert evaluate(program, NR["clone3"]) == kernel.SECCOMP_RET_ERRNO | errno.ENOSYS
    assert evaluate(program, 1, arch=kernel.AUDIT_ARCH_I386) == kernel.SECCOMP_RET_KILL_PROCESS


def test_capabilities_lift_rules_like_docker():
    program = seccomp.compile(seccomp.default_profile(), DOCKER_DEFAULT | {"CAP_SYS_ADMIN"})
    assert evaluate(program, NR["mount"]) == ALLOW
    assert evaluate(program, NR["keyctl"]) == EPERM  # never allowed


def test_both_architectures_in_one_program():
    program = seccomp.compile(seccomp.default_profile(), DOCKER_DEFAULT,
                              arches=("x86_64", "aarch64"))
    arm, x86 = kernel.AUDIT_ARCH_AARCH64, kernel.AUDIT_ARCH_X86_64
    assert evaluate(program, 40, arch=arm) == EPERM  # mount on arm64
    assert evaluate(program, 40, arch=x86) == ALLOW  # sendfile on x86_64
    assert evaluate(program, 165, arch=x86) == EPERM  # mount on x86_64
    assert evaluate(program, 0x40000000 | 165, arch=x86) == kernel.SECCOMP_RET_KILL_PROCESS


@pytest.mark.parametrize("op,value,passing,failing", [
    ("EQ", 1 << 32 | 5, [1 << 32 | 5], [5, 1 << 32, 6]),
    ("NE", 1 << 32 | 5, [5, 1 << 32, 6], [1 << 32 | 5]),
    ("GT", 1 << 32 | 5, [1 << 32 | 6, 2 << 32], [1 << 32 | 5, 0xFFFFFFFF, 1 << 32]),
    ("GE", 1 << 32 | 5, [1 << 32 | 5, 2 << 32], [1 << 32 | 4, 0xFFFFFFFF]),
    ("LT", 1 << 32 | 5, [1 << 32 | 4, 0xFFFFFFFF], [1 << 32 | 5, 2 << 32]),
    ("LE", 1 << 32 | 5, [1 << 32 | 5, 0xFFFFFFFF], [1 << 32 | 6, 2 << 32]),
])
def test_argument_checks_use_all_64_bits(op, value, passing, failing):
    rule = Rule(("kill",), EPERM, args=(ArgCheck(1, op, value),))
    program = seccomp.compile(Profile(ALLOW, [rule]))
    for arg in passing:
        assert evaluate(program, NR["kill"], args=(0, arg, 0, 0, 0, 0)) == EPERM, hex(arg)
    for arg in failing:
        assert evaluate(program, NR["kill"], args=(0, arg, 0, 0, 0, 0)) == ALLOW, hex(arg)


def test_long_rule_blocks_hop_with_ja_and_4096_is_the_limit():
    many = [Rule(("kill",), EPERM, args=(ArgCheck(1, "EQ", n),)) for n in range(80)]
    program = seccomp.compile(Profile(ALLOW, many + [Rule(("getpid",), EPERM)]))
    assert evaluate(program, NR["kill"], args=(0, 79, 0, 0, 0, 0)) == EPERM
    assert evaluate(program, NR["kill"], args=(0, 80, 0, 0, 0, 0)) == ALLOW
    assert evaluate(program, NR["getpid"]) == EPERM
    too_many = [Rule(("kill",), EPERM, args=(ArgCheck(1, "EQ", n),)) for n in range(1000)]
    with pytest.raises(MinidockerError, match="limit of 4096"):
        seccomp.compile(Profile(ALLOW, too_many))


def test_disassembly_is_stable():
    rule = Rule(("unshare",), EPERM, "no user namespaces",
                (ArgCheck(0, "MASKED_EQ", kernel.CLONE_NEWUSER, kernel.CLONE_NEWUSER),))
    program = seccomp.compile(Profile(ALLOW, [rule]), arches=("x86_64",))
    assert program.explain().splitlines()[2:] == [
        " 0000: 0x20 0x00 0x00 0x00000004  A = arch                             "
        "# which architecture (ABI) is calling?",
        " 0001: 0x15 0x01 0x00 0xc000003e  if (A == 0xc000003e) goto 0003       "
        "# AUDIT_ARCH_X86_64",
        " 0002: 0x06 0x00 0x00 0x80000000  return KILL_PROCESS                  "
        "# another ABI: its numbers would mean other calls",
        " 0003: 0x20 0x00 0x00 0x00000000  A = sys_number                       "
        "# the system call number (x86_64)",
        " 0004: 0x35 0x00 0x01 0x40000000  if (A < 0x40000000) goto 0006        "
        "# x32 ABI? (number + 0x40000000)",
        " 0005: 0x06 0x00 0x00 0x80000000  return KILL_PROCESS                  "
        "# x32 calls would slip past the numbers below",
        " 0006: 0x15 0x00 0x05 0x00000110  if (A != 0x110) goto 0012            # unshare",
        " 0007: 0x20 0x00 0x00 0x00000010  A = args[0]                          "
        "# args[0] & 0x10000000 == 0x10000000?",
        " 0008: 0x54 0x00 0x00 0x10000000  A &= 0x10000000",
        " 0009: 0x15 0x00 0x01 0x10000000  if (A != 0x10000000) goto 0011",
        " 0010: 0x06 0x00 0x00 0x00050001  return ERRNO(1)                      "
        "# no user namespaces",
        " 0011: 0x06 0x00 0x00 0x7fff0000  return ALLOW                         "
        "# the same call with other arguments: the default action",
        " 0012: 0x06 0x00 0x00 0x7fff0000  return ALLOW                         "
        "# every other call: the default action",
    ]
    assert program.disassemble().splitlines()[6:9] == [
        "l6:    jeq #0x110, l7, l12           ; unshare",
        "l7:    ld [16]                       ; args[0] & 0x10000000 == 0x10000000?",
        "l8:    and #0x10000000",
    ]
    assert bpf.Program.from_bytes(program.to_bytes()).instructions == program.instructions


def test_records_share_equal_instructions():
    """Two containers' records read back the same filter: one set of Instruction objects
    between them (the monitor host keeps a record per container)."""
    raw = security.SecurityOptions().seccomp.to_bytes()
    first, second = bpf.Program.from_bytes(raw), bpf.Program.from_bytes(raw)
    assert first.to_bytes() == raw
    assert all(a is b for a, b in zip(first.instructions, second.instructions, strict=True))


# --- in the kernel ----------------------------------------------------------------------------

@pytest.mark.parametrize("no_new_privs", [False, True])
def test_filter_shows_in_status(no_new_privs):
    status = status_of(filtered(no_new_privs=no_new_privs))
    assert status["Seccomp"] == "2" and status["Seccomp_filters"] == "1"
    assert status["NoNewPrivs"] == str(int(no_new_privs))
    assert status["CapEff"] == "00000000a80425fb"


def test_blocked_calls_fail_with_eperm_and_the_rest_works():
    # All capabilities, so that only the filter (written for Docker's set) can say no.
    without = probe(security.SecurityOptions(all_capabilities(), seccomp=None))
    assert without["keyctl"] != errno.EPERM and without["bpf"] != errno.EPERM
    assert without["unshare(CLONE_NEWUSER)"] == 0
    seen = probe(filtered(caps=all_capabilities()))
    assert seen == {"keyctl": errno.EPERM, "bpf": errno.EPERM, "unshare(0)": 0, "fork": 7,
                    "unshare(CLONE_NEWUSER)": errno.EPERM}


def test_mount_blocked_even_with_cap_sys_admin():
    argv = [BUSYBOX, "mount", "-t", "tmpfs", "x", "/mnt"]

    def in_new_mount_ns():
        kernel.unshare(kernel.CLONE_NEWNS)

    code, out = run(argv, filtered(caps=all_capabilities()), setup=in_new_mount_ns)
    assert code != 0 and "permission denied" in out.lower()
    without = security.SecurityOptions(all_capabilities(), seccomp=None)
    assert run(argv, without, setup=in_new_mount_ns) == (0, "")


def test_unshare_user_refused_but_shells_and_forks_work():
    code, out = run(["/usr/bin/unshare", "-U", BUSYBOX, "true"], filtered())
    assert code != 0 and "Operation not permitted" in out
    assert run(["/usr/bin/unshare", "-U", BUSYBOX, "true"],
               security.SecurityOptions(seccomp=None)) == (0, "")
    script = "echo $(echo from a subshell); busybox ls / >/dev/null & wait; echo done"
    assert run([BUSYBOX, "sh", "-c", script], filtered()) == (0, "from a subshell\ndone\n")


def test_x32_calls_kill_the_process():
    argv = [sys.executable, "-c", "import ctypes; ctypes.CDLL(None).syscall(0x40000027)"]
    assert run(argv, filtered())[0] == -signal.SIGSYS


def test_installing_needs_no_new_privs_or_cap_sys_admin():
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            security.capabilities.apply(resolve(cap_drop=["ALL"]))
            seccomp.install(seccomp.compile(seccomp.default_profile()))
            os.write(write_fd, b"installed")
        except MinidockerError as err:
            os.write(write_fd, str(err).encode())
        os._exit(0)
    os.close(write_fd)
    said = os.read(read_fd, 1000).decode()
    os.close(read_fd)
    os.waitpid(child, 0)
    assert "needs no_new_privs or CAP_SYS_ADMIN" in said


# --- Docker's JSON profiles -------------------------------------------------------------------

def write_profile(tmp_path, profile) -> str:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile) if not isinstance(profile, str) else profile)
    return str(path)


def test_deny_list_profile(tmp_path):
    path = write_profile(tmp_path, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
    options = security.parse_security_opts([f"seccomp={path}"])
    assert options.seccomp_profile == path
    code, out = run([BUSYBOX, "mkdir", str(tmp_path / "d")], options)
    assert code != 0 and "Operation not permitted" in out
    assert run([BUSYBOX, "echo", "fine"], options) == (0, "fine\n")


def test_allow_list_profile(tmp_path):
    allowed = sorted(set(NR) - {"mkdir", "mkdirat", "clone"})
    namespaces = 0x7E020000  # every CLONE_NEW* flag: Docker's rule for clone without SYS_ADMIN
    path = write_profile(tmp_path, {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EACCES,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": None}],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"},
                     {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": namespaces, "op": "SCMP_CMP_MASKED_EQ"}],
                      "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                     {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
                     {"names": ["s390_runtime_instr"], "action": "SCMP_ACT_ALLOW"}]})
    options = security.parse_security_opts([f"seccomp={path}"])
    code, out = run([BUSYBOX, "mkdir", str(tmp_path / "d")], options)
    assert code != 0 and "Permission denied" in out  # EACCES: the profile's defaultErrnoRet
    assert run([BUSYBOX, "sh", "-c", "echo $(echo ok)"], options) == (0, "ok\n")
    raw_clone = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
                 f"print(libc.syscall({NR['clone']}, 0x10000000 | 17, 0, 0, 0, 0), "
                 "ctypes.get_errno())")  # clone(CLONE_NEWUSER | SIGCHLD): the default action
    assert run([sys.executable, "-c", raw_clone], options) == (0, f"-1 {errno.EACCES}\n")
    probe_kill = "import os\ntry:\n os.kill(os.getpid(), 0)\nexcept PermissionError:\n print('no')"
    assert run([sys.executable, "-c", probe_kill], options) == (0, "no\n")


def test_includes_and_excludes_follow_the_capabilities():
    profile = parse_profile({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "4.8"}},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["SYS_ADMIN"]}},
        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}]})
    admin = seccomp.compile(profile, frozenset({"CAP_SYS_ADMIN"}))
    plain = seccomp.compile(profile, DOCKER_DEFAULT)
    assert evaluate(admin, NR["mount"]) == ALLOW and evaluate(plain, NR["mount"]) == EPERM
    assert evaluate(admin, NR["getpid"]) == EPERM and evaluate(plain, NR["getpid"]) == ALLOW
    assert evaluate(plain, NR["getppid"]) == EPERM


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON: .* line 1 column 2"),
    ("[]", "expected a JSON object with a 'defaultAction'"),
    ('{"defaultAction": "SCMP_ACT_MAYBE"}', "unknown action 'SCMP_ACT_MAYBE'"),
    ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "SCMP_ACT_NOTIFY is not supported"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"]}]}',
     r"syscalls\[0\]: missing 'action'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": '
     '"SCMP_ACT_LOG"}]}', "'names' must be a non-empty list"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": '
     '"SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]}',
     r"args\[0\]: 'index' must be"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": '
     '"SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_ABOUT"}]}]}',
     "unknown operator 'SCMP_CMP_ABOUT'"),
])
def test_bad_profiles_are_explained(tmp_path, text, message):
    with pytest.raises(MinidockerError, match=message):
        load_profile(write_profile(tmp_path, text))


def test_missing_profile_file(tmp_path):
    with pytest.raises(MinidockerError, match="does not exist"):
        security.parse_security_opts([f"seccomp={tmp_path}/nope.json"])


# --- --security-opt ---------------------------------------------------------------------------

def test_security_opts_like_docker():
    default = security.parse_security_opts([])
    assert default.seccomp is not None and not default.no_new_privs
    assert default.capabilities == DOCKER_DEFAULT
    assert security.parse_security_opts(["no-new-privileges"]).no_new_privs
    assert security.parse_security_opts(["no-new-privileges=true"]).no_new_privs
    assert not security.parse_security_opts(["no-new-privileges:false"]).no_new_privs
    unconfined = security.parse_security_opts(["seccomp=unconfined"])
    assert unconfined.seccomp is None and unconfined.seccomp_profile == "unconfined"
    privileged = security.parse_security_opts([], cap_drop=["ALL"], privileged=True)
    assert privileged.seccomp is None and privileged.capabilities == all_capabilities()
    warned = security.parse_security_opts(["apparmor=docker-default", "label=disable"])
    assert len(warned.warnings) == 2 and "no Linux security module" in warned.warnings[0]
    with pytest.raises(MinidockerError, match="invalid --security-opt 'seccomp'"):
        security.parse_security_opts(["seccomp"])
    with pytest.raises(MinidockerError, match="invalid --security-opt 'speed=fast'"):
        security.parse_security_opts(["speed=fast"])
    with pytest.raises(MinidockerError, match="takes true or false"):
        security.parse_security_opts(["no-new-privileges=maybe"])


def test_options_survive_a_round_trip_to_json():
    options = security.parse_security_opts(["no-new-privileges"], cap_add=["NET_ADMIN"])
    again = security.SecurityOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert again.capabilities == options.capabilities and again.no_new_privs
    assert again.seccomp.instructions == options.seccomp.instructions
