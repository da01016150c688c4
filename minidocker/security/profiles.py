"""Stage 9 — Docker's seccomp profile format (``--security-opt seccomp=PROFILE.json``).

A profile is JSON: a ``defaultAction``, the ``architectures`` (or an ``archMap``) it was
written for, and ``syscalls``, a list of rules::

    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
     "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                   "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}

This module reads the common subset into a ``seccomp.Profile``: actions ALLOW, ERRNO
(``errnoRet``), KILL / KILL_THREAD / KILL_PROCESS, LOG, TRAP, TRACE; argument operators EQ, NE,
MASKED_EQ, LT, LE, GT, GE; ``includes``/``excludes`` on ``caps``, ``arches`` and ``minKernel``.
Docker's own default profile (moby's ``profiles/seccomp/default.json``) loads as it is. The
filter is built for this machine's architecture (``architectures``/``archMap`` name the
compatible ABIs, which minidocker has no tables for: their calls are killed); calls that this
architecture does not have are skipped, as Docker does. Anything else is
refused with a sentence that names the place in the file.

Man pages: seccomp(2); Docker's docs "Seccomp security profiles for Docker"; libseccomp's
seccomp_rule_add(3) names the actions and operators. Used by: notebook 09-security.
"""

import errno
import json
from pathlib import Path

from minidocker import kernel
from minidocker.errors import MinidockerError
from minidocker.security.capabilities import normalize
from minidocker.security.seccomp import ArgCheck, Profile, Rule

ACTIONS = {
    "SCMP_ACT_ALLOW": kernel.SECCOMP_RET_ALLOW,
    "SCMP_ACT_ERRNO": kernel.SECCOMP_RET_ERRNO,
    "SCMP_ACT_KILL": kernel.SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": kernel.SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": kernel.SECCOMP_RET_KILL_PROCESS,
    "SCMP_ACT_LOG": kernel.SECCOMP_RET_LOG,
    "SCMP_ACT_TRAP": kernel.SECCOMP_RET_TRAP,
    "SCMP_ACT_TRACE": kernel.SECCOMP_RET_TRACE,
}
UNSUPPORTED_ACTIONS = {
    "SCMP_ACT_NOTIFY": "it hands each call to a supervisor process listening on a socket, "
                       "which minidocker does not run",
}
OPERATORS = {"SCMP_CMP_EQ": "EQ", "SCMP_CMP_NE": "NE", "SCMP_CMP_MASKED_EQ": "MASKED_EQ",
             "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_GT": "GT", "SCMP_CMP_GE": "GE"}
# Docker names architectures like Go (amd64) in "includes" and like libseccomp in "archMap".
ARCH_NAMES = {"SCMP_ARCH_X86_64": "x86_64", "amd64": "x86_64", "x86_64": "x86_64",
              "SCMP_ARCH_AARCH64": "aarch64", "arm64": "aarch64", "aarch64": "aarch64"}


class ProfileError(MinidockerError):
    """A seccomp profile that cannot be read; the message names the file and the place."""


def load_profile(path: str | Path) -> Profile:
    """Read a Docker seccomp profile (JSON) from ``path``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ProfileError(f"seccomp profile {path} does not exist: give the path of a JSON "
                           f"file, or 'unconfined'") from err
    except json.JSONDecodeError as err:
        raise ProfileError(f"seccomp profile {path} is not valid JSON: {err.msg} at line "
                           f"{err.lineno} column {err.colno}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"cannot read seccomp profile {path}: {err}") from err
    return parse_profile(data, name=str(path))


def parse_profile(data, name: str = "profile") -> Profile:
    """A ``seccomp.Profile`` from a profile already parsed from JSON."""
    if not isinstance(data, dict) or "defaultAction" not in data:
        raise ProfileError(f"seccomp profile {name}: expected a JSON object with a "
                           f"'defaultAction' (e.g. \"SCMP_ACT_ERRNO\")")
    default = _action(data["defaultAction"], data.get("defaultErrnoRet"), f"{name}: defaultAction")
    entries = data.get("syscalls") or []
    if not isinstance(entries, list):
        raise ProfileError(f"seccomp profile {name}: 'syscalls' must be a list of rules")
    rules = [_rule(entry, f"{name}: syscalls[{i}]") for i, entry in enumerate(entries)]
    return Profile(default, rules, name)


def _action(text, errno_ret, where: str) -> int:
    if text in UNSUPPORTED_ACTIONS:
        raise ProfileError(f"{where}: {text} is not supported: {UNSUPPORTED_ACTIONS[text]}")
    if text not in ACTIONS:
        raise ProfileError(f"{where}: unknown action {text!r}; use one of {', '.join(ACTIONS)}")
    action = ACTIONS[text]
    if text == "SCMP_ACT_ERRNO":
        return action | _small_int(errno.EPERM if errno_ret is None else errno_ret, where)
    if text == "SCMP_ACT_TRACE":
        return action | _small_int(errno_ret or 0, where)
    return action


def _small_int(value, where: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ProfileError(f"{where}: errnoRet must be a number from 0 to 65535, not {value!r}")
    return value


def _rule(entry, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: expected an object with 'names' and 'action'")
    names = entry.get("names") or ([entry["name"]] if "name" in entry else [])
    if not names or not all(isinstance(n, str) for n in names):
        raise ProfileError(f"{where}: 'names' must be a non-empty list of system call names")
    if "action" not in entry:
        raise ProfileError(f"{where}: missing 'action'")
    includes, excludes = entry.get("includes") or {}, entry.get("excludes") or {}
    for key in set(includes) | set(excludes):
        if key not in ("caps", "arches", "minKernel"):
            raise ProfileError(f"{where}: 'includes'/'excludes' on {key!r} is not supported "
                               f"(minidocker knows caps, arches and minKernel)")
    return Rule(
        names=tuple(names),
        action=_action(entry["action"], entry.get("errnoRet"), where),
        reason=entry.get("comment", ""),
        args=tuple(_arg(arg, f"{where}.args[{j}]") for j, arg in enumerate(entry.get("args") or [])),
        only_with_caps=frozenset(normalize(c) for c in includes.get("caps", [])),
        unless_caps=frozenset(normalize(c) for c in excludes.get("caps", [])),
        arches=_arches(includes.get("arches", [])),
        not_arches=_arches(excludes.get("arches", [])),
        min_kernel=_version(includes.get("minKernel"), where),
    )


def _arg(arg, where: str) -> ArgCheck:
    if not isinstance(arg, dict):
        raise ProfileError(f"{where}: expected an object with 'index', 'value' and 'op'")
    index, value, op = arg.get("index"), arg.get("value", 0), arg.get("op")
    if not isinstance(index, int) or not 0 <= index <= 5:
        raise ProfileError(f"{where}: 'index' must be the argument's position, 0 to 5")
    for number in (value, arg.get("valueTwo", 0)):
        if not isinstance(number, int) or not 0 <= number < 1 << 64:
            raise ProfileError(f"{where}: 'value' and 'valueTwo' must be 64-bit unsigned numbers")
    if op not in OPERATORS:
        raise ProfileError(f"{where}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    return ArgCheck(index, OPERATORS[op], value, arg.get("valueTwo", 0))


def _arches(names) -> frozenset[str]:
    # An architecture minidocker has no table for can never be the one compiled for: keep its
    # name, so that "includes": {"arches": ["s390x"]} excludes the rule here, as it should.
    return frozenset(ARCH_NAMES.get(name, name) for name in names)


def _version(text, where: str) -> tuple[int, int]:
    if not text:
        return (0, 0)
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except ValueError as err:
        raise ProfileError(f"{where}: minKernel must look like \"4.8\", not {text!r}") from err
