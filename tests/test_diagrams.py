"""The concept pictures in diagrams/ are current: each SVG is what its DOT source renders to.

``./kit diagrams`` (diagrams/render.sh) renders every ``NAME.dot`` to ``NAME.svg`` and stamps the
SVG with the sha256 of its source. Two checks, both independent of graphviz's version (its SVG
differs in coordinates and escapes between Debian 12's 2.42 and newer releases):

- the stamp in each committed SVG names the source as it is now (an edited .dot whose picture
  was not re-rendered fails, with the command to run);
- a fresh render into a temporary directory draws the same picture: the same nodes, edges and
  clusters (their ``<title>``) and the same words (every ``<text>``), whatever the layout.
"""

import hashlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

DIAGRAMS = Path(__file__).resolve().parents[1] / "diagrams"
SVG = "{http://www.w3.org/2000/svg}"
STAMP = re.compile(r"<!-- minidocker-source: (\S+) sha256 ([0-9a-f]{64}) -->")
SOURCES = sorted(p.stem for p in DIAGRAMS.glob("*.dot"))
RENDER = "./kit diagrams"


def test_every_source_has_its_picture_and_every_picture_its_source():
    pictures = sorted(p.stem for p in DIAGRAMS.glob("*.svg"))
    assert pictures == SOURCES, f"run {RENDER} (and commit both), or remove the stray file"


def test_the_seeds_pictures_are_there():
    assert {"architecture", "layers", "network-modes", "build", "registry",
            "stages", "namespaces", "pivot-root"} <= set(SOURCES)


@pytest.mark.parametrize("name", SOURCES)
def test_each_picture_was_rendered_from_its_source_as_it_is_now(name):
    svg = (DIAGRAMS / f"{name}.svg").read_text()
    stamp = STAMP.search(svg)
    assert stamp, f"{name}.svg has no source stamp: re-render it with {RENDER}"
    source_sum = hashlib.sha256((DIAGRAMS / f"{name}.dot").read_bytes()).hexdigest()
    assert stamp.groups() == (f"{name}.dot", source_sum), \
        f"{name}.svg is older than {name}.dot: run {RENDER} and commit the SVG"


def drawing(path: Path) -> tuple[Counter, Counter]:
    """What a picture shows, without where: the titles of its nodes, edges and clusters, and
    every piece of text, whitespace-normalised."""
    root = ET.parse(path).getroot()
    titles, texts = Counter(), Counter()
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        if title is not None and group.get("class") in ("node", "edge", "cluster"):
            titles[(group.get("class"), " ".join((title.text or "").split()))] += 1
    for text in root.iter(f"{SVG}text"):
        words = " ".join("".join(text.itertext()).split())
        if words:
            texts[words] += 1
    return titles, texts


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    if not shutil.which("dot"):
        pytest.skip("graphviz is not installed (sudo ./kit setup installs it)")
    out = tmp_path_factory.mktemp("diagrams")
    subprocess.run([str(DIAGRAMS / "render.sh"), str(out)], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("name", SOURCES)
def test_a_fresh_render_draws_the_same_picture(name, fresh):
    committed = (DIAGRAMS / f"{name}.svg").read_text()
    again = (fresh / f"{name}.svg").read_text()
    assert STAMP.search(committed).groups() == STAMP.search(again).groups()
    assert drawing(DIAGRAMS / f"{name}.svg") == drawing(fresh / f"{name}.svg"), \
        f"{name}.svg differs from what {name}.dot renders to: run {RENDER} and commit it"


def test_the_kit_renders_the_diagrams():
    kit = (DIAGRAMS.parent / "kit").read_text()
    assert re.search(r"^\s*diagrams\) .*diagrams", kit, re.M)
    assert "diagrams/render.sh" in kit
