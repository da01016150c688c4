"""The same Dockerfiles built by minidocker and by buildah give the same image.

buildah (Debian's, 1.28) is a second builder that follows Docker's rules. Each case is built
by both; both images are written as a docker-archive (``minidocker save``, ``buildah push
docker-archive:``) and read back by one function here, which applies the layers in order
(whiteouts included) into a tree: path -> type, mode, owner, link target, content. The trees
and the configs (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels,
StopSignal, Healthcheck) must be equal, except for the differences listed in ``CHOICES``,
each a choice one of the two builders makes, with its reason.

buildah runs as INTEROP.md says: ``--isolation chroot --network host`` inside the tests' own
network namespace, its storage in a private ``--root`` (vfs driver), the base image loaded
from ``minidocker save`` and named docker.io/library/busybox, ``--pull=never``.
"""

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

MINIDOCKER = [sys.executable, "-m", "minidocker.cli"]
pytestmark = pytest.mark.skipif(shutil.which("buildah") is None,
                                reason="buildah is not installed (apt-get install buildah)")

CASES = {
    "single": ({"Dockerfile": """\
FROM busybox
LABEL org.example.kind=single
ENV APP=/srv/app PORT=8080
WORKDIR $APP
COPY app.sh config/ ./
RUN chmod 755 app.sh && echo "built" > built.txt && ln -s built.txt latest
EXPOSE $PORT 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=2 CMD ["./app.sh", "check"]
ENTRYPOINT ["/bin/sh"]
CMD ["./app.sh"]
""", "app.sh": "#!/bin/sh\necho app\n", "config/a.conf": "a=1\n", "config/sub/b.conf": "b\n"},
        None),
    "multistage": ({"Dockerfile": """\
FROM busybox AS build
RUN mkdir -p /out/bin && echo tool > /out/bin/tool && chmod 700 /out/bin/tool
FROM busybox AS unused
RUN touch /never
FROM busybox
COPY --from=build /out/ /opt/
CMD ["/opt/bin/tool"]
"""}, None),
    "onbuild": ({"Dockerfile": """\
FROM onbuild-parent
RUN cat /payload.txt > /seen.txt
"""}, {"Dockerfile": """\
FROM busybox
ONBUILD COPY payload.txt /payload.txt
ONBUILD RUN echo trigger >> /payload.txt
""", "payload.txt": "from the child's context\n"}),
    "archive": ({"Dockerfile": "FROM busybox\nADD pkg.tar.gz /opt/\nCOPY pkg.tar.gz /raw/\n"},
                None),
    "interplay": ({"Dockerfile": """\
FROM busybox
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd \\
    && echo 'app:x:1234:' >> /etc/group && mkdir -p /home/app && chown app:app /home/app
USER app
ENV HOME=/home/app
WORKDIR /home/app
RUN echo "$(id -u):$(id -g) $(pwd) $HOME" > who.txt && mkdir cache
COPY --chown=app:app f.txt ./
USER root
""", "f.txt": "owned\n"}, None),
    "whiteouts": ({"Dockerfile": """\
FROM busybox
RUN mkdir -p /d/keep /d/gone && touch /d/keep/x /d/gone/y /d/z
RUN rm -rf /d/gone /d/z /usr/sbin/telnetd && echo new > /d/keep/x
"""}, None),
}

# Docker-vs-buildah choices: paths or config fields that differ, and why
CHOICES = {
    "Labels io.buildah.version": "buildah labels every image with its own version",
    "heredocs": "buildah 1.28 has no heredoc support (BuildKit's syntax; buildah 1.33+ has "
                "it), so the heredoc case is built by minidocker only (test_build.py)",
    "mtimes": "directory mtimes depend on when each builder wrote them: not compared",
    "/run": "buildah's RUN mounts a tmpfs on /run and leaves the mount point in the layer "
            "(the busybox image has no /run); Docker and minidocker mount nothing there",
}
BUILDAH_MOUNT_POINTS = {"/run"}  # in buildah's tree only, see CHOICES


def archive_for_add(context: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"packed\n"
        info = tarfile.TarInfo("pkg/readme.txt")
        info.size, info.uid, info.gid, info.mode = len(data), 42, 43, 0o640
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/link")
        link.type, link.linkname = tarfile.SYMTYPE, "readme.txt"
        tar.addfile(link)
    (context / "pkg.tar.gz").write_bytes(buffer.getvalue())


def write_context(folder: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    archive_for_add(folder)
    return folder


def image_of(archive: Path) -> tuple[dict, dict]:
    """(tree, config) of a docker-archive: the layers applied in order, whiteouts too."""
    tree: dict[str, tuple] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read()),
                              mode="r:*") as tar:
                apply_layer(tree, tar)
    return tree, config.get("config") or {}


def apply_layer(tree: dict, tar: tarfile.TarFile) -> None:
    for member in tar:
        path = "/" + member.name.strip("./").strip("/") if member.name.strip("./") else "/"
        folder, _, name = path.rpartition("/")
        if name == ".wh..wh..opq":
            for other in [p for p in tree if p.startswith(folder + "/")]:
                del tree[other]
            continue
        if name.startswith(".wh."):
            gone = f"{folder}/{name[4:]}"
            for other in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                del tree[other]
            continue
        content = hashlib.sha256(tar.extractfile(member).read()).hexdigest()[:12] \
            if member.isreg() else ""
        if member.islnk():  # a hard link: the same content as its target
            content = tree.get("/" + member.linkname.strip("./"), ("",) * 6)[5]
            kind = "file"
        else:
            kind = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink"}.get(member.type, "file")
        tree[path] = (kind, oct(member.mode & 0o7777), member.uid, member.gid,
                      member.linkname if member.issym() else "", content)


def compared(config: dict) -> dict:
    fields = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
              "Labels", "StopSignal", "Healthcheck")
    picked = {name: config.get(name) or None for name in fields}
    if picked["Labels"]:
        picked["Labels"] = {k: v for k, v in picked["Labels"].items()
                            if k != "io.buildah.version"} or None
    return picked


@pytest.fixture(scope="module")
def buildah(tmp_path_factory):
    """``buildah`` with private storage, busybox loaded from minidocker."""
    where = tmp_path_factory.mktemp("buildah")
    base = ["buildah", "--root", str(where / "root"), "--runroot", str(where / "run"),
            "--storage-driver", "vfs"]
    subprocess.run([*MINIDOCKER, "save", "-o", str(where / "busybox.tar"), "busybox"],
                   check=True)
    image = subprocess.run([*base, "pull", "-q", f"docker-archive:{where / 'busybox.tar'}"],
                           check=True, capture_output=True, text=True).stdout.split()[-1]
    subprocess.run([*base, "tag", image, "docker.io/library/busybox:latest"], check=True)
    yield base, where
    subprocess.run([*base, "rm", "--all"], capture_output=True)
    subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True)
    subprocess.run(["umount", "-R", str(where / "root")], capture_output=True)
    shutil.rmtree(where, ignore_errors=True)


def build_both(buildah, context: Path, name: str) -> tuple[tuple, tuple]:
    base, where = buildah
    ours = subprocess.run([*MINIDOCKER, "build", "--network", "none", "-q", "-t", name,
                           str(context)], capture_output=True, text=True, timeout=180)
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([*base, "bud", "--isolation", "chroot", "--network", "host",
                             "--format", "docker", "--pull=never", "--layers", "-q", "-t", name,
                             str(context)], capture_output=True, text=True, timeout=300)
    assert theirs.returncode == 0, theirs.stderr
    subprocess.run([*MINIDOCKER, "save", "-o", str(where / f"{name}.md.tar"), name], check=True)
    subprocess.run([*base, "push", "-q", name, f"docker-archive:{where / name}.bh.tar:{name}"],
                   check=True, capture_output=True)
    return image_of(where / f"{name}.md.tar"), image_of(where / f"{name}.bh.tar")


@pytest.mark.parametrize("case", sorted(CASES))
def test_minidocker_and_buildah_build_the_same_image(buildah, tmp_path, case):
    files, parent = CASES[case]
    made = []
    if parent:
        build_both(buildah, write_context(tmp_path / "parent", parent), "onbuild-parent")
        made.append("onbuild-parent")
        files = {**files, "payload.txt": parent["payload.txt"]}
    (our_tree, our_config), (their_tree, their_config) = build_both(
        buildah, write_context(tmp_path / "child", files), f"interop-{case}")
    made.append(f"interop-{case}")
    try:
        differ = {path: (our_tree.get(path), their_tree.get(path))
                  for path in sorted(set(our_tree) | set(their_tree))
                  if our_tree.get(path) != their_tree.get(path)
                  and not (path in BUILDAH_MOUNT_POINTS and path not in our_tree)}
        assert differ == {}
        assert compared(our_config) == compared(their_config)
        assert len(our_tree) > 100 and our_config.get("Cmd")  # a whole busybox, a command
        if case == "single":
            assert our_tree["/srv/app/latest"][:5] == ("symlink", "0o777", 0, 0, "built.txt")
            assert our_config["Healthcheck"]["Retries"] == 2
    finally:
        subprocess.run([*MINIDOCKER, "rmi", "-f", *made], capture_output=True)


@pytest.mark.skipif(shutil.which("podman") is None or shutil.which("runc") is None,
                    reason="podman and runc are not installed")
def test_an_image_minidocker_built_runs_under_podman(tmp_path):
    context = write_context(tmp_path / "context", CASES["single"][0])
    built = subprocess.run([*MINIDOCKER, "build", "--network", "none", "-q", "-t",
                            "for-podman", str(context)], capture_output=True, text=True,
                           timeout=180)
    assert built.returncode == 0, built.stderr
    subprocess.run([*MINIDOCKER, "save", "-o", str(tmp_path / "image.tar"), "for-podman"],
                   check=True)
    runroot = tempfile.mkdtemp(prefix="podman-")  # podman wants a runroot of < 50 chars
    podman = ["podman", "--root", str(tmp_path / "root"), "--runroot", runroot,
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", "runc"]
    try:
        loaded = subprocess.run([*podman, "load", "-q", "-i", str(tmp_path / "image.tar")],
                                capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        # INTEROP.md: this sandbox refuses podman's default rlimits
        ran = subprocess.run([*podman, "run", "--rm", "--network", "none", "--ulimit",
                              "nofile=1024:1024", "--ulimit", "nproc=1000:1000", "for-podman"],
                             capture_output=True, text=True, timeout=120)
        assert (ran.returncode, ran.stdout) == (0, "app\n"), ran.stderr
    finally:
        subprocess.run([*podman, "rmi", "--all", "--force"], capture_output=True)
        subprocess.run([*MINIDOCKER, "rmi", "-f", "for-podman"], capture_output=True)
        subprocess.run(["umount", "-R", runroot], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)
