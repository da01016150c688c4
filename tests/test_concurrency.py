"""Many commands at once on one state root, as a busy class runs them (issue 19).

Each test starts its commands as separate processes at the same time, waits for all of them,
then holds what they *reported* against what is on disk: an image or container whose ID a
command printed (exit 0) must still be there unless some command reported removing it; the
store must be whole (``index.json`` names only manifests that exist, every manifest's blobs
and unpacked layers exist, every container's image exists); no command may end in a traceback.
A store damaged anyway (a blob deleted by hand, as a disk fault or an older version leaves it)
is named by ``images`` and ``run`` and repaired by ``image prune``, ``rmi -f`` or ``system
prune``. And a killed ``save -o`` leaves no half archive under the name asked for.
"""

import json
import os
import re
import signal
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import MINIDOCKER, minidocker

ROUNDS = 20  # the "done when"
FULL_ID = re.compile(r"\b(?:sha256:)?[0-9a-f]{64}\b")


def in_parallel(*sequences: list[tuple[str, ...]]) -> list[subprocess.CompletedProcess]:
    """Every sequence in its own process chain, all at once; inside a sequence, one command
    after the other. Returns every command's result."""
    def one_after_another(commands):
        return [minidocker(*command, timeout=180) for command in commands]

    with ThreadPoolExecutor(len(sequences)) as pool:
        return [result for results in pool.map(one_after_another, sequences)
                for result in results]


def no_tracebacks(results: list[subprocess.CompletedProcess]) -> None:
    for result in results:
        assert "Traceback" not in result.stderr, (result.args, result.stderr)


def ids_printed(results, *commands: str) -> set[str]:
    """The full IDs that successful runs of ``commands`` printed."""
    return {match.removeprefix("sha256:") for result in results
            if result.returncode == 0 and result.args[len(MINIDOCKER)] in commands
            for match in FULL_ID.findall(result.stdout)}


def state_root() -> Path:
    return Path(os.environ["MINIDOCKER_ROOT"])


def blob(digest: str) -> Path:
    return state_root() / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")


def index_entries() -> list[dict]:
    return json.loads((state_root() / "oci" / "index.json").read_text())["manifests"]


def image_ids_on_disk() -> set[str]:
    """The store checked for wholeness; the IDs of its images."""
    ids = set()
    for entry in index_entries():
        assert blob(entry["digest"]).exists(), f"index.json names a missing manifest: {entry}"
        manifest = json.loads(blob(entry["digest"]).read_text())
        config = manifest["config"]["digest"]
        for digest in [config, *(layer["digest"] for layer in manifest["layers"])]:
            assert blob(digest).exists(), f"{entry} lacks blob {digest}"
        for diff_id in json.loads(blob(config).read_text())["rootfs"]["diff_ids"]:
            layer = state_root() / "layers" / diff_id.removeprefix("sha256:")
            assert layer.is_dir(), f"{entry} lacks its unpacked layer {diff_id}"
        ids.add(config.removeprefix("sha256:"))
    return ids


def remove_images(*prefixes: str) -> None:
    """``rmi -f`` every name that starts with one of ``prefixes`` (and only those present:
    ``rmi`` stops at the first name it cannot find)."""
    names = [name for entry in index_entries()
             if (name := entry.get("annotations", {}).get("org.opencontainers.image.ref.name"))
             and name.startswith(prefixes)]
    if names:
        minidocker("rmi", "-f", *names)


def container_images_on_disk() -> dict[str, str]:
    """Container ID -> its image's ID, for every container record."""
    return {path.parent.name: json.loads(path.read_text())["Image"].removeprefix("sha256:")
            for path in (state_root() / "containers").glob("*/config.json")}


def test_parallel_tags_all_land_and_readers_never_fail(md):
    tags = [[("tag", "busybox", f"par{p}:{t}") for t in range(7)] for p in range(5)]
    readers = [("images",)] * 7
    try:
        results = in_parallel(*tags, readers)
        no_tracebacks(results)
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
        assert not any("damaged" in r.stderr for r in results)
        named = {entry.get("annotations", {}).get("org.opencontainers.image.ref.name")
                 for entry in index_entries()}
        assert {f"par{p}:{t}" for p in range(5) for t in range(7)} <= named
    finally:
        remove_images("par")


def churn_round(r: int, archive: Path, last_run: set[str]) -> list[list[tuple[str, ...]]]:
    """One round: commit, run from the last commit while rmi and the prunes try to remove
    it, rm -f of the last round's containers, load and tag: all at once."""
    base = f"churn:{r - 1}" if r else "busybox"
    return [[("commit", "conc-src", f"churn:{r}")],
            [("run", "-d", "--network", "none", base, "sleep", "1000")],
            [("rmi", base)] if r else [("images",)],
            [("rm", "-f", *last_run)] if last_run else [("ps", "-a")],
            [("image", "prune", "-f")],
            [("system", "prune", "-af")],
            [("load", "-i", str(archive)), ("tag", "busybox", f"conc-tag:{r}")]]


def test_commit_rmi_prune_run_rm_at_once_leave_a_whole_store(md, tmp_path):
    archive = tmp_path / "busybox.tar"
    assert md("save", "-o", str(archive), "busybox").returncode == 0
    assert md("run", "-d", "--name", "conc-src", "--network", "none", "busybox", "sh", "-c",
              "echo changed > /changed; sleep 1000").returncode == 0
    results, runs = [], set()
    try:
        for r in range(ROUNDS):
            round_results = in_parallel(*churn_round(r, archive, runs))
            runs = ids_printed(round_results, "run")
            results += round_results
        no_tracebacks(results)
        removed = ids_printed(results, "rm", "rmi", "image", "system")
        images, containers = image_ids_on_disk(), container_images_on_disk()
        assert ids_printed(results, "commit") - removed <= images
        assert ids_printed(results, "run") - removed <= set(containers)
        for container, image in containers.items():
            assert image in images, f"container {container} has lost its image {image}"
        assert md("images").returncode == 0 and md("ps", "-a").returncode == 0
        assert md("run", "--rm", "--network", "none", "busybox", "echo", "ok").stdout == "ok\n"
    finally:
        md("rm", "-f", "conc-src", *runs)
        remove_images("churn:", "conc-tag:")
        md("image", "prune", "-f")


def test_commit_racing_rm_either_wins_cleanly(md):
    names = [f"conc-victim{i}" for i in range(3)]
    for name in names:
        assert md("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
                  "mkdir /m; for i in $(seq 1 500); do echo $i > /m/$i; done; sleep 1000"
                  ).returncode == 0
    time.sleep(1)
    try:
        results = in_parallel(*[[("commit", name, f"{name}:1")] for name in names],
                              *[[("rm", "-f", name)] for name in names])
        no_tracebacks(results)
        assert all(r.returncode == 0 for r in results if r.args[len(MINIDOCKER)] == "rm")
        assert ids_printed(results, "commit") <= image_ids_on_disk()
        for failed in (r for r in results if r.returncode):
            assert "No such container" in failed.stderr and failed.stderr.count("\n") == 1
    finally:
        md("rm", "-f", *names)
        remove_images("conc-victim")


def import_image(tmp_path: Path, name: str, size: int = 1) -> None:
    """A one-layer image holding ``size`` bytes of random data, imported as ``name``."""
    data = tmp_path / "data"
    data.write_bytes(os.urandom(size))
    with tarfile.open(tmp_path / "rootfs.tar", "w") as tar:
        tar.add(data, "data")
    result = minidocker("import", str(tmp_path / "rootfs.tar"), name, timeout=120)
    assert result.returncode == 0, result.stderr


def break_image(name: str, part: str) -> None:
    """Delete one part of an image by hand, as a disk fault would."""
    entry = next(e for e in index_entries()
                 if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == name)
    manifest = json.loads(blob(entry["digest"]).read_text())
    if part == "manifest":
        blob(entry["digest"]).unlink()
    elif part == "config":
        blob(manifest["config"]["digest"]).unlink()
    else:
        diff_id = json.loads(blob(manifest["config"]["digest"]).read_text())["rootfs"][
            "diff_ids"][0]
        subprocess.run(["rm", "-rf", str(state_root() / "layers" / diff_id[7:])], check=True)


@pytest.mark.parametrize("part, repair", [
    ("manifest", ("image", "prune", "-f")),
    ("config", ("rmi", "-f", "conc-broken:latest")),
    ("layer", ("system", "prune", "-f")),
])
def test_a_damaged_image_is_named_refused_and_repaired(md, tmp_path, part, repair):
    import_image(tmp_path, "conc-broken")
    break_image("conc-broken:latest", part)
    listing = md("images")
    assert listing.returncode == 0 and "busybox" in listing.stdout
    assert "image conc-broken:latest is damaged" in listing.stderr
    run = md("run", "--rm", "conc-broken", "true")
    assert run.returncode == 125 and run.stderr.count("\n") == 1, run.stderr
    assert "image conc-broken:latest is damaged: " in run.stderr
    assert "is missing; remove it with 'minidocker rmi -f conc-broken:latest'" in run.stderr
    repaired = md(*repair)
    assert repaired.returncode == 0, repaired.stderr
    listing = md("images")
    assert listing.stderr == "" and "conc-broken" not in listing.stdout
    image_ids_on_disk()  # whole again
    assert md("run", "--rm", "busybox", "echo", "ok").stdout == "ok\n"


def test_a_killed_save_leaves_no_archive_under_its_name(md, tmp_path):
    import_image(tmp_path, "conc-big", size=64 << 20)
    target = tmp_path / "out" / "saved.tar"
    target.parent.mkdir()
    try:
        save = subprocess.Popen([*MINIDOCKER, "save", "-o", str(target), "conc-big"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not list(target.parent.glob(".saved.tar.*.tmp")) and save.poll() is None:
            assert time.monotonic() < deadline, "save never started writing"
        save.send_signal(signal.SIGKILL)
        save.wait()
        assert save.returncode == -signal.SIGKILL, "save finished before it could be killed"
        assert not target.exists()
        assert md("save", "-o", str(target), "conc-big").returncode == 0
        assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".tmp")] == [
            "saved.tar"]
        assert tarfile.open(target).getmember("index.json")
    finally:
        md("rmi", "conc-big")
