"""Checker of lab 10 — the build cache: the ``.dockerignore`` matcher and the cache key.

The student writes the four functions that decide what a build sends and what it does again:
``match(pattern, path)`` (one ``.dockerignore`` pattern, Go's ``filepath.Match`` plus ``**``),
``excluded(lines, path)`` (a whole ``.dockerignore``: comments, ``!`` exceptions, parent
directories, the last match wins), ``files_checksum(root, sources)`` (what a COPY reads:
content and metadata, not the mtime) and ``step_key(parent_id, instruction, args, files)``.

Steps 1 and 3 try the functions on tables of cases. Step 2 also packs a context directory
with minidocker's own client code (``context.send_context``) using the student's matcher, and
reads the tar it sent. Step 4 runs minidocker's real builder with the student's functions
plugged in (``Builder(..., keys=KeyRules(step_key, files_checksum))`` and the student's
matcher for the context) on a Dockerfile with a COPY, a RUN and another COPY, and builds it
again and again: nothing changed, an mtime changed, an ignored file changed (all hits), one
copied file changed (that step and the ones after it miss). The builds run inside the step's
sandbox against a state root of their own on its tmpfs (busybox made there, ``--network
none``), so the student's cache never meets the machine's.

Spec: Docker's "Build cache" and ".dockerignore file"; moby/patternmatcher; Go's
path/filepath.Match. Used by: ``minidocker lab check 10``; the lab is labs/10-build/.
"""

import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from minidocker.labs.framework import Lab, Step, function, scratch_workspace
from minidocker.labs.sandbox import CheckFailed, mount_scratch

# (pattern, path, matches?) — Go's filepath.Match, plus moby's "**" (any number of dirs)
MATCH_CASES = [
    ("*.log", "debug.log", True), ("*.log", "logs/debug.log", False),
    ("logs/*", "logs/debug.log", True), ("logs/*", "logs/old/debug.log", False),
    ("a?c", "abc", True), ("a?c", "a/c", False), ("[a-c]x", "bx", True),
    ("[a-c]x", "dx", False), ("[^a-c]x", "dx", True), ("\\*x", "*x", True),
    ("\\*x", "ax", False), ("**/*.pyc", "a/b/c.pyc", True), ("**/*.pyc", "c.pyc", True),
    ("build/**", "build/out/x.o", True), ("a/**/z", "a/z", True), ("a/**/z", "a/b/c/z", True),
    ("a/**/z", "a/b/c/y", False), ("Dockerfile", "Dockerfile", True),
    ("Dockerfile", "sub/Dockerfile", False),
]
# (.dockerignore lines, path, excluded?)
IGNORE_CASES = [
    (["*.md"], "README.md", True),
    (["# *.md", ""], "README.md", False),  # a comment, an empty line
    (["*.md", "!README.md"], "README.md", False),  # an exception puts it back
    (["!README.md", "*.md"], "README.md", True),  # ... but the last match wins
    (["node_modules"], "node_modules/lib/x.js", True),  # a directory excludes what is below
    (["node_modules", "!node_modules/keep.js"], "node_modules/keep.js", False),
    (["/secret/../tmp"], "tmp", True),  # cleaned as filepath.Clean does
    (["  *.tmp  "], "a.tmp", True),  # surrounding spaces are not part of the pattern
    (["docs/", "!docs/api.md"], "docs/guide.md", True),
]
CONTEXT_FILES = {"Dockerfile": "FROM busybox\n", "app/main.py": "print('hi')\n",
                 "app/cache.pyc": "\0", "app/sub/util.pyc": "\0", "notes.md": "notes\n",
                 "README.md": "read me\n", "secrets/key": "k\n"}
CONTEXT_IGNORE = "# not the secrets\nsecrets\n**/*.pyc\n*.md\n!README.md\n"
CONTEXT_SENT = [".dockerignore", "Dockerfile", "README.md", "app", "app/main.py", "app/sub"]

DOCKERFILE = """\
FROM busybox
COPY app/ /app/
RUN cat /app/*.txt > /all.txt
COPY notes.txt /notes.txt
CMD ["cat", "/all.txt"]
"""
BUILD_FILES = {"app/a.txt": "a\n", "app/b.txt": "b\n", "app/debug.log": "log 1\n",
               "notes.txt": "notes\n", ".dockerignore": "**/*.log\n"}
STEPS = ["COPY app/", "RUN cat", "COPY notes.txt", "CMD"]


# --- step 1: one pattern ---------------------------------------------------------------------

def check_match(student, scratch) -> str:
    match = function(student, "match")
    for pattern, path, expected in MATCH_CASES:
        if bool(match(pattern, path)) != expected:
            raise CheckFailed(f"match({pattern!r}, {path!r}) is {not expected}, not "
                              f"{expected}{why_match(pattern, path)}")
    return f"{len(MATCH_CASES)} patterns matched as filepath.Match (and **) match them"


def why_match(pattern: str, path: str) -> str:
    if "**" in pattern:
        return ": '**' matches any number of directories, none included ('**/' may be empty)"
    if "/" in path and "*" in pattern or "?" in pattern and "/" in path:
        return ": '*' and '?' never match a '/'"
    if "[" in pattern:
        return ": '[a-c]' is a class of characters, '[^a-c]' its complement"
    if "\\" in pattern:
        return ": a backslash makes the next character literal"
    return ": a pattern matches the whole path, from its start"


# --- step 2: a whole .dockerignore, and the context it sends ----------------------------------

@dataclass
class StudentIgnore:
    """The student's matcher where minidocker's client expects an ``Ignore``."""

    excluded_fn: object
    lines: list[str]

    def excluded(self, path: str):
        return True if self.excluded_fn(list(self.lines), path) else None

    def may_put_back_below(self, directory: str) -> bool:
        return True  # the student's matcher is asked about every path, below excluded dirs too

    @classmethod
    def of(cls, student, directory: Path) -> "StudentIgnore":
        ignore = directory / ".dockerignore"
        lines = ignore.read_text().splitlines() if ignore.exists() else []
        return cls(function(student, "excluded"), lines)


def check_excluded(student, scratch) -> str:
    excluded = function(student, "excluded")
    for lines, path, expected in IGNORE_CASES:
        if bool(excluded(list(lines), path)) != expected:
            raise CheckFailed(f"excluded({lines!r}, {path!r}) is {not expected}, not "
                              f"{expected}{why_excluded(lines)}")
    from minidocker.build.context import send_context

    mount_scratch(scratch)
    folder = write_files(Path(scratch, "context"), {**CONTEXT_FILES,
                                                    ".dockerignore": CONTEXT_IGNORE})
    sent = io.BytesIO()
    send_context(folder, sent, StudentIgnore.of(student, folder))
    sent.seek(0)
    names = sorted(tarfile.open(fileobj=sent).getnames())
    if names != CONTEXT_SENT:
        raise CheckFailed(f"with .dockerignore {CONTEXT_IGNORE!r}, minidocker's client sent "
                          f"{names}, not {CONTEXT_SENT}")
    return f"{len(IGNORE_CASES)} .dockerignore cases right; the context sent: {names}"


def why_excluded(lines: list[str]) -> str:
    if any(line.strip().startswith("#") or not line.strip() for line in lines):
        return ": a line starting with # is a comment, an empty line nothing"
    if any(line.startswith("!") for line in lines):
        return (": each line that matches decides in turn, so the last matching line wins; "
                "a '!' line puts the path back")
    if any(".." in line or line != line.strip() for line in lines):
        return ": strip each line, then clean it as filepath.Clean does (no '..', no '/')"
    return ": a pattern that matches a parent directory excludes everything below it"


# --- step 3: the checksum of what a COPY reads -------------------------------------------------

def check_checksum(student, scratch) -> str:
    checksum = function(student, "files_checksum")
    mount_scratch(scratch)
    root = write_files(Path(scratch, "files"), {"app/a.txt": "a\n", "app/b.txt": "b\n"})
    os.symlink("a.txt", root / "app/link")
    first = checksum(root, ["app"])
    if not isinstance(first, str) or not first:
        raise CheckFailed(f"files_checksum() returned {first!r}: return a string, e.g. "
                          "'sha256:' and a hex digest")
    os.utime(root / "app/a.txt", (1, 1))
    same("a new mtime", checksum(root, ["app"]), first)
    changes = [("a changed content", lambda: (root / "app/b.txt").write_text("B\n")),
               ("a changed mode", lambda: (root / "app/b.txt").chmod(0o600)),
               ("a renamed file", lambda: os.rename(root / "app/b.txt", root / "app/c.txt")),
               ("a symlink's new target", lambda: (os.unlink(root / "app/link"),
                                                   os.symlink("c.txt", root / "app/link"))),
               ("a new empty directory", lambda: (root / "app/empty").mkdir())]
    before = first
    for what, change in changes:
        change()
        after = checksum(root, ["app"])
        if after == before:
            raise CheckFailed(f"files_checksum() did not change after {what}: hash each "
                              "node's path, type, mode, link target and content")
        before = after
    return "unchanged by an mtime; changed by content, mode, name, link target, a new dir"


def same(what: str, got: str, expected: str) -> None:
    if got != expected:
        raise CheckFailed(f"files_checksum() changed after {what}: leave the mtime out "
                          "(a git clone changes every mtime and nothing else)")


# --- step 4: the key, and the real builder with your functions ------------------------------

def check_builds(student, scratch) -> str:
    key = function(student, "step_key")
    base = key("sha256:parent", "COPY a /a", {"X": "1"}, "sha256:files")
    if not isinstance(base, str) or not base:
        raise CheckFailed(f"step_key() returned {base!r}: return a string")
    if key("sha256:parent", "COPY a /a", {"X": "1"}, "sha256:files") != base:
        raise CheckFailed("step_key() gave two keys for the same step: make it deterministic "
                          "(no time, no random, no id())")
    for what, other in (("parent", ("sha256:other", "COPY a /a", {"X": "1"}, "sha256:files")),
                        ("instruction", ("sha256:parent", "COPY b /a", {"X": "1"},
                                         "sha256:files")),
                        ("build args", ("sha256:parent", "COPY a /a", {"X": "2"},
                                        "sha256:files")),
                        ("files checksum", ("sha256:parent", "COPY a /a", {"X": "1"},
                                            "sha256:other"))):
        if key(*other) == base:
            raise CheckFailed(f"step_key() is the same for another {what}: every input "
                              "must change the key")
    if key("p", "RUN x", {"A": "1", "B": "2"}, "") != key("p", "RUN x", {"B": "2", "A": "1"}, ""):
        raise CheckFailed("step_key() depends on the order of the build args: sort them")

    mount_scratch(scratch)
    builds = Builds(student, Path(scratch))
    story = [("a first build", None, ["run"] * 4),
             ("the same again", None, ["cache"] * 4),
             ("app/a.txt's mtime changed", lambda c: os.utime(c / "app/a.txt", (1, 1)),
              ["cache"] * 4),
             ("app/debug.log changed (it is in .dockerignore)",
              lambda c: (c / "app/debug.log").write_text("log 2\n"), ["cache"] * 4),
             ("notes.txt changed", lambda c: (c / "notes.txt").write_text("new notes\n"),
              ["cache", "cache", "run", "run"])]
    for what, change, expected in story:
        if change:
            change(builds.context)
        got = builds.build()
        if got != expected:
            raise CheckFailed(f"after {what}, the steps {STEPS} were {got}, not {expected}"
                              f"{why_build(expected, got)}")
    return ("built 5 times with your key and matcher: run×4; then cache×4 three times "
            "(again, an mtime, an ignored file); then notes.txt changed: cache, cache, run, run")


def why_build(expected: list[str], got: list[str]) -> str:
    if "run" in got and "run" not in expected:
        return (": a step that did not change was done again — is something in the key "
                "that changes between builds (a time, an mtime, a temp path)?")
    return (": a changed step was a cache hit — does the key cover the files checksum, and "
            "does the checksum cover the content?")


class Builds:
    """Builds of DOCKERFILE with minidocker's builder and the student's functions, in a state
    root of their own (on the sandbox's tmpfs)."""

    def __init__(self, student, scratch: Path):
        from minidocker.image.busybox import create_busybox_image

        self.student, self.scratch = student, scratch
        os.environ["MINIDOCKER_ROOT"] = str(scratch / "state")
        create_busybox_image()
        self.context = write_files(scratch / "context", {"Dockerfile": DOCKERFILE,
                                                         **BUILD_FILES})
        self.number = 0

    def build(self) -> list[str]:
        """One build; 'run' or 'cache' for each step after FROM."""
        from minidocker.build import builder, cache, progress
        from minidocker.build.context import receive_context, send_context
        from minidocker.build.parser import parse

        self.number += 1
        received = self.scratch / f"received-{self.number}"
        received.mkdir()
        with tempfile.TemporaryFile(dir=self.scratch) as tar:
            send_context(self.context, tar, StudentIgnore.of(self.student, self.context))
            tar.seek(0)
            context = receive_context(tar, received)
        keys = cache.KeyRules(function(self.student, "step_key"),
                              function(self.student, "files_checksum"))
        view = progress.Quiet()
        try:
            builder.build(parse((self.context / "Dockerfile").read_bytes()), context,
                          builder.BuildOptions(network="none"), view, keys=keys)
            view.log.seek(0)
            printed = view.log.read()
        finally:
            view.close()
        blocks = printed.split("Step ")[2:]  # after FROM
        return ["cache" if "Using cache" in block else "run" for block in blocks]


def write_files(folder: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return folder


LAB = Lab(
    directory="10-build",
    steps=(
        Step(1, "match(): one .dockerignore pattern, as filepath.Match (and **) reads it",
             check_match),
        Step(2, "excluded(): a whole .dockerignore; the context minidocker sends with it",
             check_excluded),
        Step(3, "files_checksum(): what a COPY reads, without the mtimes", check_checksum),
        Step(4, "step_key(); the real builder with your functions: hits and misses",
             check_builds),
    ),
    cumulative=True,
    workspace=lambda: scratch_workspace("10"),
)
