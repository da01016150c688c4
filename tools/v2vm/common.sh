# Shared settings and steps of the v2vm scripts (sourced, not run): the v2 test VM
# (build.sh, run.sh) and the classroom VM (classroom-build.sh, classroom-run.sh) are made of
# the same pieces: a debootstrap rootfs, wheels fetched on the host, a raw image made with
# `mkfs.ext4 -d`, and one qemu command line.
set -euo pipefail

V2VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$V2VM_DIR/../.." && pwd)
WORK=${V2VM_WORK:-${V2VM_DEFAULT_WORK:-/tmp/minidocker-v2vm}}   # everything built lands here
MIRROR=${V2VM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
ROOTFS=$WORK/rootfs
IMAGE=$WORK/root.img
IMAGE_SIZE=${V2VM_IMAGE_SIZE:-6G}
WHEELS=$WORK/wheels
RESULTS=$WORK/results
ARCHIVE=$WORK/repo.tar

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'v2vm: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run me as root (debootstrap, chroot, mkfs)"
# The machine is shared: the image build and qemu (everything this script starts) run niced
# (V2VM_NICE, 10 by default; 0 gives qemu a fair share on a busy machine: a niced TCG guest
# gets a tenth of a core there and the classroom check no longer fits its timeout).
renice -n "${V2VM_NICE:-10}" -p $$ >/dev/null

# --- the chroot: /proc, /sys, /dev, /dev/pts mounted while it is used, undone by a trap ---
MOUNTED=()
chroot_umount() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        mountpoint -q "${MOUNTED[i]}" && umount -l "${MOUNTED[i]}"
    done
    MOUNTED=()
}
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

install_host_tools() {
    command -v debootstrap >/dev/null && command -v qemu-system-x86_64 >/dev/null &&
        command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null && return 0
    say "installing host packages: qemu-system-x86 debootstrap e2fsprogs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 debootstrap e2fsprogs >/dev/null
}

# 1. The Debian 12 rootfs with PACKAGES (comma-separated; the kernel boots from it). Packages
#    added to the list after the rootfs was made are installed into it (the chroot uses the
#    host's network for apt; the guest itself never has one).
bootstrap_rootfs() {
    local packages=$1 p missing=()
    install_host_tools
    mkdir -p "$WORK"
    if [ ! -f "$WORK/.debootstrap-done" ]; then
        say "debootstrap $SUITE into $ROOTFS (a few minutes)"
        rm -rf "$ROOTFS"
        debootstrap --variant=minbase --include="$packages" "$SUITE" "$ROOTFS" "$MIRROR" \
            >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
        touch "$WORK/.debootstrap-done"
    fi
    for p in ${packages//,/ }; do
        chroot "$ROOTFS" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing into the rootfs: ${missing[*]}"
    chroot_mount
    in_chroot apt-get update -qq
    in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; die "apt-get install failed"; }
    chroot_umount
}

# 2. Wheels for the repo's HEAD with EXTRAS (e.g. "dev" or "lab,dev"), fetched on the host
#    (the guest has no network) once per pyproject.toml: the guests install minidocker itself
#    from the source (pip install -e), only its dependencies from the wheels. $ARCHIVE is
#    `git archive HEAD`.
fetch_wheels() {
    local extras=$1 key
    git -C "$REPO_DIR" archive --format=tar HEAD >"$ARCHIVE"
    key=$(git -C "$REPO_DIR" show HEAD:pyproject.toml | sha256sum | cut -c1-16)-${extras/,/-}
    [ -f "$WORK/.wheels-$key" ] && return 0
    say "downloading the [$extras] wheels for pyproject.toml $key"
    rm -rf "$WORK/src" "$WHEELS" "$WORK"/.wheels-*
    mkdir -p "$WORK/src" "$WHEELS"
    tar -xf "$ARCHIVE" -C "$WORK/src"
    /usr/bin/python3 -m pip wheel -q --wheel-dir "$WHEELS" "$WORK/src[$extras]" setuptools wheel pip \
        >"$WORK/wheels.log" 2>&1 || { tail -20 "$WORK/wheels.log"; die "pip wheel failed"; }
    rm -rf "$WORK/src"
    touch "$WORK/.wheels-$key"
}

# 3. Kernel and initramfs out of the rootfs, then the raw disk image from the directory
#    (no loop device, the image is never mounted).
image_from_rootfs() {
    local kernel initrd
    kernel=$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -1)
    initrd=$(ls "$ROOTFS"/boot/initrd.img-* | sort -V | tail -1)
    cp "$kernel" "$WORK/vmlinuz"
    cp "$initrd" "$WORK/initrd.img"
    say "making $IMAGE ($IMAGE_SIZE ext4, from the directory)"
    rm -f "$IMAGE"
    mkfs.ext4 -q -F -L v2vm-root -d "$ROOTFS" "$IMAGE" "$IMAGE_SIZE"
    say "built: kernel $(basename "$kernel"), image $IMAGE"
}

# --- booting ---
# KVM first; in some nested setups (a KVM that is itself a guest's) the guest kernel hangs right
# after its real-mode setup, so a 20 s probe decides, and TCG (slow, but right) is the fallback.
qemu_accel() {
    [ -e /dev/kvm ] || V2VM_ACCEL=tcg
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

# The qemu command line both VMs boot with, into the array QEMU: v2-only cgroups, serial console
# to the file $1, the pid in $WORK/qemu.pid, QEMU's machine protocol on $WORK/qmp.sock (pause.sh),
# kernel args $2; the caller adds disk and network.
# $ACCEL says which accelerator it chose.
qemu_command() {
    local serial=$1 cmdline=$2
    ACCEL=$(qemu_accel)
    # shellcheck disable=SC2206 # the accel words are meant to split
    QEMU=(qemu-system-x86_64 $ACCEL -smp 2 -m "${V2VM_MEMORY:-2048}"
        -machine q35 -display none -vga none -monitor none -no-reboot
        -serial "file:$serial" -pidfile "$WORK/qemu.pid"
        -qmp "unix:$WORK/qmp.sock,server=on,wait=off"
        -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img"
        -append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all systemd.show_status=0 $cmdline")
}

qemu_stop() {
    if [ -f "$WORK/qemu.pid" ] && kill -0 "$(cat "$WORK/qemu.pid")" 2>/dev/null; then
        kill "$(cat "$WORK/qemu.pid")"
    fi
    rm -f "$WORK/qemu.pid"
}
