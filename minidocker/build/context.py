"""The build context: the files a build may COPY, sent as one tar stream, as Docker sends it.

``docker build DIR`` never lets the builder read DIR. The client walks DIR, leaves out what
``.dockerignore`` names, and sends the rest as a tar ("Sending build context to Docker daemon
N kB"); the builder unpacks that tar in a directory of its own and COPY reads only there. So
the two sides meet at a byte stream, and the builder treats it as untrusted input: it is
unpacked by the layer extractor (image/layers.py), which refuses ``..``, absolute paths and
writes through symlinks, and stops at a size cap.

``.dockerignore`` holds one pattern a line (``#`` comments). A pattern is Go's
``filepath.Match`` (``*`` and ``?`` never match ``/``, ``[a-z]`` classes, ``\\`` escapes) plus
``**``, which matches any number of directories; a pattern that matches a directory excludes
everything under it. A line starting with ``!`` is an exception: it puts files back. For each
path the *last* matching line wins.

Spec: Docker's "Build context" and ".dockerignore file" (docs.docker.com/build/concepts/
context), moby/patternmatcher (patternmatcher.go), Go's path/filepath.Match.
Used by: the builder, ``minidocker build``, lab 10-build (the matcher).
"""

import os
import posixpath
import re
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from minidocker.errors import MinidockerError
from minidocker.image.layers import extract_layer

MAX_CONTEXT_BYTES = 2 << 30  # 2 GiB unpacked: a build context is untrusted input
IGNORE_FILE = ".dockerignore"


# --- .dockerignore ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Pattern:
    """One line of ``.dockerignore``, compiled: ``text`` as cleaned, ``exception`` for ``!``."""

    text: str
    exception: bool
    regex: re.Pattern
    line: int


def compile_pattern(text: str) -> re.Pattern:
    """A ``.dockerignore`` pattern as a regular expression over slash-separated paths
    (moby/patternmatcher's ``compile``): ``*`` -> ``[^/]*``, ``?`` -> ``[^/]``, ``**/`` -> any
    number of directories, ``**`` at the end -> anything; ``[...]`` is a class, ``\\`` escapes."""
    regex, i = "^", 0
    while i < len(text):
        ch = text[i]
        if text.startswith("**", i):
            i += 2
            if text.startswith("/", i):
                i += 1  # "**/" is "**": the slash is eaten, so zero directories match too
            regex += ".*" if i == len(text) else "(.*/)?"
            continue
        if ch == "*":
            regex += "[^/]*"
        elif ch == "?":
            regex += "[^/]"
        elif ch == "\\" and i + 1 < len(text):
            i += 1
            regex += re.escape(text[i])
        elif ch == "[":
            end = text.find("]", i + 2 if text.startswith(("[^", "[]"), i) else i + 1)
            if end < 0:
                raise MinidockerError(f"syntax error in pattern {text!r}: a '[' without ']'")
            regex += "[" + text[i + 1:end].replace("\\", "\\\\") + "]"
            i = end
        else:
            regex += re.escape(ch)
        i += 1
    return re.compile(regex + "$", re.DOTALL)


def within(root: Path, relative: str) -> bool:
    """Does ``root/relative``, its symlinks followed, stay inside ``root``? (A context is
    untrusted: ``Dockerfile -> /etc/shadow`` must not make the daemon read the host's.)"""
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, relative))
    return real == real_root or real.startswith(real_root + os.sep)


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for a path in the context, seen from its root: no ``.``, no
    doubled slashes, ``..`` resolved and never above the root, no leading slash."""
    return posixpath.normpath("/" + path).lstrip("/") or "."


@dataclass
class Ignore:
    """The patterns of one ``.dockerignore``; ``excluded(path)`` is the line that excludes a
    path, or None."""

    patterns: list[Pattern] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Ignore":
        patterns = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            body = clean(line[1:].strip() if exception else line)
            patterns.append(Pattern(body, exception, compile_pattern(body), number))
        return cls(patterns)

    @classmethod
    def of_directory(cls, directory: Path) -> "Ignore":
        path = Path(directory) / IGNORE_FILE
        if not path.is_file() or not within(Path(directory), IGNORE_FILE):
            return cls()  # none, or a symlink out of the context: never read a host file
        return cls.parse(path.read_text(errors="replace"))

    def excluded(self, path: str) -> Pattern | None:
        """The pattern that excludes ``path`` (relative, slash-separated), or None. A pattern
        matching a parent directory matches the path too; the last matching line decides."""
        path = clean(path)
        parents = [path, *(path.rsplit("/", n)[0] for n in range(1, path.count("/") + 1))]
        decided = None
        for pattern in self.patterns:
            if any(pattern.regex.match(p) for p in parents):
                decided = None if pattern.exception else pattern
        return decided

    def may_put_back_below(self, directory: str) -> bool:
        """Whether an exception could bring back something under an excluded ``directory``:
        then the walk must go in (``node_modules`` excluded, ``!node_modules/keep`` kept)."""
        return any(p.exception and (p.text.startswith(directory + "/") or "*" in p.text)
                   for p in self.patterns)


# --- the client's side: a directory becomes the tar stream --------------------------------------

def included_paths(directory: Path, ignore: Ignore) -> list[str]:
    """The context's paths that ``.dockerignore`` lets through, sorted, directories first."""
    found: list[str] = []

    def walk(relative: str) -> None:
        for name in sorted(os.listdir(directory / relative if relative else directory)):
            path = f"{relative}/{name}" if relative else name
            is_dir = stat.S_ISDIR(os.lstat(directory / path).st_mode)
            if ignore.excluded(path) is None:
                found.append(path)
            elif not (is_dir and ignore.may_put_back_below(path)):
                continue
            if is_dir:
                walk(path)

    walk("")
    return found


def send_context(directory: Path, out: BinaryIO, ignore: Ignore | None = None) -> int:
    """Write the context ``directory`` as a tar stream (what the client sends); returns its
    size in bytes. Symlinks are sent as symlinks, never followed. ``ignore`` decides what is
    left out: the directory's ``.dockerignore`` unless given another matcher (lab 10-build
    gives the student's: anything with ``excluded(path)`` and ``may_put_back_below(dir)``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MinidockerError(f"unable to prepare context: path {str(directory)!r} not found "
                              "(give the directory holding your files, e.g. '.')")
    if ignore is None:
        ignore = Ignore.of_directory(directory)
    start = out.tell()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in included_paths(directory, ignore):
            info = tar.gettarinfo(str(directory / path), arcname=path)
            if info.isreg():
                with open(directory / path, "rb") as content:
                    tar.addfile(info, content)
            elif info.isdir() or info.issym() or info.islnk() or info.isfifo():
                tar.addfile(info)
    return out.tell() - start


def human_kb(size: int) -> str:
    """Docker's "Sending build context to Docker daemon  2.048kB" size."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.4g}{unit}"
    return f"{size}B"


# --- the builder's side: the tar stream becomes a directory to COPY from ------------------------

@dataclass
class BuildContext:
    """The unpacked context the builder reads, and the ``.dockerignore`` it was filtered by
    (so that a COPY of an ignored file can say why it is missing)."""

    root: Path
    ignore: Ignore

    def source(self, path: str, instruction: str) -> Path:
        """A COPY/ADD source inside the context (``..`` cannot climb out: the path is cleaned
        as if the context were ``/``); a missing one is an error naming it."""
        relative = clean(path.lstrip("/"))
        full = self.root if relative == "." else self.root / relative
        if os.path.lexists(full):
            return full
        pattern = self.ignore.excluded(relative)
        why = (f"excluded by .dockerignore (line {pattern.line}: {pattern.text})" if pattern
               else "not found in build context")
        raise MinidockerError(f"{instruction} failed: file {why}: stat {path}: file does not "
                              "exist")

    def matches(self, pattern: str, instruction: str) -> list[str]:
        """A COPY/ADD source as paths in the context: itself (it must exist), or what its
        wildcards (``*.py``, ``src/?``, ``[ab]*``) match, by ``filepath.Match`` rules."""
        relative = clean(pattern.lstrip("/"))
        if not any(ch in relative for ch in "*?["):
            self.source(pattern, instruction)  # missing or ignored: say which
            return [relative]
        regex = compile_pattern(relative)
        found = sorted(os.path.relpath(os.path.join(folder, name), self.root)
                       for folder, dirs, files in os.walk(self.root) for name in dirs + files)
        matches = [path for path in found if regex.match(path)]
        if not matches:
            raise MinidockerError(f"{instruction} failed: no source files were specified "
                                  f"({pattern} matches nothing in the build context)")
        return matches


def receive_context(stream: BinaryIO, root: Path, max_bytes: int = MAX_CONTEXT_BYTES) -> BuildContext:
    """Unpack a context tar stream into ``root`` (an empty directory), safely and capped."""
    extract_layer(stream, Path(root), max_bytes=max_bytes)
    return BuildContext(Path(root), Ignore.of_directory(Path(root)))
