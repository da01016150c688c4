"""Stages 4 and 5: copy-on-write, diff, commit, the OCI store, save/load, export/import."""

import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from minidocker.image.store import ImageStore, layout_dir
from tests.conftest import MINIDOCKER


def test_done_when_diff_and_commit(md):
    assert md("run", "--name", "c1", "busybox", "sh", "-c",
              "echo hi > /new; rm /bin/true").returncode == 0
    assert md("diff", "c1").stdout.splitlines() == ["C /bin", "D /bin/true", "A /new"]
    image_id = md("commit", "-m", "my change", "c1", "mine:1").stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert md("run", "--rm", "mine:1", "cat", "/new").stdout == "hi\n"
    assert md("run", "--rm", "mine:1", "ls", "/bin/true").returncode == 1
    assert md("run", "--rm", "busybox", "ls", "/bin/true").returncode == 0  # base unchanged
    history = md("history", "mine:1").stdout.splitlines()
    assert "my change" in history[1] and "sh -c echo hi > /new; rm /bi" in history[1]
    md("rm", "c1")
    md("rmi", "mine:1")


def test_copy_on_write_modify_and_opaque_dir(md):
    script = "echo more >> /etc/passwd; rm -r /home; mkdir /home; touch /home/x"
    md("run", "--name", "cow", "busybox", "sh", "-c", script)
    upper = [r for r in _records() if r["Name"] == "cow"][0]
    changes = md("diff", "cow").stdout.splitlines()
    assert "C /etc/passwd" in changes and "A /home/x" in changes
    md("commit", "cow", "cow:1")
    assert md("run", "--rm", "cow:1", "ls", "/home").stdout == "x\n"
    assert md("run", "--rm", "cow:1", "tail", "-n1", "/etc/passwd").stdout == "more\n"
    md("rm", "cow")
    md("rmi", "cow:1")
    assert upper


def _records():
    root = os.environ["MINIDOCKER_ROOT"] + "/containers"
    return [json.load(open(f"{root}/{c}/config.json")) for c in os.listdir(root)
            if not c.startswith(".")]  # .lock: the containers lock


def test_commit_with_changes_sets_cmd_and_env(md):
    md("run", "--name", "cc", "busybox", "true")
    md("commit", "-c", "CMD echo $GREETING", "-c", "ENV GREETING=hello", "cc", "greeter")
    assert md("run", "--rm", "greeter").stdout == "hello\n"
    config = json.loads(md("inspect", "greeter").stdout)[0]["Config"]
    assert config["Cmd"] == ["/bin/sh", "-c", "echo $GREETING"]
    md("rm", "cc")
    md("rmi", "greeter")


def test_layout_is_oci_and_layers_are_shared(md):
    layout = layout_dir()
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    md("run", "--name", "s1", "busybox", "touch", "/a")
    md("commit", "s1", "shared:a")
    md("commit", "s1", "shared:b")
    md("tag", "shared:a", "shared:c")
    store = ImageStore()
    a, c = store.get("shared:a"), store.get("shared:c")
    assert a.id == c.id and sorted(a.tags) == ["shared:a", "shared:c"]
    base = store.get("busybox")
    assert a.manifest["layers"][0] == base.manifest["layers"][0]  # stored once
    index = json.loads((layout / "index.json").read_text())
    names = [d["annotations"]["org.opencontainers.image.ref.name"]
             for d in index["manifests"] if "annotations" in d]
    assert len(names) == len(set(names))
    md("rm", "s1")
    for tag in ("shared:a", "shared:b", "shared:c"):
        md("rmi", tag)


def test_rmi_untags_then_deletes_and_refuses_while_in_use(md):
    md("run", "--name", "u1", "busybox", "true")
    md("commit", "u1", "keep:1")
    md("tag", "keep:1", "keep:2")
    assert md("rmi", "keep:1").stdout == "Untagged: keep:1\n"
    md("run", "--name", "u2", "keep:2", "true")
    refused = md("rmi", "keep:2")
    assert refused.returncode == 1 and "is using its referenced image" in refused.stderr
    md("rm", "u2")
    removed = md("rmi", "keep:2").stdout.splitlines()
    assert removed[0] == "Untagged: keep:2" and removed[1].startswith("Deleted: sha256:")
    md("rm", "u1")
    assert "keep" not in md("images").stdout


def test_images_table_and_inspect(md):
    rows = md("images").stdout.splitlines()
    assert rows[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(r.split()[:2] == ["busybox", "latest"] for r in rows[1:])
    info = json.loads(md("inspect", "busybox").stdout)[0]
    assert info["RepoTags"] == ["busybox:latest"] and info["Os"] == "linux"
    assert info["Config"]["Cmd"] == ["sh"]


def test_save_load_round_trip_keeps_the_id(md, tmp_path):
    md("run", "--name", "sv", "busybox", "sh", "-c", "echo saved > /saved")
    md("commit", "sv", "saved:1")
    image_id = json.loads(md("inspect", "saved:1").stdout)[0]["Id"]
    archive = tmp_path / "saved.tar"
    assert md("save", "-o", str(archive), "saved:1").returncode == 0
    names = tarfile.open(archive).getnames()
    assert {"oci-layout", "index.json", "manifest.json"} <= set(names)
    md("rm", "sv")
    md("rmi", "saved:1")
    assert md("load", "-i", str(archive)).stdout == "Loaded image: saved:1\n"
    assert json.loads(md("inspect", "saved:1").stdout)[0]["Id"] == image_id
    md("rmi", "saved:1")
    with archive.open("rb") as stdin:  # ``docker load < saved.tar``: no -i, the archive on stdin
        loaded = subprocess.run([*MINIDOCKER, "load"], stdin=stdin, capture_output=True)
    assert loaded.stdout == b"Loaded image: saved:1\n", loaded.stderr
    assert md("run", "--rm", "saved:1", "cat", "/saved").stdout == "saved\n"
    md("rmi", "saved:1")


def test_export_and_import_make_a_one_layer_image(md, tmp_path):
    md("run", "--name", "ex", "busybox", "sh", "-c", "echo exported > /e; rm /bin/ls")
    flat = tmp_path / "flat.tar"
    assert md("export", "-o", str(flat), "ex").returncode == 0
    names = set(tarfile.open(flat).getnames())
    assert "e" in names and "bin/ls" not in names and not any(".wh." in n for n in names)
    image_id = md("import", "-c", "CMD [\"cat\", \"/e\"]", str(flat), "flat:1").stdout.strip()
    assert image_id.startswith("sha256:")
    assert md("run", "--rm", "flat:1").stdout == "exported\n"
    assert len(json.loads(md("inspect", "flat:1").stdout)[0]["RootFS"]["Layers"]) == 1
    md("rm", "ex")
    md("rmi", "flat:1")


EXPORT_CHILD_IMPORTS = """
import os, sys
from pathlib import Path
from types import SimpleNamespace
from minidocker import namespaces
from minidocker.container import commit, records

class Stop(Exception):
    pass

def stop(keep):
    raise Stop

def fork(task, work, *args):  # instead of forking: the child's imports, up to its first step
    loaded = set(sys.modules)
    namespaces.close_other_fds = stop
    try:
        work(SimpleNamespace(fd=-1), *args)
    except Stop:
        print(sorted(set(sys.modules) - loaded))

records.find = lambda name: SimpleNamespace(directory=Path("/none"), upper=Path("/none/upper"),
                                            Config=SimpleNamespace(LowerDirs=[]))
namespaces.in_child = fork
commit.export("c", open(os.devnull, "wb"))
"""


def test_export_loads_what_its_child_runs_before_the_fork():
    """A forked child of the daemon (threads) must not import: an import lock another thread
    held at the fork is never released in the child. A fresh interpreter, no fork: the child's
    function runs up to its first step and lists the modules it had to import itself."""
    result = subprocess.run([MINIDOCKER[0], "-c", EXPORT_CHILD_IMPORTS], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout == "[]\n", result.stdout + result.stderr[-2000:]


def test_from_scratch_one_static_binary(md, tmp_path):
    rootfs = tmp_path / "scratch.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add("/bin/busybox", arcname="busybox")  # one static binary, nothing else
    md("import", "-c", 'ENTRYPOINT ["/busybox", "echo"]', str(rootfs), "scratch-hello")
    assert md("run", "--rm", "scratch-hello", "hi from scratch").stdout == "hi from scratch\n"
    md("rmi", "scratch-hello")


def test_image_prune_removes_dangling_images(md):
    """...and both prunes count the space they freed: the container's writable layer, the
    image's blobs (100 kB of random bytes: gzip leaves them as big)."""
    md("run", "--name", "pr", "--label", "pruned-here", "busybox", "sh", "-c",
       "head -c 100000 /dev/urandom > /written")
    dangling = md("commit", "-c", "LABEL pruned-here=1", "pr").stdout.strip()
    assert md("container", "prune", "-f", "--filter", "label=pruned-here").stdout.endswith(
        "\nTotal reclaimed space: 100kB\n")
    assert dangling[7:19] in md("images").stdout
    pruned = md("image", "prune", "-f", "--filter", "label=pruned-here").stdout
    assert f"deleted: {dangling}" in pruned
    freed = pruned.splitlines()[-1].removeprefix("Total reclaimed space: ")
    assert freed.endswith("kB") and 100 < float(freed[:-2]) < 110, pruned
    assert dangling[7:19] not in md("images").stdout


def test_image_prune_keeps_the_parents_of_an_image_then_follows_its_head(md):
    """An untagged image another is built on (a build's steps, a commit's base) is not
    dangling for ``image prune``: Docker prunes the heads of its parent chains."""
    md("run", "--name", "chain-a", "busybox", "touch", "/a")
    parent = md("commit", "-c", "LABEL chain-test=1", "chain-a").stdout.strip()
    md("run", "--name", "chain-b", parent, "touch", "/b")
    md("commit", "chain-b", "chain:top")
    md("rm", "chain-a", "chain-b")
    prune = ("image", "prune", "-f", "--filter", "label=chain-test")
    assert md(*prune).stdout == "Total reclaimed space: 0B\n"  # the parent of chain:top stays
    assert md("image", "inspect", parent).returncode == 0
    md("rmi", "--no-prune", "chain:top")
    assert f"deleted: {parent}" in md(*prune).stdout  # now a head, untagged: it goes


def test_rmi_takes_the_untagged_parents_along_unless_no_prune(md):
    """``rmi`` of a build's image deletes the steps under it, as Docker's does."""
    md("run", "--name", "rmi-a", "busybox", "touch", "/a")
    parent = md("commit", "rmi-a").stdout.strip()
    md("run", "--name", "rmi-b", parent, "touch", "/b")
    md("commit", "rmi-b", "rmi:top")
    md("rm", "rmi-a", "rmi-b")
    removed = md("rmi", "rmi:top").stdout.splitlines()
    assert removed[0] == "Untagged: rmi:top" and removed[2] == f"Deleted: {parent}"
    assert md("image", "inspect", "busybox").returncode == 0  # tagged: the chain stops there


@pytest.mark.parametrize("args, message", [
    (["rmi", "nosuch"], "Unable to find image 'nosuch:latest'"),
    (["tag", "busybox", "Bad:Tag"], "invalid reference format"),
    (["history", "nosuch"], "Unable to find image"),
    (["diff", "ghost"], "No such container: ghost"),
    (["commit", "ghost"], "No such container: ghost"),
    (["commit", "-c", "FROB x", "ghost"], "No such container"),
])
def test_image_command_errors(md, args, message):
    result = md(*args)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_load_refuses_bad_archives(md, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar")
    result = md("load", "-i", str(junk))
    assert result.returncode == 1 and "is not an image archive" in result.stderr
    piped = md("load", input="not a tar")  # stdin: named so, not by the spool file's path
    assert piped.returncode == 1 and piped.stderr.startswith("minidocker: stdin is not an image")


def test_load_refuses_a_config_whose_created_is_no_date(md, tmp_path):
    """Go's time.Time refuses it too; stored, it broke every listing of the store."""
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        tar.addfile(tarfile.TarInfo("empty"))
    diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = {"architecture": "amd64", "os": "linux", "created": 5,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    archive = tmp_path / "created.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("manifest.json", json.dumps([{
                "Config": "config.json", "RepoTags": ["created-no-date:1"],
                "Layers": ["layer.tar"]}]).encode()),
                ("config.json", json.dumps(config).encode()),
                ("layer.tar", layer.read_bytes())):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    result = md("load", "-i", str(archive))
    assert result.returncode == 1 and '"created" is 5, not a date' in result.stderr
    assert "created-no-date" not in md("images").stdout


def test_load_from_a_terminal_says_to_give_a_file(md):
    terminal, other_end = os.openpty()
    try:
        result = subprocess.run([*MINIDOCKER, "load"], stdin=terminal, capture_output=True,
                                text=True, timeout=30)
    finally:
        os.close(terminal), os.close(other_end)
    assert result.returncode == 1
    assert result.stderr == ("minidocker: requested load from stdin, but stdin is empty: give "
                             "-i FILE or redirect an archive into stdin\n")


def test_diff_looks_names_up_like_overlayfs(md):
    # /etc re-made in the container: the image's /etc/passwd is hidden, so ours is new.
    md("run", "--network", "none", "--name", "remade", "busybox", "sh", "-c",  # (/etc/hosts:
       # with a network it would be a mount point, and 'rm -r /etc' fails, as in Docker)
       "rm -r /etc; mkdir /etc; echo x > /etc/passwd")
    assert "A /etc/passwd" in md("diff", "remade").stdout.splitlines()
    md("commit", "remade", "noetc:1")
    md("run", "--name", "noetc", "busybox", "rm", "-r", "/home")
    md("commit", "noetc", "nohome:1")
    # nohome:1 has no /home; a container that makes /home/x adds both
    md("run", "--name", "again", "nohome:1", "sh", "-c", "mkdir /home; echo x > /home/x")
    assert {"A /home", "A /home/x"} <= set(md("diff", "again").stdout.splitlines())
    for name in ("remade", "noetc", "again"):
        md("rm", name)
    md("rmi", "noetc:1", "nohome:1")


def test_retagging_keeps_the_old_image_for_its_containers(md):
    md("run", "--name", "t1", "busybox", "touch", "/one")
    md("commit", "t1", "moving")
    md("run", "--name", "t2", "moving", "true")  # a container of the first "moving"
    md("run", "--name", "t3", "busybox", "touch", "/two")
    md("commit", "t3", "moving")  # the name moves; the old image stays, untagged
    md("image", "prune", "-f")  # must not take the image t2 still uses
    assert md("diff", "t2").returncode == 0
    assert md("commit", "t2", "from-t2").returncode == 0
    assert "<none>" in md("images").stdout
    for name in ("t1", "t2", "t3"):
        md("rm", name)
    md("rmi", "moving", "from-t2")
    md("image", "prune", "-f")
    assert "<none>" not in md("images").stdout


def test_change_instructions_parse_like_a_dockerfile():
    from minidocker.image.config import apply_changes

    config = apply_changes({}, ["ENV A=1 B='two words'", "ENV C three", "LABEL x=1 y=2",
                                "EXPOSE 80 443/udp"])
    assert config["Env"] == ["A=1", "B=two words", "C=three"]
    assert config["Labels"] == {"x": "1", "y": "2"}
    assert config["ExposedPorts"] == {"80/tcp": {}, "443/udp": {}}


def test_an_image_cannot_pull_the_callers_environment(md, tmp_path):
    flat = tmp_path / "env.tar"
    with tarfile.open(flat, "w") as tar:
        tar.add("/bin/busybox", arcname="busybox")
    md("import", "-c", "ENV SECRET_TOKEN", "-c", 'ENTRYPOINT ["/busybox", "env"]', str(flat),
       "envimg")
    result = md("run", "--rm", "-e", "ASKED", "envimg", env={"SECRET_TOKEN": "hunter2",
                                                            "ASKED": "yes"})
    assert "hunter2" not in result.stdout and "ASKED=yes" in result.stdout
    md("rmi", "envimg")


def test_unwritable_output_is_a_clear_error(md):
    result = md("save", "-o", "/nonexistent/dir/x.tar", "busybox")
    assert result.returncode == 1 and "cannot write /nonexistent/dir/x.tar" in result.stderr
