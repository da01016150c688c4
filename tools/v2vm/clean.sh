#!/usr/bin/env bash
# Remove everything the v2vm scripts built ($WORK), after checking nothing is mounted in it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
for m in dev/pts dev sys proc; do
    mountpoint -q "$ROOTFS/$m" 2>/dev/null && umount -l "$ROOTFS/$m"
done
qemu_stop
grep -q " $WORK" /proc/self/mountinfo && die "something is still mounted under $WORK"
rm -rf "$WORK"
say "removed $WORK"
