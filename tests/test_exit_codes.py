"""Exit codes as Docker's CLI gives them, verb by verb (checked against docker 28's CLI).

125: a bad flag of any command, and an error of the engine in ``run``/``create``;
126/127: the container's command cannot be run / is not there; the container's own code for
``run`` and ``start -a``; 1: every other failed command, a wrong number of arguments, an
unknown command. Each error says what went wrong in one line, never a traceback."""

import pytest

GHOST = "no-such-container"
NO_IMAGE = "no-such-image:1"

# (command line, exit code, what the error names)
MISSING = [
    (("start", GHOST), 1, f"No such container: {GHOST}"),
    (("logs", GHOST), 1, f"No such container: {GHOST}"),
    (("attach", GHOST), 1, f"No such container: {GHOST}"),
    (("exec", GHOST, "true"), 1, f"No such container: {GHOST}"),
    (("top", GHOST), 1, f"No such container: {GHOST}"),
    (("wait", GHOST), 1, f"No such container: {GHOST}"),
    (("inspect", GHOST), 1, f"No such object: {GHOST}"),
    (("inspect", "--type", "container", GHOST), 1, f"No such container: {GHOST}"),
    (("inspect", "--type", "image", GHOST), 1, f"No such image: {GHOST}"),
    (("inspect", "--type", "network", GHOST), 1, f"network {GHOST} not found"),
    (("inspect", "--type", "volume", GHOST), 1, f"No such volume: {GHOST}"),
    (("inspect", "--type", "bogus", GHOST), 1, 'unknown type: "bogus": must be one of'),
    (("rename", GHOST, "new-name"), 1, f"No such container: {GHOST}"),
    (("stop", GHOST), 1, f"No such container: {GHOST}"),
    (("kill", GHOST), 1, f"No such container: {GHOST}"),
    (("restart", GHOST), 1, f"No such container: {GHOST}"),
    (("pause", GHOST), 1, f"No such container: {GHOST}"),
    (("unpause", GHOST), 1, f"No such container: {GHOST}"),
    (("rm", GHOST), 1, f"No such container: {GHOST}"),
    (("port", GHOST), 1, f"No such container: {GHOST}"),
    (("diff", GHOST), 1, f"No such container: {GHOST}"),
    (("commit", GHOST), 1, f"No such container: {GHOST}"),
    (("export", "-o", "/tmp/never.tar", GHOST), 1, f"No such container: {GHOST}"),
    (("rmi", NO_IMAGE), 1, NO_IMAGE),
    (("tag", NO_IMAGE, "other:1"), 1, NO_IMAGE),
    (("history", NO_IMAGE), 1, NO_IMAGE),
    (("save", "-o", "/tmp/never.tar", NO_IMAGE), 1, NO_IMAGE),
    (("load", "-i", "/no/such/archive.tar"), 1, "/no/such/archive.tar"),
    (("import", "/no/such/rootfs.tar"), 1, "/no/such/rootfs.tar"),
    (("network", "rm", "no-such-net"), 1, "network no-such-net not found"),
    (("network", "inspect", "no-such-net"), 1, "network no-such-net not found"),
    (("network", "connect", "no-such-net", GHOST), 1, GHOST),
    (("network", "disconnect", "no-such-net", GHOST), 1, GHOST),
    (("volume", "inspect", "no-such-volume"), 1, "No such volume: no-such-volume"),
    (("volume", "rm", "no-such-volume"), 1, "No such volume: no-such-volume"),
    (("volume", "create", "./bad"), 1, "invalid characters"),
    (("volume", "create", "-o", "size=1m", "v"), 1, 'invalid option: "size"'),
    (("volume", "create", "--opt", "type=tmpfs", "v"), 1, 'missing required option: "device"'),
    (("image", "prune", "--filter", "nope=1"), 1, "invalid filter 'nope' for image prune"),
    (("image", "prune", "--filter", "until=soon"), 1, "invalid time 'soon'"),
    (("volume", "prune", "-f", "--filter", "until=1h"), 1,
     "invalid filter 'until' for volume prune: use one of all, label, label!"),
    (("system", "prune", "-f", "--volumes", "--filter", "until=1h"), 1,
     'The "until" filter is not supported with "--volumes"'),
    (("registry", "certs", "/proc/no-certs"), 1, "cannot make the certificates' directory"),
    (("registry", "serve", "--root", "/proc/no-root", "--addr", "127.0.0.1:1"), 1,
     "cannot make the registry's root /proc/no-root: No such file or directory"),
    (("network", "create", "--subnet", "10.251.7.0/24", "--gateway", "10.9.9.9", "gw-net"), 1,
     "give a --gateway inside --subnet"),
    (("network", "create", "--subnet", "10.251.8.5/32", "one-address-net"), 1,
     "invalid subnet '10.251.8.5/32': a /32 is one address"),
]

BAD_FLAG = [(verb, 125, "No such option '--nope'") for verb in [
    ("run", "--nope", "busybox"), ("create", "--nope", "busybox"), ("start", "--nope", GHOST),
    ("ps", "--nope"), ("logs", "--nope", GHOST), ("attach", "--nope", GHOST),
    ("exec", "--nope", GHOST, "true"), ("wait", "--nope", GHOST), ("inspect", "--nope", GHOST),
    ("rename", "--nope", GHOST, "x"), ("stop", "--nope", GHOST), ("kill", "--nope", GHOST),
    ("restart", "--nope", GHOST), ("pause", "--nope", GHOST), ("unpause", "--nope", GHOST),
    ("rm", "--nope", GHOST), ("rmi", "--nope", NO_IMAGE), ("tag", "--nope", "a", "b"),
    ("history", "--nope", NO_IMAGE), ("images", "--nope"), ("save", "--nope", NO_IMAGE),
    ("load", "--nope"), ("import", "--nope", "x.tar"), ("export", "--nope", GHOST),
    ("commit", "--nope", GHOST), ("diff", "--nope", GHOST),
    ("network", "ls", "--nope"), ("network", "create", "--nope", "n"),
    ("network", "rm", "--nope", "n"), ("network", "prune", "--nope"),
    ("volume", "ls", "--nope"), ("volume", "create", "--nope"), ("volume", "rm", "--nope", "v"),
    ("volume", "prune", "--nope"), ("container", "prune", "--nope"),
    ("system", "prune", "--nope"), ("image", "prune", "--nope"),
]] + [
    (("stop", "-t", "soon", GHOST), 125, "'soon' is not a valid integer"),
    (("exec", "-e", "=x", GHOST, "true"), 125, "invalid environment variable: '=x'"),
    (("update", "--memory", "1x", GHOST), 125, "invalid value '1x' for --memory"),
    (("update", "--pids-limit", "x", GHOST), 125, "'x' is not a whole number"),
    (("update", "--cpus", "abc", GHOST), 125, "'abc' is not a number"),
    (("run", "--stop-timeout", "soon", "busybox"), 125, "'soon' is not a valid integer"),
]

USAGE = [  # a wrong number of arguments, an unknown command: 1, as docker's "requires ..."
    (("run",), 1, "Missing argument 'IMAGE'"),
    (("create",), 1, "Missing argument 'IMAGE'"),
    (("inspect",), 1, "Missing argument 'NAMES...'"),
    (("ps", "extra"), 1, "unexpected extra argument (extra)"),
    (("tag", "busybox"), 1, "Missing argument 'TARGET'"),
    (("bogus",), 1, "No such command 'bogus'"),
    (("container", "bogus"), 1, "No such command 'bogus'"),
]

ENGINE = [  # run and create: the engine's own errors keep 125
    (("run", "--rm", NO_IMAGE, "true"), 125, "Unable to find image"),
    (("create", NO_IMAGE), 125, "Unable to find image"),
    (("run", "--rm", "-w", "relative", "busybox", "true"), 125, "absolute path"),
    (("run", "--rm", "-m", "lots", "busybox", "true"), 125, "lots"),
    (("create", "--name", "a b", "busybox"), 125, "Invalid container name"),
    (("run", "--rm", "-w", "/etc/passwd", "busybox", "true"), 126, "not a directory"),
    (("run", "--rm", "--device", "/dev/no-such-device", "busybox", "true"), 125,
     "/dev/no-such-device: No such file or directory (give a device node of this host"),
]

COMMAND = [  # the container's command: 126 cannot run, 127 not found, else its own code
    (("run", "--rm", "busybox", "/no/such/binary"), 127, 'exec: "/no/such/binary"'),
    (("run", "--rm", "busybox", "/etc/passwd"), 126, "/etc/passwd"),
    (("run", "--rm", "busybox", "sh", "-c", "exit 3"), 3, None),
]


@pytest.mark.parametrize(("args", "code", "words"), MISSING + BAD_FLAG + USAGE + ENGINE + COMMAND,
                         ids=lambda value: " ".join(value) if isinstance(value, tuple) else None)
def test_exit_code(md, args, code, words):
    assert_error(md(*args), code, words)


def assert_error(result, code, words):
    """Exit ``code``, and one line that says ``words`` (or the container's silence)."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if lines[:1] == [f"Unable to find image '{NO_IMAGE}' locally"]:
        lines = lines[1:]  # Docker's line before its pull of a missing image
    if words is None:  # the container's own exit: nothing of ours on stderr
        assert lines == []
    elif "Usage:" in result.stderr:  # click's usage block, whose last line names the problem
        assert words in lines[-1], result.stderr
    else:
        assert len(lines) == 1 and lines[0].startswith("minidocker: "), result.stderr
        assert words in lines[0], result.stderr

def test_inspect_type_picks_the_kind_of_object(md):
    """A volume named as an image: ``inspect`` finds the image, ``--type volume`` the volume;
    a volume no image could be named as (capitals) is found without ``--type``."""
    assert md("volume", "create", "busybox").returncode == 0
    assert md("volume", "create", "ExitCodesData").returncode == 0
    try:
        assert md("inspect", "-f", "{{.Os}}", "busybox").stdout == "linux\n"
        typed = md("inspect", "--type", "volume", "-f", "{{.Name}} {{.Driver}}", "busybox")
        assert typed.stdout == "busybox local\n"
        assert md("inspect", "--type", "image", "-f", "{{.Os}}", "busybox").stdout == "linux\n"
        found = md("inspect", "-f", "{{.Name}}", "ExitCodesData")
        assert found.stdout == "ExitCodesData\n", found.stderr
        assert_error(md("inspect", "No-Such"), 1, "No such object: No-Such")
    finally:
        md("volume", "rm", "busybox", "ExitCodesData")


def test_rm_of_a_running_container_and_rmi_of_a_used_image_exit_1(md, containers):
    name = containers.run_d("busybox", "sleep", "60")
    refused = md("rm", name)
    assert refused.returncode == 1 and "Stop it first" in refused.stderr
    assert md("commit", name, "exit-codes:1").returncode == 0  # an image of its own
    containers.images.append("exit-codes:1")
    user = containers.name()
    assert md("create", "--name", user, "exit-codes:1", "true").returncode == 0
    used = md("rmi", "exit-codes:1")
    assert used.returncode == 1 and "is using its referenced image" in used.stderr


def test_start_attached_and_wait_give_the_containers_code(md, containers):
    name = containers.name()
    assert md("create", "--name", name, "busybox", "sh", "-c", "exit 7").returncode == 0
    assert md("start", "-a", name).returncode == 7
    waited = md("wait", name)
    assert waited.returncode == 0 and waited.stdout == "7\n"


def test_stop_of_a_stopped_container_is_no_error(md, containers):
    name = containers.name()
    assert md("create", "--name", name, "busybox", "true").returncode == 0
    done = md("stop", name)
    assert done.returncode == 0 and done.stdout == f"{name}\n"


def test_load_of_a_file_that_is_not_a_tar(md, tmp_path):
    (tmp_path / "notes.tar").write_text("not a tar\n")
    assert_error(md("load", "-i", str(tmp_path / "notes.tar")), 1,
                 "is not an image archive: it is not a tar")


def test_mistakes_with_a_running_container(md, containers):
    """Each a one-line error, stdin a pipe (never a terminal) as in a script."""
    name = containers.run_d("-i", "-t", "busybox", "sh")
    mistakes = [
        (("exec", "-w", "relative", name, "true"), 1, "needs to be an absolute path"),
        (("exec", "-w", "/no/such", name, "true"), 126, "/no/such: No such file or directory"),
        (("exec", "-u", "nobody-here", name, "true"), 126, "unable to find user nobody-here"),
        (("exec", "-it", name, "true"), 1, "the input device is not a TTY: drop -t"),
        (("attach", name), 1, "the input device is not a TTY: use --no-stdin"),
        (("run", "-it", "--rm", "busybox", "true"), 1, "the input device is not a TTY"),
        (("rename", name, name), 1, "with the same name as its current name"),
        (("top", name, "-o", "nope"), 1, "ps failed: error: unknown user-defined format"),
    ]
    for args, code, words in mistakes:
        assert_error(md(*args, input=""), code, words)
