"""The process that ``exec start`` runs: the engine's ``exec_in`` with this process's stdio.

``container.exec.exec_in`` joins a running container's cgroup and namespaces and runs a
command there with the caller's stdin, stdout and stderr (or a new pty, which it relays to
them) — a CLI's own terminal. The daemon has no terminal to give: it starts this small
program with pipes as its stdio and copies them to and from the client's hijacked connection,
so exec is the engine's one exec, whichever front end asks. The exit code is the command's.

Usage: ``python -m minidocker.daemon.exec_process CONTAINER_ID SPEC_JSON``.
"""

import json
import sys

from minidocker.container import lifecycle
from minidocker.container.exec import ExecSpec, exec_in
from minidocker.errors import MinidockerError


def main(argv: list[str]) -> int:
    container_id, spec = argv[0], ExecSpec(**json.loads(argv[1]))
    try:
        return exec_in(lifecycle.find(container_id), spec)
    except MinidockerError as exc:
        print(f"minidocker: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
