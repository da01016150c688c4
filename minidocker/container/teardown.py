"""Stage 6 — the end of a container: one way to give back what it held, whoever ends it.

A container holds things in the kernel and on disk: a cgroup (with its processes), a network
endpoint (veth, address, NAT rules), anonymous volumes, its directory and record. Many callers
end containers — the monitor when PID 1 exits, ``start`` when a start fails, ``rm -f``, the
next command that finds a dead monitor, later the daemon and compose — and all of them call
the three functions below (moby's ``daemon/delete.go`` is the model). Each is idempotent:
after a crash it may run again, and only what is still there is removed.

* ``release(record)``: the kernel's part — kill every process through the cgroup and remove
  it, unplug the network;
* ``remove(record, volumes)``: release, then the anonymous volumes (``rm -v``, ``--rm``) and
  the directory with the record;
* ``finish(record, exit_code)``: PID 1 is gone (or never ran): with ``--rm`` remove
  everything, else release and record the exit.

Both end with ``unmount_volumes``: a volume the local driver mounted (a tmpfs) is unmounted
when no running container uses it any more. It runs once the record says "exited" (or is
gone), so of two containers stopping at once, the later one sees neither as a user.

Man pages: cgroups(7) (cgroup.kill), rmdir(2), veth(4).
"""

import shutil

from minidocker.container import records
from minidocker.container.networking import NetworkPlan
from minidocker.errors import MinidockerError


def release(record: records.ContainerRecord) -> None:
    """Give back what a container held in the kernel: its processes and its cgroup (killed
    through the cgroup: every process of the container, nobody else's), its network."""
    if record.HostConfig.Runtime == "runc":
        from minidocker.container import runc  # its bundle's modules only for its containers

        runc.delete(record.Id, record.cgroup())  # runc's state, and the cgroup it made
    record.cgroup().destroy()
    NetworkPlan(record).release()


def remove(record: records.ContainerRecord, volumes_too: bool = False) -> None:
    """Forget a container: release it, then (``rm -v``) its anonymous volumes that no other
    container uses, then its directory (upper dir, log, record)."""
    release(record)
    if volumes_too:
        from minidocker import volumes

        volumes.remove_anonymous(record.Mounts, records.volumes_in_use(but=record.Id))
    record.remove()
    shutil.rmtree(record.directory, ignore_errors=True)
    unmount_volumes(record)
    record.event("destroy")


def finish(record: records.ContainerRecord, exit_code: int, oom_killed: bool = False,
           error: str = "") -> None:
    """The container's PID 1 has ended (or never started): ``--rm`` removes it with its
    anonymous volumes, as ``rm -v``; otherwise it is released and its exit recorded."""
    record.event("die", exitCode=exit_code)
    if record.HostConfig.AutoRemove:
        remove(record, volumes_too=True)
        return
    release(record)
    try:
        record.mark_exited(exit_code, oom_killed=oom_killed, error=error)
    except MinidockerError:
        pass  # removed meanwhile ('rm -f'): nothing left to record
    unmount_volumes(record)


def unmount_volumes(record: records.ContainerRecord) -> None:
    """The local driver's mounts of this container's volumes that no running container
    needs now (localdriver.py): derived from the records, never from a counter."""
    if any(m.get("Type") == "volume" for m in record.Mounts):
        from minidocker import volumes

        volumes.unmount_unused(record.Mounts, records.running_volumes)
