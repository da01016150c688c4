"""Stages 2 and 6 through the CLI: isolation as the container itself reports it."""

import os
import signal
import subprocess
import time

import pytest

from minidocker import namespaces, rootfs
from minidocker.container import Config, HostConfig, run

from .conftest import MINIDOCKER, TIMEOUT_SCALE


def test_ps_inside_shows_only_the_container(md):
    result = md("run", "--rm", "busybox", "ps", "-o", "pid,comm")
    assert result.stdout.split() == ["PID", "COMMAND", "1", "ps"]


def test_every_namespace_but_user_differs_from_the_host(md):
    result = md("run", "--rm", "busybox", "sh", "-c",
                "for ns in /proc/self/ns/*; do readlink $ns; done")
    inside = dict(line.split(":") for line in result.stdout.split())
    host = namespaces.namespaces_of("self")
    for kind in namespaces.CONTAINER_NAMESPACES:
        assert inside[kind] != f"[{host[kind]}]", kind
    assert inside["user"] == f"[{host['user']}]"


def test_old_root_is_unreachable_and_container_mounts_stay_inside(md):
    marker = f"/tmp/host-only-{os.getpid()}"
    open(marker, "w").close()
    try:
        script = f"test -e {marker} && echo leak; ls -a /; cat /proc/self/mountinfo"
        result = md("run", "--rm", "busybox", "sh", "-c", script)
    finally:
        os.unlink(marker)
    assert "leak" not in result.stdout
    assert ".oldroot" not in result.stdout
    mounts = [line.split()[4] for line in result.stdout.splitlines() if " - " in line]
    assert mounts[0] == "/" and "/proc" in mounts and "/dev/pts" in mounts
    host_mounts = open("/proc/self/mountinfo").read()
    assert "overlay" not in host_mounts and "devpts" not in host_mounts.split("/dev/pts")[0][-0:]


def test_dev_is_minimal(md):
    result = md("run", "--rm", "busybox", "ls", "/dev")
    assert set(result.stdout.split()) == {"core", "fd", "full", "null", "ptmx", "pts",
                                          "random", "shm", "stderr", "stdin", "stdout", "tty",
                                          "urandom", "zero"}


def test_masked_and_readonly_paths(md):
    # Only the paths this kernel has can be tried (this one lacks /proc/kcore, for example).
    masked = [p for p in rootfs.MASKED_PATHS if os.path.exists(p)]
    readonly = [p for p in rootfs.READONLY_PATHS if os.path.isfile(p)] + ["/proc/sys/kernel"]
    script = "".join(f"echo {p} $(cat {p} 2>/dev/null | wc -c) $(ls -A {p} | wc -l);"
                     for p in masked)
    script += "".join(f"touch {p}/x 2>/dev/null || echo {p} ro;" if os.path.isdir(p) else
                      f"(echo 1 > {p}) 2>/dev/null || echo {p} ro;" for p in readonly)
    script += "touch /sys/x 2>/dev/null || echo /sys ro"
    result = md("run", "--rm", "busybox", "sh", "-c", script)
    lines = result.stdout.splitlines()
    assert masked, "this kernel has none of Docker's masked paths"
    for path in masked:  # a file reads as /dev/null, a directory is an empty tmpfs
        expected = f"{path} 0 1" if os.path.isfile(path) else f"{path} 0 0"
        assert expected in lines, (path, lines)
    for path in [*readonly, "/sys"]:
        assert f"{path} ro" in lines


def test_read_only_root(md):
    result = md("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert result.returncode == 1
    assert "touch: /x: Read-only file system" in result.stderr
    writable = md("run", "--rm", "--read-only", "busybox", "sh", "-c",
                  "echo ok > /dev/shm/f && cat /dev/shm/f")
    assert writable.stdout == "ok\n"  # tmpfs mounts stay writable, as in Docker


def test_writes_land_in_the_container_layer_not_the_image(md):
    assert md("run", "--rm", "busybox", "sh", "-c", "echo hi > /bin/new").returncode == 0
    assert md("run", "--rm", "busybox", "ls", "/bin/new").returncode == 1


def test_env_workdir_and_default_environment(md):
    result = md("run", "--rm", "-e", "A=1", "-e", "HOME=/tmp", "-w", "/work/dir", "busybox",
                "sh", "-c", "pwd; echo $A $HOME; echo $PATH")
    assert result.stdout.splitlines() == [
        "/work/dir", "1 /tmp", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_default_hostname_is_the_short_id_and_name_is_recorded(md):
    result = md("run", "--name", "keeper", "busybox", "hostname")
    assert result.returncode == 0 and len(result.stdout.strip()) == 12
    listing = md("ps", "-a").stdout
    assert "keeper" in listing and "Exited (0)" in listing
    assert result.stdout.strip() in md("ps", "-a", "-q").stdout
    clash = md("run", "--name", "keeper", "busybox", "true")
    assert clash.returncode == 125 and 'name "keeper" is already in use' in clash.stderr
    assert md("rm", "keeper").stdout == "keeper\n"
    assert "keeper" not in md("ps", "-a").stdout


def test_exit_codes(md):
    assert md("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    missing = md("run", "--rm", "busybox", "nosuch")
    assert missing.returncode == 127
    assert missing.stderr == 'minidocker: exec: "nosuch": executable file not found in $PATH\n'
    not_exec = md("run", "--rm", "busybox", "/etc/passwd")
    assert not_exec.returncode == 126 and "permission denied" in not_exec.stderr


def test_sigkill_from_the_host_gives_137():
    null = os.open(os.devnull, os.O_RDWR)
    container = run(Config(Image="busybox", Cmd=["sleep", "30"]), HostConfig(AutoRemove=True),
                    stdio=namespaces.Stdio(null, null, null))
    os.close(null)
    container.process.signal(signal.SIGKILL)
    assert container.wait() == 137


def test_sigterm_to_the_cli_is_proxied_to_pid_1():
    cli = subprocess.Popen([*MINIDOCKER, "run", "--rm", "busybox", "sh", "-c",
                            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done"],
                           stdout=subprocess.PIPE, text=True)
    assert cli.stdout.readline() == "ready\n"
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=10 * TIMEOUT_SCALE) == 42


def test_stdin_passes_with_i_and_not_without(md):
    assert md("run", "--rm", "-i", "busybox", "cat", input="piped\n").stdout == "piped\n"
    assert md("run", "--rm", "busybox", "cat", input="piped\n").stdout == ""


def test_init_reaps_orphans(md):
    # An orphan is re-parented to PID 1; only a real init waits for it, or it stays a zombie.
    # PID 1 here execs a sleep that never calls wait(); a watcher counts the zombies.
    script = ("(sleep 0.4; cat /proc/[0-9]*/stat | awk '$3 == \"Z\"' | wc -l) & "
              "sh -c 'sleep 0.1 &'; exec sleep 0.7")
    assert md("run", "--rm", "busybox", "sh", "-c", script).stdout.strip() == "1"
    assert md("run", "--rm", "--init", "busybox", "sh", "-c", script).stdout.strip() == "0"


def test_interactive_shell_on_a_pty():
    session = f"md-test-{os.getpid()}"
    out = f"/tmp/{session}.out"
    command = (f"{' '.join(MINIDOCKER)} run --rm -it --hostname box busybox sh; "
               f"echo EXIT=$? > {out}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"cd {os.getcwd()} && {command}"], check=True)
    try:
        screen = wait_for_screen(session, "/ #")
        subprocess.run(["tmux", "send-keys", "-t", session,
                        "echo pid=$$ host=$(hostname) tty=$(tty) size=$(stty size)", "Enter"])
        screen = wait_for_screen(session, "size=24 80")
        assert "pid=1 host=box tty=/dev/pts/0 size=24 80" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "exit 7", "Enter"])
        deadline = time.time() + 10
        while time.time() < deadline and not (os.path.exists(out) and
                                              open(out).read().endswith("\n")):
            time.sleep(0.05)  # the shell creates the file, then writes: wait for the line
        assert open(out).read() == "EXIT=7\n"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        if os.path.exists(out):
            os.unlink(out)


@pytest.mark.parametrize("runtime", ["minidocker", "runc"])
def test_run_it_detaches_with_ctrl_p_ctrl_q_and_attach_comes_back(md, runtime):
    # Docker's default --detach-keys: the CLI goes, the container runs on; attach finds it.
    session = f"md-detach-{os.getpid()}"
    tmux = ["tmux", "-L", session]  # a server of our own, in our namespaces and environment
    env = f"MINIDOCKER_ROOT={os.environ['MINIDOCKER_ROOT']} PYTHONPATH={os.getcwd()}"
    shell = f"cd {os.getcwd()} && export {env} && {' '.join(MINIDOCKER)}"
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"{shell} run -it --runtime {runtime} --name detached busybox sh; echo EXIT=$?; "
                    f"{shell} attach --detach-keys ctrl-x,x detached; echo EXIT=$?; sleep 60"],
                   check=True)
    try:
        wait_for_screen(session, "/ #", tmux=tmux)
        subprocess.run([*tmux, "send-keys", "-t", session, "echo one$((1+1))", "Enter"])
        wait_for_screen(session, "one2", tmux=tmux)
        subprocess.run([*tmux, "send-keys", "-t", session, "C-p", "C-q"])
        wait_for_screen(session, "EXIT=0", tmux=tmux)
        assert md("inspect", "-f", "{{.State.Status}}", "detached").stdout == "running\n"
        subprocess.run([*tmux, "send-keys", "-t", session, "echo two$$ $(stty size)", "Enter"])
        wait_for_screen(session, " 24 80", tmux=tmux)  # our window size
        assert "two1 24 80" in wait_for_screen(session, "two", tmux=tmux)  # the same PID 1
        subprocess.run([*tmux, "send-keys", "-t", session, "C-x", "x"])
        wait_for_screen(session, "read escape sequence\nEXIT=0", tmux=tmux)
        assert md("inspect", "-f", "{{.State.Status}}", "detached").stdout == "running\n"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        md("rm", "-f", "detached")


def wait_for_screen(session: str, text: str, timeout: float = 10,
                    tmux: tuple | list = ("tmux",)) -> str:
    deadline = time.time() + timeout * TIMEOUT_SCALE
    while time.time() < deadline:
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session],
                                capture_output=True, text=True).stdout
        if text in screen:
            return screen
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared on the screen:\n{screen}")


def test_init_starts_like_any_container_and_proxies_signals():
    null = os.open(os.devnull, os.O_RDWR)
    started = time.monotonic()
    container = run(Config(Image="busybox", Cmd=["sleep", "5"]),
                    HostConfig(AutoRemove=True, Init=True),
                    stdio=namespaces.Stdio(null, null, null))
    os.close(null)
    assert time.monotonic() - started < 2  # run() returns once started, not at the end
    container.process.signal(signal.SIGTERM)  # the init has a handler: it passes it on
    assert container.wait() == 128 + signal.SIGTERM


def test_init_with_a_terminal(md):
    result = md("run", "--rm", "-t", "--init", "busybox", "sh", "-c", "echo $$; tty")
    assert (result.returncode, result.stdout) == (0, "2\n/dev/pts/0\n")  # 2: init is 1


def test_no_fd_of_the_caller_reaches_the_container(tmp_path):
    # An open directory fd inside would be a way out of the root (runc's CVE-2024-21626).
    opened = os.open("/", os.O_RDONLY)  # inheritable: as a shell's '4</' would be
    os.set_inheritable(opened, True)
    try:
        for detach in ([], ["-d"]):
            result = subprocess.run(
                [*MINIDOCKER, "run", *detach, "--name", f"fds{len(detach)}", "busybox", "sh",
                 "-c", "ls /proc/self/fd"], pass_fds=(opened,), capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
        subprocess.run([*MINIDOCKER, "wait", "fds1"], capture_output=True, timeout=30)
        for name in ("fds0", "fds1"):
            logs = subprocess.run([*MINIDOCKER, "logs", name], capture_output=True, text=True)
            assert logs.stdout.split() == ["0", "1", "2", "3"], logs.stdout  # 3: ls's own dir
    finally:
        os.close(opened)
        subprocess.run([*MINIDOCKER, "rm", "-f", "fds0", "fds1"], capture_output=True)
