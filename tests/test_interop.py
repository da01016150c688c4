"""The real peers read what minidocker writes, and minidocker reads what they write.

skopeo inspects and copies a saved archive (read as an OCI archive and as a docker-archive) and
the store's own OCI layout; umoci unpacks an image straight from the store to the very files
``minidocker export`` gives, and repacks a change that ``minidocker load`` takes back; podman
loads and runs what ``minidocker save`` wrote, and what ``podman save`` writes (both formats,
and a multi-platform index) loads and runs here. A test whose tool is missing is skipped.

Keeping the host clean. Whatever their flags say, these tools write a few paths on the host:
containers/image's blob-info cache (``/var/lib/containers/cache``) and short-name aliases
(``/var/cache/containers``), runc's state (``/run/runc``), netavark's ``/run/containers``.
While this module runs, ``/var`` and ``/run`` are overlaid — in the test session's private
mount namespace — with upper dirs on a throwaway tmpfs, so those writes never reach the host.
podman gets its own ``--root``, ``--runroot`` and ``--tmpdir`` in the module's temp dir, runs
containers with runc, no network, the rlimits this sandbox allows and a cgroup parent of its
own; at the end its mounts are undone, its cgroups removed and the temp dir deleted.
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from minidocker import kernel
from minidocker.image.store import ImageStore, layout_dir

from .conftest import TIMEOUT_SCALE
from .conftest import minidocker as md

# One container's changes, made the same way under minidocker and under podman: a file added,
# hard- and symlinked; a file deleted (a whiteout); a file modified; a directory replaced (an
# opaque whiteout). CHECK reads them back; EXPECTED is what it prints in a faithful copy.
CHANGES = ("echo added > /added; ln /added /hard; ln -s added /link; rm /bin/true; "
           "echo more >> /etc/passwd; rm -r /usr/sbin; mkdir /usr/sbin; echo only > /usr/sbin/only")
CHECK = ("cat /added /hard; readlink /link; tail -n1 /etc/passwd; ls /usr/sbin; "
         "test -e /bin/true || echo no-true")
EXPECTED = "added\nadded\nadded\nmore\nonly\nno-true\n"
# podman on this machine: runc (crun refuses the hybrid cgroup layout), no network (netavark
# would change the host), rlimits the sandbox accepts (INTEROP.md).
PODMAN_RUN = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000",
              "--log-driver", "k8s-file"]  # not journald, where systemd runs: not in our netns
OTHER_ARCH = "s390x"  # a platform this machine is not, for the multi-platform test


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")
    return path


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """The result, after checking the command worked (its stderr is the failure message)."""
    command = " ".join(map(str, result.args))
    assert result.returncode == 0, f"{command} exited {result.returncode}: {result.stderr}"
    return result


# --- the module's workspace: a temp dir, the host shielded -------------------------------------

@pytest.fixture(scope="module")
def work():
    """A temp dir for the module; /var and /run overlaid so peers' writes there are thrown away."""
    path = Path(tempfile.mkdtemp(prefix="minidocker-interop-"))
    (path / "tmp").mkdir()
    shield = path / "shield"
    shield.mkdir()
    kernel.mount("tmpfs", str(shield), "tmpfs", 0, "mode=700")
    shields = []
    try:
        for top in ("/var", "/run"):
            upper, scratch = shield / top[1:] / "upper", shield / top[1:] / "work"
            upper.mkdir(parents=True)
            scratch.mkdir()
            kernel.mount("overlay", top, "overlay", 0,
                         f"lowerdir={top},upperdir={upper},workdir={scratch}")
            shields.append(top)
        yield path
    finally:
        for top in reversed(shields):
            kernel.umount2(top, kernel.MNT_DETACH)
        for mount_point in sorted(mounts_below(path), key=len, reverse=True):
            kernel.umount2(mount_point, kernel.MNT_DETACH)  # podman's storage, the shield
        shutil.rmtree(path)


def mounts_below(path: Path) -> list[str]:
    prefix = f"{path}/"
    with open("/proc/self/mountinfo") as f:
        return [point for point in (line.split()[4] for line in f) if point.startswith(prefix)]


def attempt(work: Path, *argv, binary: bool = False) -> subprocess.CompletedProcess:
    """Run a peer tool, its big temporary files in the module's temp dir; whatever it says."""
    return subprocess.run([str(a) for a in argv], capture_output=True, text=not binary,
                          stdin=subprocess.DEVNULL, timeout=60 * TIMEOUT_SCALE,
                          env={**os.environ, "TMPDIR": str(work / "tmp")})


def peer(work: Path, *argv, binary: bool = False) -> str | bytes:
    """Run a peer tool that must succeed; its stdout."""
    result = attempt(work, *argv, binary=binary)
    if binary:
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
        return result.stdout
    return ok(result).stdout


# --- minidocker's side ---------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def only_busybox_afterwards():
    """Whatever this module made or loaded goes at its end; busybox stays."""
    yield
    for image in ImageStore().images():
        if "busybox:latest" not in image.tags:
            ok(md("rmi", "-f", "--no-prune", image.id))  # each in turn: no parent goes before


@pytest.fixture(scope="module")
def image():
    """``interop:1``: busybox plus a layer minidocker wrote from a container's ``CHANGES``."""
    ok(md("run", "--name", "interop-src", "busybox", "sh", "-c", CHANGES))
    ok(md("commit", "interop-src", "interop:1"))
    md("rm", "interop-src")
    return "interop:1"


@pytest.fixture(scope="module")
def saved(work, image) -> Path:
    archive = work / "saved.tar"
    ok(md("save", "-o", str(archive), image))
    return archive


def image_id(name: str) -> str:
    return json.loads(ok(md("inspect", name)).stdout)[0]["Id"]


def runs_here(name: str) -> str:
    return ok(md("run", "--rm", name, "sh", "-c", CHECK)).stdout


# --- skopeo --------------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_skopeo_reads_and_copies_a_saved_archive(work, image, saved, transport):
    need("skopeo")
    info = json.loads(peer(work, "skopeo", "inspect", f"{transport}:{saved}"))
    assert (info["Os"], len(info["Layers"])) == ("linux", 2)
    config = peer(work, "skopeo", "inspect", "--config", "--raw", f"{transport}:{saved}",
                  binary=True)
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image_id(image)
    # skopeo's copy, written by skopeo in the same format, loads back with the same ID.
    copy, name = work / f"skopeo-{transport}.tar", f"skopeo/{transport}:1"
    peer(work, "skopeo", "copy", f"{transport}:{saved}", f"{transport}:{copy}:{name}")
    assert ok(md("load", "-i", str(copy))).stdout == f"Loaded image: {name}\n"
    assert image_id(name) == image_id(image)
    assert runs_here(name) == EXPECTED


def test_skopeo_reads_and_unpacks_a_zstd_saved_archive(work, image):
    """``save --compress zstd``: OCI's tar+zstd layers. skopeo copies them as they are (dir:),
    and decompresses them to gzip them again (skopeo will not put zstd in a docker-archive):
    that archive loads back with the same image ID, every diff_id checked."""
    need("skopeo")
    pytest.importorskip("zstandard")
    archive = work / "saved-zstd.tar"
    ok(md("save", "--compress", "zstd", "-o", str(archive), image))
    target = work / "skopeo-zstd-dir"
    peer(work, "skopeo", "copy", f"oci-archive:{archive}", f"dir:{target}")
    layers = json.loads((target / "manifest.json").read_text())["layers"]
    assert {layer["mediaType"] for layer in layers} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    for layer in layers:
        assert (target / layer["digest"].split(":")[1]).read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    gzipped, name = work / "skopeo-from-zstd.tar", "skopeo/from-zstd:1"
    peer(work, "skopeo", "copy", "--dest-compress-format", "gzip", f"oci-archive:{archive}",
         f"oci-archive:{gzipped}:{name}")
    assert ok(md("load", "-i", str(gzipped))).stdout == f"Loaded image: {name}\n"
    assert image_id(name) == image_id(image)
    ok(md("tag", image, "interop:zstd-source"))
    ok(md("rmi", image))  # minidocker reads its own zstd archive back too
    assert ok(md("load", "-i", str(archive))).stdout == f"Loaded image: {image}\n"
    assert image_id(image) == image_id("interop:zstd-source")
    assert runs_here(image) == EXPECTED


def test_skopeo_reads_the_store_layout(work):
    need("skopeo")
    layout, store = layout_dir(), ImageStore()
    busybox = store.get("busybox:latest")
    index_before = (layout / "index.json").read_bytes()
    info = json.loads(peer(work, "skopeo", "inspect", f"oci:{layout}:busybox:latest"))
    assert info["Digest"] == busybox.manifest_digest
    assert info["Layers"] == [layer["digest"] for layer in busybox.manifest["layers"]]
    # dir: keeps every blob as it is: skopeo read (and re-hashed) exactly what the store holds.
    target = work / "skopeo-dir"
    peer(work, "skopeo", "copy", f"oci:{layout}:busybox:latest", f"dir:{target}")
    assert (target / "manifest.json").read_bytes() == store.blobs.read(busybox.manifest_digest)
    for digest in [busybox.id, *(layer["digest"] for layer in busybox.manifest["layers"])]:
        copied = target / digest.split(":")[1]
        assert copied.read_bytes() == store.blobs.path(digest).read_bytes()
    assert (layout / "index.json").read_bytes() == index_before  # a reader, not a writer


# --- umoci ---------------------------------------------------------------------------------------

def test_umoci_unpacks_the_files_export_gives(work, image):
    need("umoci")
    layout = layout_dir()
    assert {"busybox:latest", image} <= set(peer(work, "umoci", "ls", "--layout",
                                                 layout).split())
    bundle = work / "umoci-bundle"
    peer(work, "umoci", "unpack", "--image", f"{layout}:{image}", bundle)
    ok(md("run", "--name", "interop-export", image, "sh", "-c", ":"))  # /bin/true is gone
    flat = work / "export.tar"
    ok(md("export", "-o", str(flat), "interop-export"))
    md("rm", "interop-export")
    rootfs = bundle / "rootfs"
    assert directory_tree(rootfs) == tar_tree(flat)
    assert (rootfs / "added").read_text() == "added\n" and not (rootfs / "bin/true").exists()
    assert os.listdir(rootfs / "usr/sbin") == ["only"]  # the opaque directory hid the rest
    assert (rootfs / "hard").stat().st_ino == (rootfs / "added").stat().st_ino
    assert os.readlink(rootfs / "link") == "added"


def test_umoci_repacks_what_minidocker_loads(work, image):
    """umoci writes a layer of its own (with its whiteouts) into a copy of the store's layout;
    the layout, tarred by hand (members named ./index.json ...), loads and runs here."""
    need("umoci")
    layout = work / "umoci-layout"
    shutil.copytree(layout_dir(), layout, ignore=shutil.ignore_patterns(".tmp-*"))
    bundle = work / "umoci-repack"
    peer(work, "umoci", "unpack", "--image", f"{layout}:{image}", bundle)
    (bundle / "rootfs/from-umoci").write_text("umoci\n")
    (bundle / "rootfs/added").unlink()
    peer(work, "umoci", "repack", "--image", f"{layout}:umoci-tag", bundle)
    archive = work / "umoci.tar"
    subprocess.run(["tar", "-C", layout, "-cf", archive, "."], check=True)
    before = ok(md("images", "-a", "--format", "{{.ID}}")).stdout
    loaded = ok(md("load", "-i", str(archive))).stdout.splitlines()
    # umoci's tag is a bare tag ("umoci-tag" names no repository): loaded without a name. The
    # layout is a copy of the whole store: the untagged images other tests left load again.
    new = [line.split(": ")[1] for line in loaded if line.startswith("Loaded image: sha256:")
           and line.split(":")[-1].strip()[:12] not in before.split()]
    assert len(new) == 1, loaded
    check = "cat /from-umoci /hard; test -e /added || echo no-added"
    assert ok(md("run", "--rm", new[0], "sh", "-c", check)).stdout == "umoci\nadded\nno-added\n"


def directory_tree(root: Path) -> dict[str, tuple]:
    """Every path below ``root``: its kind, mode, owner and content (or link target)."""
    tree = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as f:
                    what = ("file", hashlib.sha256(f.read()).hexdigest())
            elif stat.S_ISLNK(info.st_mode):
                what = ("symlink", os.readlink(path))
            else:
                what = (stat.S_IFMT(info.st_mode),)
            relative = os.path.relpath(path, root)
            tree[relative] = (*what, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
    return tree


def tar_tree(path: Path) -> dict[str, tuple]:
    """The same for a flat tar; a hard link has its target's content."""
    tree, contents = {}, {}
    kinds = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.FIFOTYPE: stat.S_IFIFO,
             tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK}
    with tarfile.open(path) as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name == ".":
                continue
            if member.isfile():
                contents[name] = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
                what = ("file", contents[name])
            elif member.islnk():
                what = ("file", contents[os.path.normpath(member.linkname)])
            elif member.issym():
                what = ("symlink", member.linkname)
            else:
                what = (kinds[member.type],)
            tree[name] = (*what, member.mode, member.uid, member.gid)
    return tree


# --- podman --------------------------------------------------------------------------------------

class Podman:
    """podman with a store, run dir, temp dir and cgroup parent of its own."""

    def __init__(self, work: Path, binary: str):
        home = work / "podman"
        self.work = work
        self.parent = f"minidocker-interop-{os.getpid()}"
        self.base = [binary, "--root", home / "root", "--runroot", home / "runroot",
                     "--tmpdir", home / "tmp", "--network-config-dir", home / "networks",
                     "--runtime", "runc", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file"]

    def __call__(self, *args) -> str:
        return peer(self.work, *self.base, *args)

    def attempt(self, *args) -> subprocess.CompletedProcess:
        """A podman command that may fail: its exit code and its words."""
        return attempt(self.work, *self.base, *args)

    def run(self, *args) -> str:
        return self("run", *PODMAN_RUN, "--cgroup-parent", f"/{self.parent}", *args)

    def new_cgroups(self) -> list[Path]:
        """The cgroups podman made for this module's containers, deepest first."""
        root = Path("/sys/fs/cgroup")  # cgroup v2 alone, or a v1 hierarchy per directory
        found = [top / self.parent for top in (root, *root.iterdir())
                 if (top / self.parent).is_dir()]
        below = [d for p in found for d in p.rglob("*") if d.is_dir()]
        return sorted(below, key=lambda d: len(d.parts), reverse=True) + found


@pytest.fixture(scope="module")
def podman(work):
    tool = Podman(work, need("podman"))
    yield tool
    tool.attempt("rm", "-af", "-t", "0")
    for cgroup in tool.new_cgroups():
        cgroup.rmdir()


@pytest.fixture(scope="module")
def podman_image(work, podman) -> str:
    """An image podman made itself: minidocker's busybox files imported, then a container's
    ``CHANGES`` committed — a layer written by podman, with podman's own whiteouts."""
    ok(md("run", "--name", "interop-rootfs", "busybox", "true"))
    rootfs = work / "busybox-rootfs.tar"
    ok(md("export", "-o", str(rootfs), "interop-rootfs"))
    md("rm", "interop-rootfs")
    podman("import", rootfs, "localhost/podman-base:1")
    podman.run("--name", "interop-podman", "localhost/podman-base:1", "sh", "-c", CHANGES)
    podman("commit", "interop-podman", "localhost/podman-made:1")
    podman("rm", "interop-podman")
    return "localhost/podman-made:1"


# podman load tries an archive as OCI first, which takes one image only; with two images it
# falls back to reading the same tar as a docker-archive (manifest.json, gzip layers).
@pytest.mark.parametrize("names", [["interop:1"], ["interop:1", "busybox:latest"]],
                         ids=["read-as-oci-archive", "read-as-docker-archive"])
def test_podman_loads_and_runs_what_minidocker_saved(work, podman, image, names):
    archive = work / f"for-podman-{len(names)}.tar"
    ok(md("save", "-o", str(archive), *names))
    loaded = podman("load", "-i", archive)
    assert all(f"Loaded image: localhost/{name}" in loaded for name in names)
    podman_id = podman("image", "inspect", "--format", "{{.Id}}", "localhost/interop:1")
    assert f"sha256:{podman_id.strip()}" == image_id(image)
    assert podman.run("--rm", "localhost/interop:1", "sh", "-c", CHECK) == EXPECTED
    podman("rmi", *(f"localhost/{name}" for name in names))


@pytest.mark.parametrize("save_args, names", [
    (["--format", "oci-archive"], ["localhost/podman-made:1"]),
    (["-m"], ["localhost/podman-made:1", "localhost/podman-base:1"]),  # docker-archive
], ids=["oci-archive", "docker-archive"])
def test_minidocker_loads_and_runs_what_podman_saved(work, podman, podman_image, save_args,
                                                      names):
    archive = work / f"podman-{len(names)}.tar"
    podman("save", *save_args, "-o", archive, *names)
    loaded = ok(md("load", "-i", str(archive))).stdout
    assert loaded == "".join(f"Loaded image: {name}\n" for name in names)
    podman_id = podman("image", "inspect", "--format", "{{.Id}}", podman_image).strip()
    assert image_id(podman_image) == f"sha256:{podman_id}"
    assert runs_here(podman_image) == EXPECTED
    for name in names:
        ok(md("rmi", name))


def test_minidocker_picks_its_platform_from_a_multi_platform_image(work, podman, podman_image):
    """``podman manifest push --all`` writes index.json -> an index -> one manifest per
    platform; the entry for another CPU comes first, and load must pass it over."""
    podman("manifest", "create", "localhost/multi:1")
    podman("manifest", "add", "--arch", OTHER_ARCH, "localhost/multi:1",
           "containers-storage:localhost/podman-base:1")
    podman("manifest", "add", "localhost/multi:1", f"containers-storage:{podman_image}")
    archive = work / "podman-multi.tar"
    podman("manifest", "push", "--all", "localhost/multi:1",
           f"oci-archive:{archive}:localhost/multi:1")
    assert ok(md("load", "-i", str(archive))).stdout == "Loaded image: localhost/multi:1\n"
    podman_id = podman("image", "inspect", "--format", "{{.Id}}", podman_image).strip()
    assert image_id("localhost/multi:1") == f"sha256:{podman_id}"
    assert runs_here("localhost/multi:1") == EXPECTED
