#!/usr/bin/env bash
# Boot the image build.sh made, v2-only, no network; the guest runs the tests and powers off.
#
#   tools/v2vm/run.sh [systemd|bare] [pytest args...]
#
# systemd (default): Debian's systemd as PID 1 with systemd.unified_cgroup_hierarchy=1 and
#   cgroup_no_v1=all, the tests run from a system service (like the Ubuntu 24.04 VM).
# bare: init=/usr/local/sbin/v2vm-bare-init, which mounts cgroup2 at /sys/fs/cgroup itself and
#   runs the tests in the root cgroup.
# Pytest args default to the cgroup selection (see guest/run-tests.sh). The serial console goes to
# $WORK/serial-MODE.log, the guest's /results/output.txt is copied to $WORK/results/output-MODE.txt.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MODE=${1:-systemd}
[ $# -gt 0 ] && shift
case $MODE in
    systemd) INIT="systemd.unit=multi-user.target" ;;
    bare) INIT="init=/usr/local/sbin/v2vm-bare-init" ;;
    *) die "mode is systemd or bare, not $MODE" ;;
esac
[ -f "$IMAGE" ] && [ -f "$WORK/vmlinuz" ] || die "no image yet: run tools/v2vm/build.sh first"

# The pytest args go into the image with debugfs (no mount): /results/args, one per line.
ARGS_FILE=$WORK/args
if [ $# -gt 0 ]; then printf '%s\n' "$@" >"$ARGS_FILE"; else : >"$ARGS_FILE"; fi
debugfs -w -R "rm /results/args" "$IMAGE" >/dev/null 2>&1 || true
debugfs -w -R "rm /results/output.txt" "$IMAGE" >/dev/null 2>&1 || true
debugfs -w -R "write $ARGS_FILE /results/args" "$IMAGE" >/dev/null 2>&1

SERIAL=$WORK/serial-$MODE.log
rm -f "$SERIAL"
trap qemu_stop EXIT
qemu_command "$SERIAL" "$INIT"
say "booting ($MODE, $ACCEL), serial console in $SERIAL (timeout ${V2VM_TIMEOUT:-1800}s)"
timeout "${V2VM_TIMEOUT:-1800}" "${QEMU[@]}" -nic none -drive "file=$IMAGE,format=raw,if=virtio" \
    || say "qemu exited with status $?"

mkdir -p "$RESULTS"
OUT=$RESULTS/output-$MODE.txt
rm -f "$OUT"
debugfs -R "dump /results/output.txt $OUT" "$IMAGE" >/dev/null 2>&1 || true
if [ -s "$OUT" ]; then
    say "guest output: $OUT"
    cat "$OUT"
else
    say "no /results/output.txt from the guest; last lines of the console:"
    tail -40 "$SERIAL"
    exit 1
fi
