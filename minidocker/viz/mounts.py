"""The mount table as the kernel shows it, ``/proc/<pid>/mountinfo``, parsed into rows.

A line of mountinfo (proc(5)) reads::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)    (10)         (11)

(1) mount ID, (2) parent's mount ID, (3) device, (4) root of the mount within its filesystem,
(5) mount point, relative to the process's root, (6) per-mount options, (7) optional fields such
as ``shared:N`` (propagation), (8) a separator, (9) filesystem type, (10) source, (11) options
of the filesystem itself. Reading ``/proc/<pid>/mountinfo`` of a container's process from the
host shows the container's mount table, with paths as the container sees them.

Man pages: proc(5), mount_namespaces(7). Used by: notebook 02-root-filesystems.
"""

from dataclasses import dataclass

from minidocker.viz.table import Table


@dataclass(frozen=True)
class Mount:
    mount_id: int
    parent_id: int
    device: str
    root: str
    mount_point: str
    options: str
    optional: tuple[str, ...]
    fstype: str
    source: str
    super_options: str

    @property
    def readonly(self) -> bool:
        return "ro" in self.options.split(",")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_line(line: str) -> Mount:
    fields = line.split()
    separator = fields.index("-", 6)
    return Mount(int(fields[0]), int(fields[1]), fields[2], _unescape(fields[3]),
                 _unescape(fields[4]), fields[5], tuple(fields[6:separator]),
                 fields[separator + 1], _unescape(fields[separator + 2]),
                 fields[separator + 3] if len(fields) > separator + 3 else "")


def parse_mountinfo(text: str) -> list[Mount]:
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def mountinfo(pid: int | str = "self") -> list[Mount]:
    """The mount table of ``pid``'s mount namespace, as seen from ``pid``'s root."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return parse_mountinfo(f.read())


def mount_table(mounts: list[Mount], title: str = "") -> Table:
    """The columns that tell the story: where, what, from where, read-only or not."""
    rows = [(m.mount_point, m.fstype, m.source, m.root, "ro" if m.readonly else "rw")
            for m in mounts]
    return Table(("mount point", "type", "source", "root", "ro/rw"), rows, title)
