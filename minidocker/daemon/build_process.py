"""The process that ``POST /build`` runs: stage 10's builder on a context the daemon received.

The daemon has unpacked and checked the context (daemon/builds.py); this program builds it
with ``build.builder.build`` — the one builder, the one ``minidocker build`` uses — with the
classic lines (``Step 1/3 : FROM busybox``, `` ---> Using cache``...) on its stdout, where a
RUN's own output goes too; the daemon turns them into Docker's JSON stream. The result (the
image's ID, or the error) is written to ``result.json`` next to the context. A process of its
own, not a thread of the daemon: a build starts containers and waits for them, and a client
that hangs up stops it with SIGINT as Ctrl-C stops ``minidocker build``.

Usage: ``python -m minidocker.daemon.build_process SCRATCH`` with the request's JSON on stdin
(the options; for ``pull=1`` the base images and the client's registry logins).
"""

import json
import posixpath
import sys
from pathlib import Path

from minidocker.build import builder
from minidocker.build import progress as views
from minidocker.build.context import BuildContext, Ignore
from minidocker.build.parser import parse
from minidocker.errors import MinidockerError
from minidocker.registry.client import locate
from minidocker.registry.progress import Report
from minidocker.registry.pull import pull


def main(argv: list[str]) -> int:
    scratch, request = Path(argv[0]), json.load(sys.stdin)
    root = scratch / "context"
    view = views.Quiet() if request["quiet"] else views.Plain(sys.stdout)
    result: dict = {}
    try:
        for name in request["pull"]:  # ?pull=1: newer base images first, as dockerd does
            login = request["logins"].get(locate(name).host)
            pull(name, Report(sys.stdout), login=tuple(login) if login else None)
        dockerfile = parse((root / request["dockerfile"]).read_bytes(),
                           file=posixpath.basename(request["dockerfile"]))
        image = builder.build(dockerfile, BuildContext(root, Ignore.of_directory(root)),
                              builder.BuildOptions(**request["options"]), view)
        result = {"id": image.id}
    except MinidockerError as exc:
        view.failed()
        result = {"error": str(exc)}
    except KeyboardInterrupt:  # the client went away
        result = {"error": "the build was cancelled"}
    finally:
        view.close()
        (scratch / "result.json").write_text(json.dumps(result))
    return 0 if "id" in result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
