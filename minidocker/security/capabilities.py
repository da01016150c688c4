"""Stage 9 — capabilities: root's power, cut into pieces.

The kernel does not ask "is this uid 0?" but "does this thread hold capability X?" — about 40
pieces such as CAP_CHOWN, CAP_NET_ADMIN or CAP_SYS_ADMIN. Each thread carries five sets
(they show in ``/proc/<pid>/status`` as hex masks, bit N for capability N):

  bounding     the ceiling: nothing outside it can ever be gained again, not even by exec
  permitted    what the thread may switch on
  effective    what the kernel checks right now
  inheritable  what may pass through exec to programs whose *file* allows it
  ambient      what passes through exec to ordinary programs (must be permitted+inheritable)

Docker gives a container's root 14 of them (``DOCKER_DEFAULT``, CapEff ``00000000a80425fb``);
every other one is dropped because of a threat it carries (``Capability.threat``).
``apply()`` runs in the container just before exec: drop the rest from the bounding set
(``prctl(PR_CAPBSET_DROP)``), clear ambient (``PR_CAP_AMBIENT_CLEAR_ALL``), then ``capset(2)``
permitted = effective = the set, inheritable = empty (Docker empties it since CVE-2022-24769).
At exec, uid 0 gets permitted = effective = bounding (its programs count as "all capable").

A container running as another user: setuid() away from uid 0 clears permitted and effective —
unless ``PR_SET_KEEPCAPS`` is on, which keeps permitted (``keep_caps()``). Then exec as a
non-root uid without file capabilities leaves permitted and effective *empty*: Docker's
non-root user has CapEff 0 and only the bounding set shows what root could have had.
That is why the uid switch goes between the bounding-set drop (needs CAP_SETPCAP) and capset:
``minidocker.security.apply(options, switch_user=...)`` does it in that order.

Man pages: capabilities(7) prctl(2) capget(2) capset(2) proc(5). Used by: notebook 09-security.
"""

from dataclasses import dataclass

from minidocker import kernel
from minidocker.errors import MinidockerError


@dataclass(frozen=True)
class Capability:
    """One capability: its bit, the kernel's name, and what a container could do with it."""

    number: int
    name: str
    threat: str
    docker_default: bool = False


def _cap(number: int, name: str, threat: str, default: bool = False) -> Capability:
    return Capability(number, "CAP_" + name, threat, default)


# <linux/capability.h>, in bit order. For Docker's 14 the "threat" is what the container keeps.
CAPABILITIES: tuple[Capability, ...] = (
    _cap(0, "CHOWN", "kept: change the owner of files", True),
    _cap(1, "DAC_OVERRIDE", "kept: ignore file permission bits (rwx)", True),
    _cap(2, "DAC_READ_SEARCH", "open any host file by handle (open_by_handle_at: "
                               "the 2014 'shocker' breakout)"),
    _cap(3, "FOWNER", "kept: act as the owner of any file (chmod, utime)", True),
    _cap(4, "FSETID", "kept: keep setuid/setgid bits when modifying a file", True),
    _cap(5, "KILL", "kept: signal any process (of this PID namespace)", True),
    _cap(6, "SETGID", "kept: change group ids", True),
    _cap(7, "SETUID", "kept: change user ids", True),
    _cap(8, "SETPCAP", "kept: drop from the bounding set, pass capabilities on", True),
    _cap(9, "LINUX_IMMUTABLE", "set or clear the immutable and append-only file flags"),
    _cap(10, "NET_BIND_SERVICE", "kept: bind ports below 1024", True),
    _cap(11, "NET_BROADCAST", "broadcast and listen to multicast"),
    _cap(12, "NET_ADMIN", "reconfigure interfaces, routes and firewall; sniff with "
                          "promiscuous mode"),
    _cap(13, "NET_RAW", "kept: raw and packet sockets (ping; also ARP/DNS spoofing "
                        "inside the bridge)", True),
    _cap(14, "IPC_LOCK", "lock memory so it cannot be swapped: starve the host of RAM"),
    _cap(15, "IPC_OWNER", "bypass permission checks on System V IPC objects"),
    _cap(16, "SYS_MODULE", "load kernel modules: run any code in the host kernel"),
    _cap(17, "SYS_RAWIO", "raw I/O ports and /dev/mem: read and write host memory"),
    _cap(18, "SYS_CHROOT", "kept: chroot(2)", True),
    _cap(19, "SYS_PTRACE", "trace any process it can see: read secrets, inject code"),
    _cap(20, "SYS_PACCT", "switch process accounting on or off for the whole host"),
    _cap(21, "SYS_ADMIN", "mount filesystems, create namespaces, and a hundred other "
                          "things: the new root"),
    _cap(22, "SYS_BOOT", "reboot the host or load a new kernel (kexec)"),
    _cap(23, "SYS_NICE", "raise its own priority, pin CPUs: starve other containers"),
    _cap(24, "SYS_RESOURCE", "override resource limits and disk quotas"),
    _cap(25, "SYS_TIME", "set the host's clock (the clock is not namespaced)"),
    _cap(26, "SYS_TTY_CONFIG", "vhangup and configure the host's terminals"),
    _cap(27, "MKNOD", "kept: create device files (the device cgroup still guards "
                      "which ones open)", True),
    _cap(28, "LEASE", "take file leases: stall other processes that open a file"),
    _cap(29, "AUDIT_WRITE", "kept: write to the kernel audit log (login programs do)", True),
    _cap(30, "AUDIT_CONTROL", "change or disable the host's audit rules"),
    _cap(31, "SETFCAP", "kept: set file capabilities on files", True),
    _cap(32, "MAC_OVERRIDE", "bypass the LSM (AppArmor/SELinux/Smack) policy"),
    _cap(33, "MAC_ADMIN", "change the LSM (AppArmor/SELinux/Smack) policy"),
    _cap(34, "SYSLOG", "read and clear the kernel log (kernel addresses help exploits)"),
    _cap(35, "WAKE_ALARM", "set alarms that wake the host from suspend"),
    _cap(36, "BLOCK_SUSPEND", "keep the host from suspending"),
    _cap(37, "AUDIT_READ", "read the audit log of every process on the host"),
    _cap(38, "PERFMON", "performance monitoring: observe other processes and the kernel"),
    _cap(39, "BPF", "load BPF programs into the kernel, read kernel memory through maps"),
    _cap(40, "CHECKPOINT_RESTORE", "choose PIDs for new processes, checkpoint and restore "
                                   "others"),
)
BY_NAME = {cap.name: cap for cap in CAPABILITIES}
DOCKER_DEFAULT = frozenset(cap.name for cap in CAPABILITIES if cap.docker_default)


# --- names and masks --------------------------------------------------------------------------

def last_cap() -> int:
    """The highest capability number this kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return min(int(f.read()), CAPABILITIES[-1].number)
    except OSError:
        return CAPABILITIES[-1].number


def all_capabilities() -> frozenset[str]:
    """Every capability this kernel knows: what ``--privileged`` and ``--cap-add ALL`` give."""
    return frozenset(cap.name for cap in CAPABILITIES if cap.number <= last_cap())


def normalize(name: str) -> str:
    """``sys_admin``, ``CAP_SYS_ADMIN`` and ``Sys_Admin`` all name CAP_SYS_ADMIN; ``all`` is
    ALL. Anything else is the user's mistake, said in a sentence."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in BY_NAME:
        raise MinidockerError(
            f"unknown capability {name!r}: use a name from capabilities(7) such as NET_ADMIN "
            f"or CAP_SYS_TIME, or ALL ('man 7 capabilities' lists them)")
    return full


def mask(names) -> int:
    """The bit mask of a set of capability names (bit N for capability N)."""
    return sum(1 << BY_NAME[name].number for name in set(names))


def names(bits: int) -> list[str]:
    """The capability names in a mask, in bit order (``cap_N`` for bits this table lacks)."""
    by_number = {cap.number: cap.name for cap in CAPABILITIES}
    return [by_number.get(n, f"cap_{n}") for n in range(64) if bits >> n & 1]


def decode(hex_mask: str) -> list[str]:
    """Names of a mask as ``/proc/<pid>/status`` prints it: ``decode("00000000a80425fb")``.
    (``capsh --decode`` does the same.)"""
    return names(int(hex_mask, 16))


# --- Docker's rules ---------------------------------------------------------------------------

def resolve(cap_add=(), cap_drop=(), privileged: bool = False,
            base: frozenset[str] = DOCKER_DEFAULT) -> frozenset[str]:
    """The container's capabilities from ``--cap-add``, ``--cap-drop`` and ``--privileged``,
    with Docker's rules (moby's ``TweakCapabilities``):

    - ``--privileged``: every capability, whatever the other flags say;
    - ``--cap-add ALL``: every capability except those in ``--cap-drop``;
    - ``--cap-drop ALL``: exactly the ``--cap-add`` ones;
    - otherwise: the default set, minus ``--cap-drop``, plus ``--cap-add`` (add wins).
    """
    adds = {normalize(name) for name in cap_add}
    drops = {normalize(name) for name in cap_drop}
    if privileged:
        return all_capabilities()
    if "ALL" in adds:
        return all_capabilities() - drops
    if "ALL" in drops:
        return frozenset(adds)
    return frozenset((base - drops) | adds)


# --- the process's sets -----------------------------------------------------------------------

@dataclass(frozen=True)
class CapSets:
    """The five sets of one process, as masks (``/proc/<pid>/status``: CapInh ... CapAmb)."""

    inheritable: int
    permitted: int
    effective: int
    bounding: int
    ambient: int

    def show(self) -> str:
        """The five sets as /proc prints them, each with its names: a table for notebooks."""
        rows = []
        for field in ("effective", "permitted", "inheritable", "bounding", "ambient"):
            bits = getattr(self, field)
            shown = ", ".join(n.removeprefix("CAP_") for n in names(bits)) or "-"
            rows.append(f"{field:<12} {bits:016x}  {shown}")
        return "\n".join(rows)


def read_status(pid: int | str = "self") -> CapSets:
    """The capability sets of a process, read from ``/proc/<pid>/status``."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.startswith("Cap"):
                fields[key] = int(value, 16)
    return CapSets(fields["CapInh"], fields["CapPrm"], fields["CapEff"], fields["CapBnd"],
                   fields.get("CapAmb", 0))


# --- in the container, just before exec -------------------------------------------------------

def drop_bounding_set(keep: frozenset[str]) -> None:
    """Drop every capability not in ``keep`` from the bounding set, for good (needs
    CAP_SETPCAP, so this comes before capset takes SETPCAP away) — up to the kernel's own last
    one, even one newer than our table: what we cannot name, we do not keep."""
    wanted = mask(keep)
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            kernels_last = int(f.read())
    except OSError:
        kernels_last = last_cap()
    for number in range(max(kernels_last, last_cap()) + 1):
        if not wanted >> number & 1 and kernel.prctl(kernel.PR_CAPBSET_READ, number):
            kernel.prctl(kernel.PR_CAPBSET_DROP, number)


def clear_ambient() -> None:
    """Empty the ambient set, so no capability passes exec by that road."""
    kernel.prctl(kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_CLEAR_ALL)


def keep_caps(on: bool) -> None:
    """``PR_SET_KEEPCAPS``: whether a setuid() away from uid 0 keeps the permitted set
    (it is cleared again by the next exec, which is what a non-root container wants)."""
    kernel.prctl(kernel.PR_SET_KEEPCAPS, int(on))


def set_process_caps(keep: frozenset[str]) -> None:
    """capset(2): permitted = effective = ``keep``, inheritable = empty. A process can only
    shrink its sets: capabilities it never had (a nested host may lack some) stay out."""
    _, permitted, _ = kernel.capget()
    wanted = mask(keep) & permitted
    kernel.capset(effective=wanted, permitted=wanted, inheritable=0)


def apply(caps: frozenset[str]) -> None:
    """Leave the calling process with exactly ``caps``: bounding set, ambient, then capset.
    (``minidocker.security.apply`` calls these steps one by one, to fit the uid switch in.)"""
    drop_bounding_set(caps)
    clear_ambient()
    set_process_caps(caps)


def table() -> str:
    """Every capability, whether Docker keeps it, and why it drops the others."""
    return "\n".join(f"{cap.number:>2}  {cap.name:<22} {'keep' if cap.docker_default else 'drop'}"
                     f"  {cap.threat}" for cap in CAPABILITIES)
