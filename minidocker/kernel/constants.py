"""The kernel's own names for the flags the syscalls take (from <sched.h>, <sys/mount.h>,
<linux/prctl.h>). They keep the kernel's spelling so a student can grep the man page for them.

Man pages: clone(2) (CLONE_*), mount(2) (MS_*), umount2(2) (MNT_*), prctl(2) (PR_*),
seccomp(2) (SECCOMP_*), pty(7) (TIOCGPTN, TIOCSPTLCK: what ptsname(3) and unlockpt(3) do),
netdevice(7) (SIOC*, IFF_UP), open_tree(2) and move_mount(2) (OPEN_TREE_*, MOVE_MOUNT_*),
mount_setattr(2) (MOUNT_ATTR_*), fsopen(2) and fsconfig(2) (FSOPEN_*, FSCONFIG_*).
Used by: the same as libc.py; labs 04, 05, 08 and 09 call ``kernel`` directly.
"""

# clone(2) / unshare(2) / setns(2): one bit per namespace type
CLONE_NEWNS = 0x00020000  # mount
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000  # hostname and domain name
CLONE_NEWIPC = 0x08000000  # System V IPC, POSIX message queues
CLONE_NEWUSER = 0x10000000  # uids, gids, capabilities
CLONE_NEWPID = 0x20000000  # process ids
CLONE_NEWNET = 0x40000000  # network devices, addresses, routes, firewall
CLONE_NEWTIME = 0x00000080  # boot and monotonic clocks

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# fsopen(2) / fsconfig(2): a filesystem context, configured one parameter at a time
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0  # a parameter without a value ("noswap")
FSCONFIG_SET_STRING = 1  # key=value ("size=64m")

# umount2(2) flags
MNT_FORCE = 0x1
MNT_DETACH = 0x2

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_SET_NAME = 15
PR_GET_NAME = 16
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

# ioctl(2) requests on a pty master (pts(4)): its number, and the lock on its slave
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431

# prctl(2) options for stage 9 (capabilities and seccomp)
PR_GET_KEEPCAPS = 7
PR_SET_KEEPCAPS = 8  # keep the permitted set across setuid() away from uid 0
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
PR_CAP_AMBIENT = 47  # with one of the PR_CAP_AMBIENT_* operations below as arg2
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

# capget(2) / capset(2): the header's version, which says "two 32-bit words per set"
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_LINUX_CAPABILITY_U32S_3 = 2

# seccomp(2) modes and the values a filter returns (<linux/seccomp.h>); the low 16 bits of a
# return value are its data (the errno for SECCOMP_RET_ERRNO)
SECCOMP_MODE_STRICT = 1
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF

# <linux/audit.h>: the architecture a system call came from, as seccomp_data.arch names it
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000  # the kernel's __X32_SYSCALL_BIT: x32 ABI calls carry the x86_64
# arch value, with this bit added to the syscall number

# netdevice(7): an interface's flags, the pre-netlink way
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

# the new mount API: open_tree(2), move_mount(2), mount_setattr(2)
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000  # the path is "": act on the file descriptor itself
AT_RECURSIVE = 0x8000  # the mount and every mount below it
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4

# mount_setattr(2): struct mount_attr's attr_set and attr_clr (<linux/mount.h>)
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x00100000  # with userns_fd: see files through that namespace's id maps
