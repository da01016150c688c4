#!/usr/bin/env bash
# Build a cgroup-v2-only test VM for minidocker: a Debian 12 rootfs (systemd, Debian's kernel,
# python3, busybox-static ...), the repo's HEAD at /repo with its [dev] venv, and a raw ext4 disk
# image made from that directory with `mkfs.ext4 -d` (no loop device, no mount of the image).
#
# Idempotent: each step leaves a stamp in $WORK and is skipped next time; the repo copy, the
# guest scripts and the disk image are refreshed on every run. The only mounts are the chroot's
# /proc, /sys and /dev, undone by a trap even on failure.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PACKAGES=systemd-sysv,udev,linux-image-amd64,initramfs-tools,python3,python3-venv,busybox-static,iproute2,util-linux,procps,kmod,tini,psmisc,iptables,ca-certificates,tmux

# 1. The Debian 12 rootfs (kernel and modules included: the kernel boots from it).
trap chroot_umount EXIT
bootstrap_rootfs "$PACKAGES"

# 2. The system settings the guest needs: no network, root disk, autologin-free, tests on boot.
say "configuring the guest"
echo minidocker-v2vm >"$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost minidocker-v2vm\n' >"$ROOTFS/etc/hosts"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$ROOTFS/etc/fstab"
sed -i 's/^root:[^:]*:/root::/' "$ROOTFS/etc/shadow"   # passwordless root on the serial console
install -m 0755 "$V2VM_DIR/guest/run-tests.sh" "$ROOTFS/usr/local/sbin/v2vm-run-tests"
install -m 0755 "$V2VM_DIR/guest/bare-init.sh" "$ROOTFS/usr/local/sbin/v2vm-bare-init"
install -m 0755 "$V2VM_DIR/guest/probe.sh" "$ROOTFS/usr/local/sbin/v2vm-probe"
install -D -m 0644 "$V2VM_DIR/guest/probe.py" "$ROOTFS/usr/local/lib/v2vm/probe.py"
install -m 0644 "$V2VM_DIR/guest/v2vm-tests.service" "$ROOTFS/etc/systemd/system/v2vm-tests.service"
ln -sf /etc/systemd/system/v2vm-tests.service \
    "$ROOTFS/etc/systemd/system/multi-user.target.wants/v2vm-tests.service"
# Nothing in the guest waits for a network or a login.
for unit in systemd-networkd-wait-online.service getty@tty1.service; do
    ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
done

# 3. Wheels for the [dev] extras, fetched on the host (the guest has no network).
fetch_wheels dev
HEAD=$(git -C "$REPO_DIR" rev-parse HEAD)

# 4. The repo at /repo and its venv, installed in the chroot from those wheels only.
say "copying the repo (git archive HEAD) to /repo and building its venv"
rm -rf "$ROOTFS/repo" "$ROOTFS/wheels"
mkdir -p "$ROOTFS/repo" "$ROOTFS/wheels"
tar -xf "$ARCHIVE" -C "$ROOTFS/repo"
echo "$HEAD" >"$ROOTFS/repo/.v2vm-commit"
cp "$WHEELS"/*.whl "$ROOTFS/wheels/"
chroot_mount
in_chroot /usr/bin/python3 -m venv /repo/.venv
in_chroot /repo/.venv/bin/pip install -q --no-index --find-links /wheels --upgrade pip setuptools wheel \
    >"$WORK/venv.log" 2>&1 || { tail -20 "$WORK/venv.log"; die "venv pip upgrade failed"; }
in_chroot /repo/.venv/bin/pip install -q --no-index --find-links /wheels -e "/repo[dev]" \
    >>"$WORK/venv.log" 2>&1 || { tail -20 "$WORK/venv.log"; die "pip install -e /repo[dev] failed"; }
rm -rf "$ROOTFS/wheels" "$ROOTFS/results"
mkdir -p "$ROOTFS/results"
chroot_umount

# 5. Kernel and initramfs out of the rootfs, then the disk image from the directory.
image_from_rootfs
