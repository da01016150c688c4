#!/usr/bin/env bash
# Provisions the classroom VM; Vagrant runs it as root once, on the first `vagrant up`
# (again with `vagrant provision`). Every step is safe to repeat.
#
#   1. the README's setup: `./kit setup` in /vagrant (apt packages, venv, busybox image);
#   2. the environment every login and `sudo` gets (where the venv is);
#   3. JupyterLab as the systemd service `jupyterlab`, as root, with a token of its own; it runs
#      `./kit lab`, which trusts the notebooks and turns off the news prompt at every start.
set -euo pipefail

REPO=/vagrant
LAB_PORT=${LAB_PORT:-8888}
# The venv lives on the VM's own disk: a shared folder (vboxsf) refuses the symlinks a venv
# is made of, and the host's checkout may hold a .venv of its own.
export MINIDOCKER_VENV=/opt/minidocker/venv
export DEBIAN_FRONTEND=noninteractive

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# A fresh Ubuntu runs unattended-upgrades on first boot: wait for its dpkg lock, don't fail.
echo 'DPkg::Lock::Timeout "600";' > /etc/apt/apt.conf.d/90minidocker-wait-for-lock

say "./kit setup (the README's setup)"
cd "$REPO"
bash ./kit setup

say "login environment: /etc/profile.d/minidocker.sh, sudo keeps MINIDOCKER_VENV"
install -d -m 0755 /etc/minidocker
install -m 0644 "$REPO/vagrant/profile.sh" /etc/profile.d/minidocker.sh
sudoers=$(mktemp)
echo 'Defaults env_keep += "MINIDOCKER_VENV"' > "$sudoers"
visudo -cqf "$sudoers"
install -m 0440 "$sudoers" /etc/sudoers.d/minidocker
rm -f "$sudoers"

say "JupyterLab as a service on port $LAB_PORT"
if [ ! -s /etc/minidocker/lab.env ]; then
    # Root's JupyterLab is a root shell: keep it behind a token, even on a forwarded port.
    (umask 077; printf 'JUPYTER_TOKEN=%s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        > /etc/minidocker/lab.env)
fi
printf 'MINIDOCKER_LAB_PORT=%s\n' "$LAB_PORT" > /etc/minidocker/lab-port.env
install -m 0644 "$REPO/vagrant/jupyterlab.service" /etc/systemd/system/jupyterlab.service
systemctl daemon-reload
systemctl enable jupyterlab.service
systemctl restart jupyterlab.service

token=$(sed -n 's/^JUPYTER_TOKEN=//p' /etc/minidocker/lab.env)
for _ in $(seq 120); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "http://127.0.0.1:$LAB_PORT/api/status?token=$token" 2>/dev/null; then
        say "ready: JupyterLab is at http://127.0.0.1:$LAB_PORT/lab?token=$token"
        say "then: vagrant ssh, and try: minidocker run --rm -it busybox sh"
        exit 0
    fi
    sleep 1
done
echo "JupyterLab did not answer within 2 minutes; see: vagrant ssh -c 'sudo journalctl -u jupyterlab'" >&2
exit 1
