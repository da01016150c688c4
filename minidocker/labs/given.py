"""Helpers the labs give the student ready-made, so that each lab is only about its lesson.

``from minidocker.labs.given import exec_command, wait_for`` in a lab's starter file; lab 12's
HTTP client reads its socket with a ``Reader``; lab 15's checker describes the container it
wants in a ``ContainerSpec``.

Man pages: execve(2), waitpid(2), recv(2).
Used by: the labs' starter files (labs/NN-topic/starter.py) and their solutions.
"""

import os
import socket
from dataclasses import dataclass
from typing import NoReturn


def exec_command(argv: list[str]) -> NoReturn:
    """Replace this (child) process with the command ``argv``, found on $PATH. Never returns:
    if the command cannot be run, say why and exit with 127, as a shell does."""
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"{argv[0]}: {exc.strerror}\n".encode())
    os._exit(127)


def wait_for(pid: int) -> int:
    """Wait for the child ``pid`` to end and return its exit code (128+N if signal N
    killed it), as a shell's ``$?`` shows it."""
    status = os.waitpid(pid, 0)[1]
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


class Reader:
    """Lab 12: bytes from a socket, read as they come, with what was read too far kept for later."""

    def __init__(self, sock: socket.socket, already: bytes = b""):
        self.sock, self.buffer = sock, already

    def more(self) -> bool:
        """Read once more from the socket; False when the other side has closed."""
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def line(self) -> bytes:
        """One line, without its CRLF."""
        while b"\r\n" not in self.buffer:
            if not self.more():
                raise ConnectionError("the connection closed in the middle of a line")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self.more():
                raise ConnectionError(f"the connection closed after {len(self.buffer)} of "
                                      f"{size} bytes")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def pieces(self):
        """What is left: first what is already buffered, then each read, to the end."""
        if self.buffer:
            yield self.buffer
            self.buffer = b""
        while data := self.sock.recv(65536):
            yield data


@dataclass(frozen=True)
class ContainerSpec:
    """Lab 15: the container the checker asks your ``run(spec, argv)`` to make."""

    hostname: str
    image: str  # the image's files: the overlay's lower layer, never written
    state: str  # an empty directory of this container's: make upper/, work/, merged/ in it
    cgroup_parent: str  # where the pids controller is, under which the container's cgroup goes
    cgroup_name: str  # the container's cgroup: cgroup_parent/cgroup_name
    pids_limit: int  # pids.max: the processes (and threads) of the container, at most
    host_if: str  # the veth end on the host ("veth0")
    container_if: str  # the veth end in the container ("eth0")
    host_ip: str  # the host end's address ("10.0.0.1")
    container_ip: str  # the container's address ("10.0.0.2")
    prefix: int  # both addresses' prefix length (24: "10.0.0.2/24")
    keep: frozenset[int]  # the capability numbers the command keeps
    blocked_nr: int  # the system call your seccomp filter refuses with EPERM
    arch: int  # the AUDIT_ARCH_* value of this machine, for the filter's first check
