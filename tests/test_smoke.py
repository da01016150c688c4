"""The issue's "done when" lines, as a user types them."""


def test_hostname(md):
    result = md("run", "--rm", "--hostname", "box", "busybox", "hostname")
    assert (result.returncode, result.stdout) == (0, "box\n")


def test_pid_one(md):
    assert md("run", "--rm", "busybox", "sh", "-c", "echo $$").stdout == "1\n"


def test_exit_code(md):
    assert md("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
