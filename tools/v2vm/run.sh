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
[ -e /dev/kvm ] || V2VM_ACCEL=tcg

# The pytest args go into the image with debugfs (no mount): /results/args, one per line.
ARGS_FILE=$WORK/args
if [ $# -gt 0 ]; then printf '%s\n' "$@" >"$ARGS_FILE"; else : >"$ARGS_FILE"; fi
debugfs -w -R "rm /results/args" "$IMAGE" >/dev/null 2>&1 || true
debugfs -w -R "rm /results/output.txt" "$IMAGE" >/dev/null 2>&1 || true
debugfs -w -R "write $ARGS_FILE /results/args" "$IMAGE" >/dev/null 2>&1

# KVM first; in some nested setups (a KVM that is itself a guest's) the guest kernel hangs right
# after its real-mode setup, so a 20 s probe decides, and TCG (slow, but right) is the fallback.
accel() {
    case ${V2VM_ACCEL:-auto} in
        kvm) echo "-enable-kvm -cpu ${V2VM_CPU:-host,-arch-capabilities}"; return ;;
        tcg) echo "-accel tcg,thread=multi -cpu max"; return ;;
    esac
    local probe=$WORK/kvm-probe.log
    rm -f "$probe"
    timeout 20 qemu-system-x86_64 -enable-kvm -cpu "${V2VM_CPU:-host,-arch-capabilities}" -m 256 \
        -machine q35 -nic none -display none -monitor none -no-reboot -serial "file:$probe" \
        -kernel "$WORK/vmlinuz" -append "console=ttyS0 panic=-1" >/dev/null 2>&1 || true
    if grep -q "Linux version" "$probe" 2>/dev/null; then
        echo "-enable-kvm -cpu ${V2VM_CPU:-host,-arch-capabilities}"
    else
        say "KVM does not boot a guest kernel here (see $probe): using TCG"
        echo "-accel tcg,thread=multi -cpu max"
    fi
}
ACCEL=$(accel)

SERIAL=$WORK/serial-$MODE.log
PIDFILE=$WORK/qemu.pid
rm -f "$SERIAL"
cleanup() {
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        kill "$(cat "$PIDFILE")"
    fi
    rm -f "$PIDFILE"
}
trap cleanup EXIT
say "booting ($MODE, $ACCEL), serial console in $SERIAL (timeout ${V2VM_TIMEOUT:-1800}s)"
timeout "${V2VM_TIMEOUT:-1800}" qemu-system-x86_64 $ACCEL -smp 2 -m 2048 \
    -machine q35 -nic none -display none -monitor none -no-reboot \
    -serial "file:$SERIAL" -pidfile "$PIDFILE" \
    -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
    -drive "file=$IMAGE,format=raw,if=virtio" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all systemd.show_status=0 $INIT" \
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
