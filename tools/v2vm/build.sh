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

command -v debootstrap >/dev/null && command -v qemu-system-x86_64 >/dev/null &&
    command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null || {
    say "installing host packages: qemu-system-x86 debootstrap e2fsprogs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 debootstrap e2fsprogs >/dev/null
}
mkdir -p "$WORK"

MOUNTED=()
chroot_umount() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        mountpoint -q "${MOUNTED[i]}" && umount -l "${MOUNTED[i]}"
    done
    MOUNTED=()
}
trap chroot_umount EXIT
chroot_mount() {
    local m
    for m in proc sys dev dev/pts; do
        mountpoint -q "$ROOTFS/$m" && continue
        case $m in
            proc) mount -t proc proc "$ROOTFS/proc" ;;
            sys) mount -t sysfs sysfs "$ROOTFS/sys" ;;
            dev) mount --bind /dev "$ROOTFS/dev" ;;
            dev/pts) mount -t devpts -o newinstance devpts "$ROOTFS/dev/pts" ;;
        esac
        MOUNTED+=("$ROOTFS/$m")
    done
}
in_chroot() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# 1. The Debian 12 rootfs (kernel and modules included: the kernel boots from it).
if [ ! -f "$WORK/.debootstrap-done" ]; then
    say "debootstrap $SUITE into $ROOTFS (a few minutes)"
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
    touch "$WORK/.debootstrap-done"
fi

# Packages added to the list after the rootfs was made: installed into it (the chroot uses the
# host's network for apt; the guest itself never has one).
MISSING=()
for p in ${PACKAGES//,/ }; do
    chroot "$ROOTFS" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        MISSING+=("$p")
done
if [ ${#MISSING[@]} -gt 0 ]; then
    say "installing into the rootfs: ${MISSING[*]}"
    chroot_mount
    in_chroot apt-get update -qq
    in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${MISSING[@]}" >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; die "apt-get install failed"; }
    chroot_umount
fi

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
ARCHIVE=$WORK/repo.tar
git -C "$REPO_DIR" archive --format=tar HEAD >"$ARCHIVE"
HEAD=$(git -C "$REPO_DIR" rev-parse HEAD)
if [ ! -f "$WORK/.wheels-$HEAD" ]; then
    say "downloading the [dev] wheels for $HEAD"
    rm -rf "$WORK/src" "$WHEELS" "$WORK"/.wheels-*
    mkdir -p "$WORK/src" "$WHEELS"
    tar -xf "$ARCHIVE" -C "$WORK/src"
    /usr/bin/python3 -m pip wheel -q --wheel-dir "$WHEELS" "$WORK/src[dev]" setuptools wheel pip \
        >"$WORK/wheels.log" 2>&1 || { tail -20 "$WORK/wheels.log"; die "pip wheel failed"; }
    touch "$WORK/.wheels-$HEAD"
fi

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
KERNEL=$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -1)
INITRD=$(ls "$ROOTFS"/boot/initrd.img-* | sort -V | tail -1)
cp "$KERNEL" "$WORK/vmlinuz"
cp "$INITRD" "$WORK/initrd.img"
say "making $IMAGE ($IMAGE_SIZE ext4, from the directory)"
rm -f "$IMAGE"
mkfs.ext4 -q -F -L v2vm-root -d "$ROOTFS" "$IMAGE" "$IMAGE_SIZE"
say "built: kernel $(basename "$KERNEL"), image $IMAGE"
