# Shared settings of the v2vm scripts (sourced, not run).
set -euo pipefail

V2VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$V2VM_DIR/../.." && pwd)
WORK=${V2VM_WORK:-/tmp/minidocker-v2vm}          # everything built lands here
MIRROR=${V2VM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
ROOTFS=$WORK/rootfs
IMAGE=$WORK/root.img
IMAGE_SIZE=${V2VM_IMAGE_SIZE:-6G}
WHEELS=$WORK/wheels
RESULTS=$WORK/results

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'v2vm: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run me as root (debootstrap, chroot, mkfs)"
