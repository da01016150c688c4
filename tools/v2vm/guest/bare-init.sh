#!/bin/bash
# PID 1 of the v2vm guest in "bare" mode (init=/usr/local/sbin/v2vm-bare-init): no systemd;
# mounts a v2-only cgroup2 tree at /sys/fs/cgroup itself, runs the tests, powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin V2VM_MODE=bare
mount -o remount,rw /
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
ip link set lo up
/usr/local/sbin/v2vm-run-tests
sync
echo o >/proc/sysrq-trigger
sleep 30
