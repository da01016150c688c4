"""``minidocker build``: the step loop on the real engine, the cache, the context, multi-stage,
ONBUILD, and what a bad build leaves (nothing). Each build runs the real CLI, so the RUN steps
are real containers; the tests look at what the built image's containers see."""

import functools
import hashlib
import http.server
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from minidocker.build.cache import files_checksum, step_key
from minidocker.build.commands import Run
from minidocker.build.context import Ignore, clean, included_paths
from minidocker.build.filecopy import resolve_in_root
from minidocker.build.parser import Heredoc
from minidocker.build.runstep import run_command
from minidocker.state import state_root

MINIDOCKER = [sys.executable, "-m", "minidocker.cli"]


@pytest.fixture
def builds(md):
    """Runs ``build`` (with ``--network none``: no bridge needed) and cleans up after the test:
    its tags, then the build cache."""
    made: list[str] = []

    def build(context: Path, *args: str, input: str | None = None):
        for i, arg in enumerate(args):
            if arg == "-t":
                made.append(args[i + 1])
        return md("build", "--network", "none", *args, str(context), input=input,
                  timeout=120)

    yield build
    if made:
        md("rmi", "-f", *made)
    md("builder", "prune", "-f")


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return folder


def steps(output: str) -> list[str]:
    """'run' or 'cache' for each step that did work, in order (FROM lines excluded)."""
    found = []
    for block in re.split(r"^Step \d+/\d+ : ", output, flags=re.M)[1:]:
        if block.startswith("FROM") or "--->" not in block:
            continue
        found.append("cache" if "---> Using cache" in block else "run")
    return found


SIMPLE = """\
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY greeting.txt .
RUN echo "$GREETING from $(pwd) as $(id -u)" > made.txt && cat greeting.txt
CMD ["cat", "/app/made.txt"]
"""


def test_a_build_makes_an_image_that_runs(builds, md, tmp_path):
    context = write(tmp_path, {"Dockerfile": SIMPLE, "greeting.txt": "from the context\n"})
    result = builds(context, "-t", "simple:1", "-t", "simple:2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Sending build context to Docker daemon")
    assert "Step 1/6 : FROM busybox" in out and "Step 5/6 : RUN echo" in out
    running = re.search(r"---> Running in ([0-9a-f]{12})\nfrom the context\n", out)
    assert running, out  # the RUN's own output, streamed
    assert f"Removing intermediate container {running.group(1)}" in out
    image_id = re.search(r"Successfully built ([0-9a-f]{12})", out).group(1)
    assert "Successfully tagged simple:1" in out and "Successfully tagged simple:2" in out
    assert md("run", "--rm", "simple:2").stdout == "hello from /app as 0\n"
    assert image_id in md("images").stdout
    listed = md("images", "--format", "{{.Repository}}").stdout.split()
    assert "<none>" not in listed  # the steps' images are intermediate: only -a shows them
    assert "<none>" in md("images", "-a", "--format", "{{.Repository}}").stdout.split()
    history = md("history", "--format", "{{.CreatedBy}}", "simple:1").stdout.splitlines()
    assert history[0].startswith("/bin/sh -c #(nop) CMD")
    assert history[1].startswith("/bin/sh -c echo")
    assert md("ps", "-aq").stdout == ""  # every intermediate container is gone


def test_a_second_build_only_uses_the_cache(builds, md, tmp_path):
    context = write(tmp_path, {"Dockerfile": SIMPLE, "greeting.txt": "hi\n"})
    first = builds(context, "-t", "cached")
    assert first.returncode == 0, first.stderr
    blobs = set(os.listdir(state_root() / "oci" / "blobs" / "sha256"))
    containers = (state_root() / "containers").stat().st_mtime_ns
    cache_file = (state_root() / "build-cache.json").stat().st_mtime_ns
    second = builds(context, "-t", "cached")
    assert second.returncode == 0, second.stderr
    assert steps(second.stdout) == ["cache"] * 5
    assert "Running in" not in second.stdout
    assert set(os.listdir(state_root() / "oci" / "blobs" / "sha256")) == blobs  # nothing new
    assert (state_root() / "containers").stat().st_mtime_ns == containers  # no container made
    assert (state_root() / "build-cache.json").stat().st_mtime_ns == cache_file  # no key added
    last = re.findall(r"Successfully built (\w+)", first.stdout + second.stdout)
    assert last[0] == last[1]
    live = builds(context, "--progress", "tty").stdout  # the live table, drawn once off a tty
    assert live.count("CACHED") == 5 and f"\nSuccessfully built {last[0]}\n" in live
    assert steps(builds(context, "--no-cache", "-t", "cached").stdout) == ["run"] * 5


def test_run_steps_have_the_default_bridge_unless_told(builds, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN ip -4 -o addr show eth0\n"})
    bridged = builds(context, "--network", "default", "--no-cache")
    assert bridged.returncode == 0 and " eth0 " in bridged.stdout, bridged.stderr
    assert builds(context, "--no-cache").returncode == 1  # --network none: no eth0


def test_a_changed_file_invalidates_its_step_and_the_ones_after(builds, md, tmp_path):
    dockerfile = "FROM busybox\nCOPY a.txt /a\nCOPY b.txt /b\nRUN cat /a /b\nENV DONE=1\n"
    context = write(tmp_path, {"Dockerfile": dockerfile, "a.txt": "a\n", "b.txt": "b\n"})
    first = builds(context).stdout
    assert steps(first) == ["run"] * 4
    result = re.search(r"Successfully built (\w+)", first).group(1)
    assert result in md("images", "-q").stdout  # untagged, a build's result: <none>, listed
    os.utime(context / "a.txt", (1, 1))  # a new mtime is no change
    assert steps(builds(context).stdout) == ["cache"] * 4
    (context / "b.txt").write_text("B\n")
    assert steps(builds(context).stdout) == ["cache", "run", "run", "run"]
    (context / "b.txt").chmod(0o600)  # the mode is part of the checksum
    assert steps(builds(context).stdout) == ["cache", "run", "run", "run"]


def test_build_args_are_in_the_key_only_where_used(builds, tmp_path):
    dockerfile = "FROM busybox\nARG A=1\nARG B=1\nENV X=$A\nRUN echo B=$B\n"
    context = write(tmp_path, {"Dockerfile": dockerfile})
    first = builds(context, "--build-arg", "B=2", "--build-arg", "NOPE=1")
    assert "B=2" in first.stdout and "build-args ['NOPE'] were not consumed" in first.stdout
    again = builds(context, "--build-arg", "B=3")
    assert steps(again.stdout) == ["cache", "cache", "cache", "run"]  # only the RUN sees B


DOCKERIGNORE = """\
# build outputs
**/*.log
*.env
node_modules
!node_modules/keep
"""


def test_dockerignore_leaves_files_out_of_the_context(builds, md, tmp_path):
    context = write(tmp_path, {
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort\n",
        ".dockerignore": DOCKERIGNORE, "app.py": "", "a.log": "", "deep/er/b.log": "",
        "deep/er/c.txt": "", "secret.env": "", "deep/keep.env": "",
        "node_modules/x.js": "", "node_modules/keep/k.js": ""})
    result = builds(context)
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("Running in")[1].splitlines()[1:]
    listed = listed[:listed.index(next(line for line in listed if "Removing" in line))]
    assert listed == ["./.dockerignore", "./Dockerfile", "./app.py", "./deep/er/c.txt",
                      "./deep/keep.env", "./node_modules/keep/k.js"]
    (context / "a.log").write_text("an ignored file changed")
    assert steps(builds(context).stdout) == ["cache", "cache"]  # the context is the same
    (context / "Dockerfile").write_text("FROM busybox\nCOPY secret.env /\n")
    refused = builds(context)
    assert refused.returncode == 1
    assert refused.stderr == ("minidocker: Dockerfile:2: step 2/2 (COPY): COPY failed: file "
                              "excluded by .dockerignore (line 3: *.env): stat secret.env: "
                              "file does not exist\n")
    (context / "Dockerfile").write_text("FROM busybox\nCOPY missing.txt /\n")
    assert "file not found in build context: stat missing.txt" in builds(context).stderr


MULTI_STAGE = """\
ARG BASE=busybox
FROM $BASE AS base
RUN echo base > /base.txt

FROM base AS build
ARG VERSION=0
RUN mkdir /out && echo "v$VERSION" > /out/app && cat /base.txt >> /out/app

FROM busybox AS test
RUN echo testing && false

FROM busybox
COPY --from=build /out/app /usr/local/bin/
COPY --from=1 /base.txt /from-index.txt
CMD ["cat", "/usr/local/bin/app", "/from-index.txt"]
"""


def test_multi_stage_copies_from_a_stage_and_skips_what_the_target_does_not_need(
        builds, md, tmp_path):
    context = write(tmp_path, {"Dockerfile": MULTI_STAGE})
    result = builds(context, "-t", "multi", "--build-arg", "VERSION=7")
    assert result.returncode == 0, result.stderr
    assert "Skipping stage 2 (test): not needed for the target 3" in result.stdout
    assert "testing" not in result.stdout
    assert md("run", "--rm", "multi").stdout == "v7\nbase\nbase\n"
    assert md("run", "--rm", "multi", "ls", "/out").returncode != 0  # only what was copied
    target = builds(context, "--target", "build", "-t", "multi-build")
    assert "Skipping stage 3" in target.stdout and "Skipping stage 2" in target.stdout
    assert md("run", "--rm", "multi-build", "cat", "/out/app").stdout == "v0\nbase\n"
    missing = builds(context, "--target", "nope")
    assert missing.returncode == 1 and "failed to reach build target nope" in missing.stderr


def test_onbuild_triggers_run_in_the_child_build(builds, md, tmp_path):
    parent = write(tmp_path / "parent", {"Dockerfile": (
        "FROM busybox\nONBUILD COPY msg.txt /msg.txt\nONBUILD RUN echo triggered >> /msg.txt\n")})
    assert builds(parent, "-t", "onbuild-parent").returncode == 0
    assert md("run", "--rm", "onbuild-parent", "ls", "/msg.txt").returncode != 0
    child = write(tmp_path / "child", {"Dockerfile": "FROM onbuild-parent\nCMD cat /msg.txt\n",
                                       "msg.txt": "from the child\n"})
    result = builds(child, "-t", "onbuild-child")
    assert result.returncode == 0, result.stderr
    assert "# Executing 2 build triggers" in result.stdout
    assert md("run", "--rm", "onbuild-child").stdout == "from the child\ntriggered\n"
    config = json.loads(md("inspect", "onbuild-child").stdout)[0]["Config"]
    assert not config.get("OnBuild")  # a grandchild does not run them again


HEREDOCS = """\
FROM busybox
RUN <<EOF
echo plain heredoc
echo two lines > /plain.txt
EOF
RUN cat <<EOF > /within.txt
written by cat
EOF
RUN <<EOF
#!/bin/sh -e
echo "a script for its interpreter: $0"
EOF
COPY <<EOF /inline.txt
an inline file
EOF
"""


def test_heredocs_run_as_scripts_and_copy_as_files(builds, md, tmp_path):
    context = write(tmp_path, {"Dockerfile": HEREDOCS})
    result = builds(context, "-t", "heredoc")
    assert result.returncode == 0, result.stderr
    assert "plain heredoc" in result.stdout
    assert "a script for its interpreter: /dev/stdin" in result.stdout
    shown = md("run", "--rm", "heredoc", "cat", "/plain.txt", "/within.txt", "/inline.txt")
    assert shown.stdout == "two lines\nwritten by cat\nan inline file\n"


def test_add_unpacks_a_local_archive_and_copy_does_not(builds, md, tmp_path):
    for compression in ("gz", "bz2", "xz"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
            data = f"inside the {compression} archive\n".encode()
            info = tarfile.TarInfo(f"{compression}/readme.txt")
            info.size, info.uid, info.mode = len(data), 42, 0o640
            tar.addfile(info, io.BytesIO(data))
        (tmp_path / f"pkg.tar.{compression}").write_bytes(buffer.getvalue())
    write(tmp_path, {"Dockerfile": "FROM busybox\nADD pkg.tar.gz pkg.tar.bz2 pkg.tar.xz /opt/\n"
                                   "COPY pkg.tar.gz /raw/\n"})
    assert builds(tmp_path, "-t", "added").returncode == 0
    listing = md("run", "--rm", "added", "ls", "-ln", "/opt/gz/readme.txt", "/raw").stdout
    assert "-rw-r-----    1 42" in listing and "pkg.tar.gz" in listing
    shown = md("run", "--rm", "added", "cat", "/opt/bz2/readme.txt", "/opt/xz/readme.txt")
    assert shown.stdout == "inside the bz2 archive\ninside the xz archive\n"



def test_add_downloads_a_url(builds, md, tmp_path):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "tool.tar.gz").write_bytes(b"not unpacked\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "served"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/tool.tar.gz"
        digest = "sha256:" + hashlib.sha256(b"not unpacked\n").hexdigest()
        context = write(tmp_path / "context", {"Dockerfile": (
            f"FROM busybox\nADD --checksum={digest} {url} /dl/\nADD {url} /named\n")})
        result = builds(context, "-t", "downloaded")
        assert result.returncode == 0, result.stderr
        shown = md("run", "--rm", "downloaded", "sh", "-c",
                   "stat -c '%a %n' /dl/tool.tar.gz /named && cat /named")
        assert shown.stdout == "600 /dl/tool.tar.gz\n600 /named\nnot unpacked\n"
        (context / "Dockerfile").write_text(f"FROM busybox\nADD --checksum=sha256:{'0' * 64} "
                                            f"{url} /dl/\n")
        assert "the content's digest is" in builds(context).stderr
        server.shutdown()


INTERPLAY = """\
FROM busybox
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /home/app \\
    && chown 1234 /home/app
ENV WHERE=/home/app
USER app
WORKDIR $WHERE
WORKDIR sub
SHELL ["/bin/sh", "-e", "-c"]
ENV WHO=app
RUN echo "$(id -u) in $(pwd) as $WHO" && touch ../mine && ls -ln ../mine | cut -c1-35
COPY --chown=app:0 --chmod=640 f.txt ./
USER root
RUN ls -ln /home/app/sub/f.txt | cut -c1-35
"""


def test_user_workdir_env_and_shell_change_the_later_runs(builds, md, tmp_path):
    context = write(tmp_path, {"Dockerfile": INTERPLAY, "f.txt": "f\n"})
    result = builds(context, "-t", "interplay")
    assert result.returncode == 0, result.stderr
    assert "1234 in /home/app/sub as app\n-rw-r--r--    1 1234     1234" in result.stdout
    assert "-rw-r-----    1 1234     0" in result.stdout
    config = json.loads(md("inspect", "interplay").stdout)[0]["Config"]
    assert config["WorkingDir"] == "/home/app/sub" and config["User"] == "root"
    assert config["Shell"] == ["/bin/sh", "-e", "-c"]


def test_a_failed_run_leaves_nothing_behind(builds, md, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo ok\n"})
    assert builds(context, "-t", "keep:me").returncode == 0
    before = json.loads(md("inspect", "keep:me").stdout)[0]["Id"]
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo ok\nRUN false\nRUN echo never\n")
    failed = builds(context, "-t", "keep:me")
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1] == (
        "minidocker: Dockerfile:3: step 3/4 (RUN): The command '/bin/sh -c false' returned a "
        "non-zero code: 1")
    assert "never" not in failed.stdout
    assert json.loads(md("inspect", "keep:me").stdout)[0]["Id"] == before  # tag not moved
    assert md("ps", "-aq").stdout == ""
    kept = builds(context, "--rm=false")
    assert kept.returncode == 1 and len(md("ps", "-aq").stdout.split()) == 1
    md("rm", "-f", *md("ps", "-aq").stdout.split())


def test_from_scratch_holds_only_what_was_copied(builds, md, tmp_path):
    dockerfile = ("FROM busybox AS tools\nRUN mkdir /out && echo x > /out/x\n"
                  "FROM scratch\nCOPY --from=tools /out/x /bin/busybox /\nCMD [\"/busybox\"]\n")
    assert builds(write(tmp_path, {"Dockerfile": dockerfile}), "-t", "tiny").returncode == 0
    container = md("create", "tiny").stdout.strip()
    exported = subprocess.run([*MINIDOCKER, "export", container], capture_output=True)
    md("rm", container)
    names = tarfile.open(fileobj=io.BytesIO(exported.stdout)).getnames()
    assert sorted(n.strip("./") for n in names if n.strip("./")) == ["busybox", "x"]


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_build_leaves_a_store_that_works(builds, md, tmp_path, signal_number):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo started && sleep 60\n"})
    build = subprocess.Popen([*MINIDOCKER, "build", "--network", "none", "-t", "cut",
                              str(context)], stdout=subprocess.PIPE, text=True)
    while "started" not in build.stdout.readline():
        pass
    build.send_signal(signal_number)
    assert build.wait(timeout=90) != 0
    build.stdout.close()
    assert md("images").returncode == 0 and "cut" not in md("images").stdout
    leftover = md("ps", "-aq").stdout.split()  # Ctrl-C: none; kill -9: at most an exited one
    assert len(leftover) <= (0 if signal_number == signal.SIGINT else 1)
    if leftover:
        assert "Up" not in md("ps", "-a").stdout
        md("rm", *leftover)
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo again > /again\n")
    assert builds(context, "-t", "cut").returncode == 0
    assert md("run", "--rm", "cut", "cat", "/again").stdout == "again\n"


@pytest.mark.parametrize("dockerfile, message", [
    ("FROM busybox\nRUNN echo\n", "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"),
    ("FROM nosuchimage\n", "Dockerfile:1: FROM nosuchimage: Unable to find image"),
    ("FROM busybox\nCOPY a b c\n", "Dockerfile:2: step 2/2 (COPY): When using COPY with more"),
])
def test_a_bad_dockerfile_is_one_line_naming_file_and_line(builds, tmp_path, dockerfile,
                                                            message):
    result = builds(write(tmp_path, {"Dockerfile": dockerfile, "a": "", "b": ""}))
    assert result.returncode == 1
    assert result.stderr.startswith(f"minidocker: {message}"), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_stdin_quiet_iidfile_labels_and_prune(builds, md, tmp_path):
    iid = tmp_path / "iid"
    dockerfile = "FROM busybox\nLABEL a=1\nRUN echo hidden\n"
    quiet = md("build", "-q", "--network", "none", "--label", "b=2", "--iidfile", str(iid),
               "-t", "quiet", "-", input=dockerfile)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == f"{iid.read_text()}\n" and "hidden" not in quiet.stdout
    labels = json.loads(md("inspect", "quiet").stdout)[0]["Config"]["Labels"]
    assert labels == {"a": "1", "b": "2"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("other.Dockerfile", b"FROM busybox\nCOPY f.txt /\n"),
                           ("f.txt", b"from a tar\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    from_tar = subprocess.run([*MINIDOCKER, "build", "--network", "none", "-f",
                               "other.Dockerfile", "-t", "fromtar", "-"],
                              input=buffer.getvalue(), capture_output=True, timeout=120)
    assert from_tar.returncode == 0, from_tar.stderr
    assert md("run", "--rm", "fromtar", "cat", "/f.txt").stdout == "from a tar\n"
    md("rmi", "fromtar")  # and its untagged parent steps
    md("rmi", "--no-prune", "quiet")  # its steps stay: the build cache's to delete
    assert "Deleted build cache objects" in md("builder", "prune", "-f").stdout
    left = md("images", "-a", "-q").stdout.split()
    assert len(left) == 1, [md("history", i).stdout + md("history", i).stderr for i in left]  # busybox alone


def test_dockerfile_from_stdin_with_a_context_directory(builds, md, tmp_path):
    context = write(tmp_path, {"f.txt": "from the directory\n"})
    result = builds(context, "-f", "-", "-t", "stdinfile",
                    input="FROM busybox\nCOPY f.txt /\n")
    assert result.returncode == 0, result.stderr
    assert md("run", "--rm", "stdinfile", "cat", "/f.txt").stdout == "from the directory\n"


def test_from_pulls_a_missing_image_and_pull_pulls_a_present_one(builds, md, tmp_path):
    from tests.registry_helpers import minidocker_registry

    server = minidocker_registry(tmp_path / "storage", tmp_path / "serve.log")
    base = f"{server.host}/base:1"
    try:
        md("tag", "busybox", base)
        assert md("push", base).returncode == 0
        md("rmi", base)
        context = write(tmp_path / "ctx", {"Dockerfile": f"FROM {base}\nRUN true\n"})
        first = builds(context)
        assert first.returncode == 0, first.stderr
        assert f"Unable to find image '{base}' locally" in first.stdout  # missing: pulled
        again = builds(context)
        assert "Pull" not in again.stdout and steps(again.stdout) == ["cache"]
        pulled = builds(context, "--pull")
        assert pulled.returncode == 0, pulled.stderr
        assert "Unable to find" not in pulled.stdout and f"Status: Image is up to date for " \
            f"{base}" in pulled.stdout  # present, yet the registry was asked
    finally:
        server.stop()
        md("rmi", "-f", base)


# --- the pieces, without the engine ---------------------------------------------------------------

@pytest.mark.parametrize("pattern, path, matches", [
    ("*.log", "a.log", True), ("*.log", "d/a.log", False), ("**/*.log", "d/e/a.log", True),
    ("**/*.log", "a.log", True), ("d/**", "d/e/f", True), ("d/**/f", "d/f", True),
    ("a?c", "abc", True), ("a?c", "a/c", False), ("[a-c]x", "bx", True),
    ("[^a-c]x", "bx", False), ("\\*x", "*x", True), ("/abs/../d", "d", True),
])
def test_dockerignore_patterns_follow_go_filepath_match(pattern, path, matches):
    assert (Ignore.parse(pattern).excluded(path) is not None) == matches


def test_the_last_matching_dockerignore_line_wins(tmp_path):
    ignore = Ignore.parse("docs\n!docs/keep.md\n*.md\n!README.md\n")
    assert [p for p in ("docs/a.txt", "docs/keep.md", "x.md", "README.md")
            if ignore.excluded(p)] == ["docs/a.txt", "x.md"]  # "*" stays in one directory
    write(tmp_path, {"docs/a.txt": "", "docs/keep.md": "", "README.md": "", "x.md": ""})
    assert included_paths(tmp_path, ignore) == ["README.md", "docs/keep.md"]
    assert clean("./a//b/../c/") == "a/c"


def test_the_cache_key_and_the_files_checksum(tmp_path):
    write(tmp_path, {"src/a": "1", "src/b": "2"})
    first = files_checksum(tmp_path, ["src"])
    os.utime(tmp_path / "src" / "a", (5, 5))
    assert files_checksum(tmp_path, ["src"]) == first  # mtime excluded
    assert files_checksum(tmp_path / "src", ["."]) == files_checksum(tmp_path / "src", ["."])
    (tmp_path / "src" / "b").write_text("3")
    assert files_checksum(tmp_path, ["src"]) != first
    assert step_key("p", "RUN x", {"A": "1"}) != step_key("p", "RUN x", {"A": "2"})
    assert step_key("p", "RUN x", {}) != step_key("q", "RUN x", {})


def test_run_forms_and_heredocs():
    shell = ["/bin/sh", "-c"]
    assert run_command(Run(("echo hi",)), shell) == (["/bin/sh", "-c", "echo hi"], "")
    assert run_command(Run(("echo", "hi"), shell_form=False), shell) == (["echo", "hi"], "")
    only = Run(("<<EOF",), heredocs=(Heredoc("EOF", "echo a\n"),))
    assert run_command(only, shell) == (["/bin/sh", "-c", "echo a\n"], "")
    script = Run(("<<EOF",), heredocs=(Heredoc("EOF", "#!/usr/bin/env python3\nprint(1)\n"),))
    assert run_command(script, shell) == (["/usr/bin/env", "python3", "/dev/stdin"],
                                          "#!/usr/bin/env python3\nprint(1)\n")
    inner = Run(("cat <<EOF > /x",), heredocs=(Heredoc("EOF", "a\n"),))
    assert run_command(inner, shell) == (["/bin/sh", "-c", "cat <<EOF > /x\na\nEOF"], "")


def test_paths_resolve_inside_the_root(tmp_path):
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "escape").symlink_to("/../../etc")
    (tmp_path / "up").symlink_to("../../..")
    assert resolve_in_root(tmp_path, "/bin/x") == tmp_path / "usr" / "bin" / "x"
    assert resolve_in_root(tmp_path, "escape/passwd") == tmp_path / "etc" / "passwd"
    assert resolve_in_root(tmp_path, "up/up/x") == tmp_path / "x"
    assert resolve_in_root(tmp_path, "bin", follow_last=False) == tmp_path / "bin"
