"""Stage 6 — the OCI hooks runc calls back into minidocker (``--runtime runc``).

A runtime knows nothing of bridges and IP addresses: the OCI runtime spec leaves networking to
*hooks*, programs the runtime runs at set moments of a container's life with the container's
state (``id``, ``pid``, ``bundle``...) as JSON on stdin. bundle.py asks runc for one
``createRuntime`` hook: once the namespaces exist, before pivot_root and long before the
command runs, ``python -m minidocker.container.hooks network`` plugs the container's network
namespace in (stage 8's veth, address, NAT and /etc/hosts), as minidocker's own start does in
``parent_side``. dockerd does the same with its ``libnetwork-setkey`` prestart hook.

Spec: opencontainers/runtime-spec ``config.md`` (POSIX-platform Hooks), ``runtime.md``
(State). Used by: notebook 06b-oci-runtime.
"""

import json
import sys

from minidocker.container import records
from minidocker.container.networking import NetworkPlan
from minidocker.errors import MinidockerError


def network(state: dict) -> None:
    """Plug the container whose state runc gave us into its network."""
    NetworkPlan(records.load(state["id"])).attach(state["pid"])


HOOKS = {"network": network}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in HOOKS:
        print(f"usage: python -m minidocker.container.hooks {'|'.join(HOOKS)} < STATE",
              file=sys.stderr)
        return 2
    try:
        HOOKS[argv[0]](json.load(sys.stdin))
    except (MinidockerError, OSError, ValueError, KeyError) as exc:
        print(f"minidocker {argv[0]} hook: {exc}", file=sys.stderr)  # runc quotes it
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
