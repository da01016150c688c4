"""Lab 11, a pull by hand: the checker says TODO on the starter, passes the solution (through
the API and the CLI), catches the classic mistakes (a token server asked without a challenge, an
anonymous token, the index's first entry, a digest never checked), and leaves nothing behind."""

import glob

import pytest

from minidocker import labs
from minidocker.labs import lab11_registry
from tests.helpers import cli_check_passes, expect_step_failure, starter_report, with_mistake
from tests.test_labs import REPO

SOLUTION = REPO / "labs/solutions/11-registry.py"
LAB = lab11_registry.LAB
STEPS = len(LAB.steps)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    assert not glob.glob("/tmp/minidocker-lab11-*")


def test_the_starter_is_a_todo_at_every_step(capsys):
    report = starter_report(capsys, "11", STEPS)
    assert "Step 1: get_token() is not written yet" in report


def test_the_solution_passes_every_step_and_says_what_the_server_heard():
    results = labs.run("11", SOLUTION)
    assert [r.status for r in results] == ["PASS"] * STEPS, [r.detail for r in results]
    token, manifest, blob, pull = (r.detail for r in results)
    assert "manifests/latest → 401" in token and "[Basic] → 200" in token
    assert "unknown/unknown" in manifest and "refused the tampered one (ValueError" in manifest
    assert "refused the tampered layer" in blob
    assert "nothing half-stored" in pull


def test_the_cli_checks_the_solution(md):
    printed = cli_check_passes(md, "11", SOLUTION, STEPS)
    assert "Lab 11 — A registry by hand" in printed


# Each mistake: (the step, the solution's text, what the mistake makes of it, a piece of the
# FAIL).
MISTAKES = {
    "the token server asked without a challenge": (
        1, "    challenged = httpx.get(url)",
        "    challenged = httpx.Response(401, headers={\"WWW-Authenticate\": f'Bearer realm=\"'"
        "f'{registry}/token\",service=\"minidocker-registry\",scope=\"repository:{repository}"
        ":pull\"'})", "without being challenged"),
    "an anonymous token": (
        1, "    reply = httpx.get(challenge[\"realm\"], auth=(username, password),",
        "    reply = httpx.get(challenge[\"realm\"],", "the registry refuses your token"),
    "the index's first entry": (
        2, "        chosen = next(m for m in document[\"manifests\"]",
        "        chosen = document[\"manifests\"][0]\n        _ = (m for m in document[\"manifests\"]",
        "you returned the attestation"),
    "the index itself": (
        2, "    if document.get(\"mediaType\") in INDEX_TYPES or \"manifests\" in document:",
        "    if False:", "you returned the index"),
    "no digest check": (
        2, "    if actual != expected:", "    if False:", "the tampered manifest was accepted"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_checker_catches_a_classic_mistake(mistake, tmp_path):
    step, right, wrong, complaint = MISTAKES[mistake]
    student = with_mistake(SOLUTION, right, wrong, tmp_path)
    expect_step_failure(LAB, step, student, complaint)


def test_a_pull_that_writes_before_it_checks_leaves_a_bad_blob_and_fails(tmp_path):
    """get_blob checks, but pull() writes what an unchecked GET returned: the checker finds
    the tampered file in the directory."""
    source = SOLUTION.read_text().replace(
        '    blobs = {d["digest"]: get_blob(registry, repository, d["digest"], token) for d in '
        'wanted}',
        '    blobs = {d["digest"]: httpx.get(f"{registry}/v2/{repository}/blobs/{d[\'digest\']}", '
        'headers={"Authorization": f"Bearer {token}"}).content for d in wanted}')
    student = with_mistake(SOLUTION, "    return manifest[\"config\"][\"digest\"]",
                           "    [get_blob(registry, repository, d, token) for d in blobs]\n"
                           "    return manifest[\"config\"][\"digest\"]", tmp_path, source)
    expect_step_failure(LAB, 4, student, "holds bytes that hash to")
