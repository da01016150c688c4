#!/usr/bin/env bash
# Pause a running VM of v2vm, or let it go on:
#
#   tools/v2vm/pause.sh stop|cont|status      (V2VM_WORK=/tmp/minidocker-classroom for the classroom VM)
#
# A guest under TCG takes both CPUs for hours (classroom-run.sh full). To measure something on
# the host meanwhile (a benchmark, the test suite), stop its virtual CPUs with QEMU's machine
# protocol (QMP, on $WORK/qmp.sock): unlike SIGSTOP to qemu, QMP's "stop" also stops the guest's
# clock, so no timeout inside the guest runs out while it is paused; "cont" goes on where it was.
V2VM_DEFAULT_WORK=${V2VM_DEFAULT_WORK:-/tmp/minidocker-v2vm}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case ${1:-} in stop | cont) COMMAND=$1 ;; status) COMMAND=query-status ;;
    *) die "say stop, cont or status" ;; esac
[ -S "$WORK/qmp.sock" ] || die "no VM runs with a QMP socket at $WORK/qmp.sock"
python3 - "$WORK/qmp.sock" "$COMMAND" <<'PY'
import json, socket, sys

path, command = sys.argv[1:]
with socket.socket(socket.AF_UNIX) as qmp:
    qmp.connect(path)
    replies = qmp.makefile("r")
    json.loads(replies.readline())  # the greeting
    for execute in ("qmp_capabilities", command):
        qmp.sendall(json.dumps({"execute": execute}).encode() + b"\n")
        while "return" not in (reply := json.loads(replies.readline())):
            if "error" in reply:
                sys.exit(f"qmp {execute}: {reply['error']['desc']}")
    answer = reply["return"]
    print(answer.get("status", command) if isinstance(answer, dict) else command)
PY
