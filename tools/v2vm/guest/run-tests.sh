#!/bin/bash
# Runs inside the v2vm guest (from v2vm-tests.service, or from v2vm-bare-init as PID 1):
# prints what cgroup layout this boot has, runs the pytest selection, then any probes.
# Everything goes to the console and to /results/output.txt (read back by run.sh with debugfs).
cd /repo || exit 1
ARGS=(tests/test_cgroups.py tests/test_lab03.py tests/test_smoke.py tests/test_run.py -q -rs)
if [ -s /results/args ]; then mapfile -t ARGS </results/args; fi
mkdir -p /results
export MINIDOCKER_TEST_TIMEOUT_SCALE=${MINIDOCKER_TEST_TIMEOUT_SCALE:-10}   # TCG: ~10x slower
{
    echo "=== v2vm: commit $(cat /repo/.v2vm-commit 2>/dev/null), kernel $(uname -r), mode ${V2VM_MODE:-systemd}"
    echo "=== /proc/cmdline"; cat /proc/cmdline
    echo "=== cgroup lines of /proc/self/mountinfo"; grep -E 'cgroup' /proc/self/mountinfo
    echo "=== /sys/fs/cgroup/cgroup.controllers"; cat /sys/fs/cgroup/cgroup.controllers
    echo "=== /sys/fs/cgroup/cgroup.subtree_control"; cat /sys/fs/cgroup/cgroup.subtree_control
    echo "=== /proc/self/cgroup"; cat /proc/self/cgroup
    echo "=== swap"; cat /proc/swaps
    echo "=== python: $(/repo/.venv/bin/python -c 'import minidocker.cgroups as c; print(c.layout(), c.for_container("x").__class__.__name__)')"
    echo "=== pytest ${ARGS[*]}"
    /repo/.venv/bin/pytest "${ARGS[@]}"
    echo "=== pytest exit status $?"
    if [ -x /usr/local/sbin/v2vm-probe ]; then
        echo "=== probes"; /usr/local/sbin/v2vm-probe
    fi
    echo "=== v2vm: done"
} 2>&1 | tee /results/output.txt
sync
