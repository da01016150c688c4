"""Stage 1 — namespaces: a process that sees its own world.

A namespace wraps one kind of global resource (the hostname, the process ids, the mount table,
IPC, the network devices, the uids, the cgroup root) so that the processes inside see their
own copy. A container is a process born in a fresh set of them. The stage, one concern a
module, in the order a student meets them:

* ``kinds``: the kinds of namespace, their ``CLONE_NEW*`` flags, ``/proc/<pid>/ns`` read and
  compared (``namespaces_of``, ``compare``);
* ``sync``: the one parent/child protocol — fork, do a step, report it (``in_child``);
* ``pid1``: the last steps before execve(2) (stdio, signals, fds, the terminal) and a tiny
  init for ``--init`` (``mini_init``);
* ``entering``: setns(2) into a running process's namespaces (``join``, ``enter``);
* ``shim``: a new container's birth (``spawn``): the shim, the user namespace's id maps, PID 1.

``from minidocker import namespaces`` gives every one of them: ``namespaces.spawn``,
``namespaces.enter``, ``namespaces.Stdio``, ...

Man pages: namespaces(7), pid_namespaces(7), user_namespaces(7), unshare(2), setns(2),
clone(2), prctl(2), nsenter(1). Used by: notebook 01-namespaces, lab 01-namespaces.
"""

from minidocker.namespaces.entering import (
    enter,
    fork_into_pid_namespace,
    join,
    join_one,
    read_all,
    wait_forwarding_signals,
)
from minidocker.namespaces.kinds import (
    CONTAINER_NAMESPACES,
    NAMESPACES,
    compare,
    flags_for,
    namespaces_of,
)
from minidocker.namespaces.pid1 import (
    SIGNALS_TO_FORWARD,
    Stdio,
    close_other_fds,
    execute,
    mini_init,
    open_console,
    receive_console,
    reset_signal_dispositions,
)
from minidocker.namespaces.shim import IdMap, Process, child_subreaper, spawn, write_id_maps
from minidocker.namespaces.sync import (
    Child,
    ExecFailed,
    Report,
    StepFailed,
    exit_code_of,
    failure,
    fork_child,
    in_child,
)

__all__ = [
    "CONTAINER_NAMESPACES", "NAMESPACES", "SIGNALS_TO_FORWARD", "Child", "ExecFailed", "IdMap",
    "Process", "Report", "Stdio", "StepFailed", "child_subreaper", "close_other_fds", "compare",
    "enter", "execute", "exit_code_of", "failure", "flags_for", "fork_child",
    "fork_into_pid_namespace", "in_child", "join", "join_one", "mini_init", "namespaces_of",
    "open_console", "read_all", "receive_console", "reset_signal_dispositions", "spawn",
    "wait_forwarding_signals", "write_id_maps",
]
