# minidocker classroom VM: installed as /etc/profile.d/minidocker.sh by vagrant/provision.sh.
# A login lands in the course repo with minidocker at hand.

export MINIDOCKER_VENV=/opt/minidocker/venv

case $- in
    *i*)
        if [ "$(id -u)" != 0 ]; then
            # containers need root: the alias adds sudo (`sudo minidocker ...` works as well)
            alias minidocker='sudo minidocker'
        fi
        if [ "$PWD" = "$HOME" ] && [ -d /vagrant ]; then
            cd /vagrant || true
        fi
        lab_token=$(sudo -n sed -n 's/^JUPYTER_TOKEN=//p' /etc/minidocker/lab.env 2>/dev/null)
        cat <<HINT
minidocker classroom VM — you are in /vagrant, the course repo.
  minidocker run --rm -it busybox sh    a container (minidocker runs with sudo)
  sudo ./kit test                       every test;  sudo ./kit bench  the benchmark
  sudo -i                               a root shell, for the labs
  JupyterLab, on your computer:         http://127.0.0.1:8888/lab?token=${lab_token:-<see: sudo cat /etc/minidocker/lab.env>}
HINT
        unset lab_token
        ;;
esac
