"""The kernel's own names for the flags the syscalls take (from <sched.h>, <sys/mount.h>,
<linux/prctl.h>). They keep the kernel's spelling so a student can grep the man page for them.
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
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_STRICTATIME = 1 << 24

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
