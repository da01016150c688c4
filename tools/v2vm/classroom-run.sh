#!/usr/bin/env bash
# Boot the classroom VM that classroom-build.sh made, provision it with vagrant/provision.sh as
# `vagrant up` does, and check it from the host:
#
#   tools/v2vm/classroom-run.sh [short|full|up]
#
# short (default): provision, then: the guest's cgroups are v2 only; JupyterLab answers on the
#   forwarded port (with its token, and refuses without); `vagrant ssh`'s login environment
#   (vagrant/profile.sh) works for vagrant; `minidocker run --rm busybox echo hi` works for
#   vagrant through sudo (the login's alias, and plain sudo); then, as root in /vagrant,
#   tests/test_run.py, tests/test_cgroups.py and notebook 00 under strict nbval.
# full: the same, then the whole `./kit test` inside the guest (hours under TCG).
# up: provision, print how to reach the VM, and keep it running until Ctrl-C.
#
# Network: qemu's user-mode network with `restrict=on` (the guest reaches nothing: no route out,
# not even to the host) and two forwards on the host's 127.0.0.1 only, to the guest's sshd and
# JupyterLab (ports picked free, or $CLASSROOM_SSH_PORT / $CLASSROOM_LAB_PORT). Nothing on the
# host's network changes. The disk is used with snapshot=on: the guest's writes go to a
# temporary file qemu deletes, so every run provisions the same unprovisioned box (and, with
# cache=unsafe, dpkg's many fsyncs of that throwaway file cost nothing).
# A summary with each phase's time goes to $WORK/results/classroom-MODE.txt; the console to
# $WORK/serial-classroom.log. Exit status 0 only if every check passed.
V2VM_DEFAULT_WORK=/tmp/minidocker-classroom
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MODE=${1:-short}
case $MODE in short | full | up) ;; *) die "mode is short, full or up, not $MODE" ;; esac
[ -f "$IMAGE" ] && [ -f "$WORK/vmlinuz" ] || die "no image yet: run tools/v2vm/classroom-build.sh first"
LAB_PORT=8888   # the Vagrantfile's LAB_PORT: the guest side of the forward
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SSH_PORT=${CLASSROOM_SSH_PORT:-$(free_port)}
HOST_LAB_PORT=${CLASSROOM_LAB_PORT:-$(free_port)}
SERIAL=$WORK/serial-classroom.log
mkdir -p "$RESULTS"
SUMMARY=$RESULTS/classroom-$MODE.txt
: >"$SUMMARY"
FAILED=0
STARTED=$SECONDS

note() { printf '%s\n' "$*" | tee -a "$SUMMARY" >&2; }
ok() { note "ok    $*"; }
fail() { note "FAIL  $*"; FAILED=$((FAILED + 1)); }
phase() { note "time  $1: $(($SECONDS - PHASE_START)) s"; PHASE_START=$SECONDS; }
# `vagrant ssh` for scripts: the key classroom-build.sh made, the forwarded port.
guest() {
    ssh -i "$WORK/ssh/id_ed25519" -p "$SSH_PORT" -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 \
        -o BatchMode=yes vagrant@127.0.0.1 "$@"
}

trap qemu_stop EXIT
rm -f "$SERIAL"
V2VM_MEMORY=${V2VM_MEMORY:-3072}
qemu_command "$SERIAL" "systemd.unit=multi-user.target"
say "booting the classroom VM ($ACCEL): ssh on 127.0.0.1:$SSH_PORT, JupyterLab on 127.0.0.1:$HOST_LAB_PORT"
PHASE_START=$SECONDS
# In the background of this script (its process group: stopping the script stops it too).
"${QEMU[@]}" -drive "file=$IMAGE,format=raw,if=virtio,snapshot=on,cache=unsafe" \
    -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22,hostfwd=tcp:127.0.0.1:$HOST_LAB_PORT-:$LAB_PORT" \
    >"$WORK/qemu.log" 2>&1 &
QEMU_PID=$!

for _ in $(seq 100); do
    guest true 2>/dev/null && break
    kill -0 "$QEMU_PID" 2>/dev/null || { cat "$WORK/qemu.log"; tail -30 "$SERIAL"; die "qemu stopped"; }
    sleep 3
done
guest true || { tail -30 "$SERIAL"; die "no ssh into the guest after 5 minutes (console: $SERIAL)"; }
phase boot

# Vagrant's two provisioners, in order: "setup" (the script, as root, with LAB_PORT), then
# "lab" (run: always).
say "provisioning with vagrant/provision.sh (output in $RESULTS/provision.log)"
if guest "sudo env LAB_PORT=$LAB_PORT bash /vagrant/vagrant/provision.sh" >"$RESULTS/provision.log" 2>&1 &&
    guest "sudo systemctl restart jupyterlab.service" >>"$RESULTS/provision.log" 2>&1; then
    ok "vagrant/provision.sh"
else
    fail "vagrant/provision.sh (see $RESULTS/provision.log)"
    tail -20 "$RESULTS/provision.log" >&2
fi
phase provision

say "checking from the host"
fs=$(guest stat -fc %T /sys/fs/cgroup || true)
v1=$(guest "grep -c ' - cgroup ' /proc/self/mountinfo" || true)
[ "$fs" = cgroup2fs ] && [ "$v1" = 0 ] && ok "cgroup v2 only (/sys/fs/cgroup is $fs)" ||
    fail "cgroups: /sys/fs/cgroup is $fs, $v1 v1 mounts"

TOKEN=$(guest "sudo sed -n 's/^JUPYTER_TOKEN=//p' /etc/minidocker/lab.env" || true)
status=000
for _ in $(seq 60); do
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HOST_LAB_PORT/api/status?token=$TOKEN" || true)
    [ "$status" = 200 ] && break
    sleep 3
done
[ "$status" = 200 ] && ok "JupyterLab answers on 127.0.0.1:$HOST_LAB_PORT with its token" ||
    fail "JupyterLab on 127.0.0.1:$HOST_LAB_PORT: HTTP $status"
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HOST_LAB_PORT/api/status" || true)
[ "$status" = 403 ] && ok "JupyterLab refuses a request without the token (HTTP 403)" ||
    fail "JupyterLab without its token: HTTP $status, not 403"
page=$(curl -s "http://127.0.0.1:$HOST_LAB_PORT/lab?token=$TOKEN" || true)
case $page in *JupyterLab*) ok "the /lab page is JupyterLab's" ;; *) fail "the /lab page is not JupyterLab's" ;; esac
listeners=$(ss -Hltn "( sport = :$SSH_PORT or sport = :$HOST_LAB_PORT )" | awk '{print $4}' | sort -u | tr '\n' ' ')
[ "$listeners" = "127.0.0.1:$SSH_PORT 127.0.0.1:$HOST_LAB_PORT " ] ||
    [ "$listeners" = "127.0.0.1:$HOST_LAB_PORT 127.0.0.1:$SSH_PORT " ] &&
    ok "the forwards listen on 127.0.0.1 only ($listeners)" || fail "the forwards listen on: $listeners"

# `vagrant ssh`: a login shell (interactive) for vagrant, which reads /etc/profile.d/minidocker.sh.
login=$(guest "bash -lic 'echo PWD=\$PWD; echo VENV=\$MINIDOCKER_VENV; alias minidocker; minidocker run --rm busybox echo hi from the login shell'" 2>&1 || true)
printf '%s\n' "$login" >"$RESULTS/login.txt"
for want in "minidocker classroom VM" "PWD=/vagrant" "VENV=/opt/minidocker/venv" \
    "alias minidocker='sudo minidocker'" "http://127.0.0.1:8888/lab?token=$TOKEN" "hi from the login shell"; do
    case $login in *"$want"*) ok "vagrant's login: $want" ;; *) fail "vagrant's login lacks: $want (see $RESULTS/login.txt)" ;; esac
done
hi=$(guest "sudo minidocker run --rm busybox echo hi" 2>&1 || true)
[ "$hi" = hi ] && ok "vagrant: sudo minidocker run --rm busybox echo hi" || fail "sudo minidocker run: $hi"
phase checks

# TCG is ~10x slower than the machine: the tests' own timeouts (tests/conftest.py) scale.
SLOW="MINIDOCKER_TEST_TIMEOUT_SCALE=${MINIDOCKER_TEST_TIMEOUT_SCALE:-10}"
PYTEST="cd /vagrant && sudo env $SLOW /opt/minidocker/venv/bin/pytest -p no:cacheprovider --timeout 900 -rs"
NBVAL="--nbval --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout 600"
case $MODE in
    short | full)
        say "pytest in the guest: test_run, test_cgroups, notebook 00 ($RESULTS/pytest-short.log)"
        if guest "$PYTEST -q tests/test_run.py tests/test_cgroups.py notebooks/00-tour.ipynb $NBVAL" \
            >"$RESULTS/pytest-short.log" 2>&1; then
            ok "pytest tests/test_run.py tests/test_cgroups.py notebooks/00-tour.ipynb: $(tail -1 "$RESULTS/pytest-short.log")"
        else
            fail "pytest in the guest: $(tail -1 "$RESULTS/pytest-short.log") (see $RESULTS/pytest-short.log)"
        fi
        phase "pytest (short)"
        ;;&
    full)
        # Hours under TCG: the run is a unit of the guest's systemd (systemd-run), not a child
        # of an ssh session, so a dropped connection (the guest paused a long while with
        # pause.sh, a slow network stack) does not end it. The host asks every minute whether
        # it has finished (a fresh ssh each time), then fetches its log. -v: a line per test as
        # it ends (what ran is known even if the run is cut short), -rfE: what failed, at once
        # readable; --durations: the slowest under emulation.
        say "./kit test in the guest, a unit of its own there ($RESULTS/kit-test.log)"
        guest "sudo systemd-run --unit=kit-test --working-directory=/vagrant --setenv=HOME=/root --setenv=$SLOW \
            bash -c './kit test --timeout 900 -v -rfE --durations=40 >/var/log/kit-test.log 2>&1; echo \$? >/var/log/kit-test.rc'" \
            >"$RESULTS/kit-test-unit.log" 2>&1 || fail "systemd-run kit-test (see $RESULTS/kit-test-unit.log)"
        until guest "test -f /var/log/kit-test.rc" 2>/dev/null; do
            kill -0 "$QEMU_PID" 2>/dev/null || { fail "qemu stopped during ./kit test"; break; }
            # A copy that failed (the guest paused, ssh timed out) keeps the last good one.
            guest "sudo cat /var/log/kit-test.log" >"$RESULTS/kit-test.log.new" 2>/dev/null &&
                mv "$RESULTS/kit-test.log.new" "$RESULTS/kit-test.log" || rm -f "$RESULTS/kit-test.log.new"
            sleep 60
        done
        guest "sudo cat /var/log/kit-test.log" >"$RESULTS/kit-test.log" 2>/dev/null || true
        rc=$(guest "cat /var/log/kit-test.rc" 2>/dev/null || echo none)
        if [ "$rc" = 0 ]; then
            ok "./kit test: $(tail -1 "$RESULTS/kit-test.log")"
        else
            fail "./kit test (exit $rc): $(tail -1 "$RESULTS/kit-test.log") (see $RESULTS/kit-test.log)"
        fi
        phase "./kit test"
        ;;
    up)
        note "the classroom VM runs: JupyterLab http://127.0.0.1:$HOST_LAB_PORT/lab?token=$TOKEN"
        note "  ssh -i $WORK/ssh/id_ed25519 -p $SSH_PORT vagrant@127.0.0.1   (Ctrl-C here powers it off)"
        while kill -0 "$QEMU_PID" 2>/dev/null; do sleep 5; done
        ;;
esac

guest "sudo systemctl poweroff" >/dev/null 2>&1 || true
for _ in $(seq 30); do
    kill -0 "$QEMU_PID" 2>/dev/null || break
    sleep 2
done
note "time  total: $(($SECONDS - STARTED)) s ($ACCEL)"
[ "$FAILED" = 0 ] && note "classroom VM: every check passed" || note "classroom VM: $FAILED check(s) failed"
[ "$FAILED" = 0 ]
