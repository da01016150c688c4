"""Labs 04 (overlay) and 05 (images): each checker says TODO for each step of its starter,
passes its solution (through the API and the CLI), catches the classic mistakes, and leaves
nothing behind: no mount, no scratch directory, no image, blob or layer in the store."""

import os
import shutil
from pathlib import Path

import pytest

from minidocker import labs
from minidocker.image.store import ImageStore
from minidocker.labs import lab04_overlay, lab05_images
from minidocker.state import state_root
from tests.helpers import (
    cli_check_passes,
    expect_step_failure,
    run_one_step,
    starter_report,
    with_mistake,
)
from tests.traces import lab_traces

REPO = Path(__file__).resolve().parents[1]
LABS = {"04": lab04_overlay.LAB, "05": lab05_images.LAB}
SOLUTIONS = {"04": REPO / "labs/solutions/04-overlay.py",
             "05": REPO / "labs/solutions/05-images.py"}


pytestmark = pytest.mark.usefixtures("nothing_left_behind")  # conftest.py: traces() below


def traces() -> dict:
    """What a check could leave behind: mounts, scratch directories, and the store's images,
    blobs, unpacked layers and containers."""
    store = ImageStore()
    containers = state_root() / "containers"
    return lab_traces("0[45]",
                      images=sorted(tag for image in store.images() for tag in image.tags),
                      blobs=store.blobs.digests(),
                      layers=sorted(os.listdir(state_root() / "layers")),
                      containers=sorted(os.listdir(containers)) if containers.is_dir() else [])


@pytest.mark.parametrize("number", LABS)
def test_the_starter_is_a_todo_at_every_step(number, capsys):
    starter_report(capsys, number, len(LABS[number].steps), each_stub_speaks=True)


@pytest.mark.parametrize("number", LABS)
def test_the_solution_passes_every_step(number, capsys):
    assert labs.check(number, SOLUTIONS[number]) == 0
    report = capsys.readouterr().out
    steps = len(LABS[number].steps)
    assert report.count("PASS") == steps and f"{steps} of {steps} steps pass" in report
    if number == "05":  # the image was loaded, it ran, and skopeo read the layouts
        words = " ".join(report.split())
        assert words.count("printed: hello from an image built by hand") == 2
        said = "skopeo inspect reads it too" if shutil.which("skopeo") else "check was skipped"
        assert words.count(said) == 2


@pytest.mark.parametrize("number, title", [("04", "Overlay: layers, an upper dir and whiteouts"),
                                           ("05", "Images: build one by hand")])
def test_the_cli_checks_the_solution(md, number, title):
    printed = cli_check_passes(md, number, SOLUTIONS[number], len(LABS[number].steps))
    assert f"Lab {number} — {title}" in printed
    assert title in md("lab", "list").stdout


def test_the_cli_fails_on_the_starter(md):
    result = md("lab", "check", "4")
    assert result.returncode == 1
    assert result.stdout.count("TODO") == 4 and "Next: step 1" in result.stdout


def test_without_skopeo_its_check_is_skipped_and_said(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run_one_step(LABS["05"], 2, SOLUTIONS["05"])
    assert result.status == "PASS"
    assert "skopeo is not installed here, so its check was skipped" in result.detail


def test_the_image_is_removed_even_when_the_run_fails(tmp_path):
    source = SOLUTIONS["05"].read_text()
    student = tmp_path / "student.py"  # an image whose command does not exist
    student.write_text(source.replace('"config": {"Cmd": cmd}', '"config": {"Cmd": ["/nope"]}'))
    expect_step_failure(LABS["05"], 4, student, "minidocker run --rm")
    assert not [i for i in ImageStore().images() if any("lab05" in tag for tag in i.tags)]


# Each mistake: (lab, step, text of the solution, what the mistake makes of it, a piece of the
# FAIL).
MISTAKES = {
    "lower layers bottom first": (
        "04", 1, "lowerdir={':'.join(lower)}", "lowerdir={':'.join(reversed(lower))}",
        "lowerdir lists the layers top first"),
    "no workdir": (
        "04", 1, ",workdir={work}\"", "\"", "needs a workdir too"),
    "upperdir and workdir swapped": (
        "04", 1, "upperdir={upper},workdir={work}", "upperdir={work},workdir={upper}",
        "upper dir's notes.txt does not show"),
    "any character device taken for a whiteout": (
        "04", 2, "stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)",
        "stat.S_ISCHR(st.st_mode)", "/etc/null is no deletion"),
    "the xattr's value compared with a str": (
        "04", 3, 'value == b"y"', 'value == "y"', "os.getxattr returns bytes"),
    "every directory of upper taken for opaque": (
        "04", 3, "        try:\n            value = os.getxattr(", "        found.append(path)\n"
        "        continue\n        try:\n            value = os.getxattr(", "/etc is not opaque"),
    "a tar-style .wh. file instead of a whiteout": (
        "04", 4, "    os.mknod(whiteout, stat.S_IFCHR | 0o000, os.makedev(0, 0))",
        "    head, tail = os.path.split(whiteout)\n"
        "    open(os.path.join(head, '.wh.' + tail), 'w').close()",
        "the way a layer *tar* writes a whiteout"),
    "a whiteout with the wrong device number": (
        "04", 4, "os.makedev(0, 0))", "os.makedev(1, 3))", "a whiteout is device 0/0"),
    "parents of the whiteout not made": (
        "04", 4, "    os.makedirs(os.path.dirname(whiteout), exist_ok=True)\n", "",
        "make them first"),
    "diff_id computed over the gzip": (
        "05", 1, "hashlib.sha256(tar_bytes)", "hashlib.sha256(blob)",
        "the hash of the *uncompressed* tar"),
    "host paths in the layer tar": (
        "05", 1, "tar.add(os.path.join(source, name), arcname=name)",
        "tar.add(os.path.join(source, name))", "by its path inside the layer"),
    "the blob stored without gzip": (
        "05", 1, "blob = gzip.compress(tar_bytes, mtime=0)", "blob = tar_bytes",
        "the blob is no gzip stream"),
    "layer digests where the diff_ids go": (
        "05", 2, '"diff_ids": [layer["diff_id"] for layer in layers]',
        '"diff_ids": [layer["digest"] for layer in layers]',
        "rootfs.diff_ids lists the layers' digests"),
    "layers top first in the manifest": (
        "05", 2, '"size": layer["size"]}\n                   for layer in layers]',
        '"size": layer["size"]}\n                   for layer in reversed(layers)]',
        "bottom layer first"),
    "no name in index.json": (
        "05", 2, "    descriptor[\"annotations\"] = {REF_NAME: name}\n", "",
        "index.json names no image"),
    "Cmd outside the config's config": (
        "05", 2, '"config": {"Cmd": cmd},', '"Cmd": cmd,', "it belongs inside"),
    "archive entries named by their host path": (
        "05", 3, "tar.add(os.path.join(layout, name), arcname=name)",
        "tar.add(os.path.join(layout, name))", "name each by its path inside the layout"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    number, step, right, wrong, complaint = MISTAKES[mistake]
    student = with_mistake(SOLUTIONS[number], right, wrong, tmp_path)
    expect_step_failure(LABS[number], step, student, complaint)
