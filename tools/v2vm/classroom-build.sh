#!/usr/bin/env bash
# Build the classroom VM's disk: a Debian 12 guest made like a Vagrant box (systemd, sshd,
# sudo, a `vagrant` user with passwordless sudo and an SSH key, the course repo at /vagrant),
# *not yet provisioned*: classroom-run.sh provisions it with vagrant/provision.sh, as
# `vagrant up` does. The guest never has a network to the outside, so everything provisioning
# fetches is put into the image first:
#
#   /srv/classroom/debs     a local apt repository with the kit's APT_PACKAGES and TEST_PACKAGES
#                           (and what they depend on), the guest's only apt source;
#   /srv/classroom/wheels   the wheels of HEAD[lab,dev], pip, setuptools, wheel; /etc/pip.conf
#                           says --no-index --find-links there.
#
# The pieces (debootstrap, wheels, image, qemu) are v2vm's, from common.sh. Idempotent: the
# rootfs, the debs (per package list) and the wheels (per commit) are fetched once; the repo
# copy and the image are refreshed every time. Only the committed HEAD is copied.
V2VM_DEFAULT_WORK=/tmp/minidocker-classroom
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# What a Vagrant box brings (bento/ubuntu-24.04 and debian/bookworm64 both have these); the
# rest is the kit's business.
PACKAGES=systemd-sysv,udev,linux-image-amd64,initramfs-tools,kmod,openssh-server,sudo,apt-utils,ca-certificates,iproute2,procps,python3
OFFLINE=/srv/classroom
GUEST_IP=10.0.2.15   # qemu's user-mode network (slirp): the guest, its gateway 10.0.2.2

trap chroot_umount EXIT
# While building, the rootfs's apt reads Debian's mirror; the guest reads only the local repo.
[ -d "$ROOTFS/etc/apt" ] && echo "deb $MIRROR $SUITE main" >"$ROOTFS/etc/apt/sources.list"
bootstrap_rootfs "$PACKAGES"

# 1. A box: hostname as the Vagrantfile sets it, the disk, a static address on qemu's user
#    network (systemd-networkd), sshd, and the vagrant user with Vagrant's sudo rule.
say "configuring the guest like a Vagrant box"
echo minidocker >"$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tminidocker\n' >"$ROOTFS/etc/hosts"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$ROOTFS/etc/fstab"
cat >"$ROOTFS/etc/systemd/network/10-qemu-user.network" <<NET
[Match]
Name=en*

[Network]
Address=$GUEST_IP/24
Gateway=10.0.2.2
NET
for unit in systemd-networkd-wait-online.service getty@tty1.service; do
    ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
done
in_chroot systemctl enable -q systemd-networkd.service ssh.service
# qemu boots the kernel and initramfs copied out at build time (-kernel, -initrd), never the
# guest's /boot: its update-initramfs (run again when provisioning installs e.g. fuse3) would
# only cost a quarter of an hour under TCG.
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$ROOTFS/etc/initramfs-tools/update-initramfs.conf"
in_chroot id vagrant >/dev/null 2>&1 || in_chroot useradd -m -s /bin/bash -U vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$ROOTFS/etc/sudoers.d/vagrant"
chmod 0440 "$ROOTFS/etc/sudoers.d/vagrant"
mkdir -p "$WORK/ssh"
[ -f "$WORK/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C minidocker-classroom -f "$WORK/ssh/id_ed25519"
install -d -m 0700 "$ROOTFS/home/vagrant/.ssh"
install -m 0600 "$WORK/ssh/id_ed25519.pub" "$ROOTFS/home/vagrant/.ssh/authorized_keys"
in_chroot chown -R vagrant:vagrant /home/vagrant/.ssh

# 2. The course repo at /vagrant, owned by vagrant (as a synced folder is).
say "copying the repo (git archive HEAD) to /vagrant"
fetch_wheels lab,dev
rm -rf "$ROOTFS/vagrant"
mkdir -p "$ROOTFS/vagrant"
tar -xf "$ARCHIVE" -C "$ROOTFS/vagrant"
git -C "$REPO_DIR" rev-parse HEAD >"$ROOTFS/vagrant/.classroom-commit"
in_chroot chown -R vagrant:vagrant /vagrant
# CI keeps the shared course files (../shared: the BuildKit conformance corpus the parser tests
# read in place) beside the checkout; the guest gets them beside /vagrant the same way, as a
# copy outside the project, so its run reads the corpus as CI's does.
rm -rf "$ROOTFS/shared"
if [ -d "$REPO_DIR/../shared" ]; then
    cp -a "$REPO_DIR/../shared" "$ROOTFS/shared"
else
    say "no ../shared beside the repo: the guest's run skips the conformance tests"
fi

# 3. The local apt repository: every Debian package the kit installs (its own lists, read from
#    the kit), downloaded by the rootfs's apt with what they need beyond the box.
eval "$(sed -n '/^APT_PACKAGES=(/,/)/p; /^TEST_PACKAGES=(/,/)/p' "$REPO_DIR/kit")"
DEB_LIST="${APT_PACKAGES[*]} ${TEST_PACKAGES[*]}"
DEB_STAMP=$WORK/.debs-$(echo "$DEB_LIST" | sha256sum | cut -c1-16)
if [ ! -f "$DEB_STAMP" ]; then
    say "downloading the kit's Debian packages into $OFFLINE/debs"
    rm -rf "$ROOTFS$OFFLINE/debs" "$WORK"/.debs-*
    mkdir -p "$ROOTFS$OFFLINE/debs/partial"
    chroot_mount
    in_chroot apt-get update -qq
    # shellcheck disable=SC2086 # one package a word
    in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only \
        --no-install-recommends -o Dir::Cache::archives="$OFFLINE/debs" $DEB_LIST \
        >"$WORK/debs.log" 2>&1 || { tail -20 "$WORK/debs.log"; die "apt-get --download-only failed"; }
    rm -rf "$ROOTFS$OFFLINE/debs/partial" "$ROOTFS$OFFLINE/debs/lock"
    in_chroot sh -c "cd $OFFLINE/debs && apt-ftparchive packages . >Packages && apt-ftparchive release . >Release"
    chroot_umount
    touch "$DEB_STAMP"
fi
echo "deb [trusted=yes] file:$OFFLINE/debs ./" >"$ROOTFS/etc/apt/sources.list"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin

# 4. The wheels, and pip told to use only them (the kit's `pip install` runs unchanged).
rm -rf "$ROOTFS$OFFLINE/wheels"
mkdir -p "$ROOTFS$OFFLINE/wheels"
cp "$WHEELS"/*.whl "$ROOTFS$OFFLINE/wheels/"
printf '[global]\nno-index = true\nfind-links = %s/wheels\n' "$OFFLINE" >"$ROOTFS/etc/pip.conf"

# 5. Kernel, initramfs and the disk image.
image_from_rootfs
