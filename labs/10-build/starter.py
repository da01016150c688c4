"""Lab 10 — the build cache: what a build sends, and what it does again.

A build is fast when it does nothing: the second ``minidocker build`` of the same Dockerfile
prints ``---> Using cache`` for every step, makes no container and writes no layer. Two
decisions make that happen, and you write both here:

  Step 1  match(pattern, path)           one .dockerignore pattern (Go's filepath.Match + **)
  Step 2  excluded(lines, path)          a whole .dockerignore: comments, !, the last match wins
  Step 3  files_checksum(root, sources)  what a COPY reads: content and metadata, not mtimes
  Step 4  step_key(parent, instruction, args, files)   the cache key of one step

The checker tries steps 1-3 on tables of cases, packs a context with minidocker's own client
code and your matcher, then runs minidocker's real builder with your four functions plugged in
(``Builder(..., keys=KeyRules(step_key, files_checksum))``): it builds five times and checks
which steps were cache hits.

    sudo minidocker lab check 10                # this file
    sudo minidocker lab check 10 PATH           # a copy of it

Steps and hints: labs/10-build/README.md. Reading: Docker's "Build cache" and ".dockerignore
file" pages; Go's path/filepath.Match; minidocker/build/cache.py and context.py (after you try).
"""

import hashlib  # noqa: F401  (hashlib.sha256, for steps 3 and 4)
import json  # noqa: F401  (json.dumps, a stable way to hash several values, step 4)
import os  # noqa: F401  (os.walk, os.lstat, os.readlink, step 3)
import posixpath  # noqa: F401  (posixpath.normpath, step 2)
import stat  # noqa: F401  (stat.S_ISREG, stat.S_IMODE..., step 3)
from pathlib import Path


def match(pattern: str, path: str) -> bool:
    """Step 1: does ``pattern`` match the whole ``path`` (relative, '/'-separated)?
    ``*`` is any run of characters but '/', ``?`` one character but '/', ``[a-c]`` and
    ``[^a-c]`` a class, a backslash makes the next character literal, and ``**`` is any number
    of directories (``**/`` may match none)."""
    # TODO Step 1: walk the pattern and the path together (or translate the pattern into a
    #              regular expression), so that the pattern matches the whole path.
    raise NotImplementedError("Step 1: match() is not written yet")


def excluded(lines: list[str], path: str) -> bool:
    """Step 2: is ``path`` left out of the build context by a .dockerignore made of
    ``lines``? Empty lines and ``#`` comments mean nothing; every other line is a pattern
    (stripped, cleaned like filepath.Clean, no leading '/'); a ``!`` line is an exception
    that puts paths back. A pattern that matches a parent directory of ``path`` matches
    ``path`` too. Every matching line decides in turn: the last one wins."""
    # TODO Step 2: for each pattern line, in order: if it matches path or one of its parent
    #              directories, the path is now excluded (or, for a '!' line, included).
    raise NotImplementedError("Step 2: excluded() is not written yet")


def files_checksum(root: Path, sources: list[str]) -> str:
    """Step 3: one string that changes when anything a COPY of ``sources`` (paths in ``root``)
    would copy changes: a name, a type, a mode, a symlink's target, a file's content — and
    that does not change when only an mtime does."""
    # TODO Step 3: walk each source (sorted, so the order is always the same) and feed every
    #              node's relative path, type, mode, link target and content into one hash.
    raise NotImplementedError("Step 3: files_checksum() is not written yet")


def step_key(parent_id: str, instruction: str, args: dict[str, str], files: str) -> str:
    """Step 4: the cache key of one build step: the same for the same parent image, the same
    instruction (after expansion), the same build args it uses and the same files checksum;
    different when any of them differs."""
    # TODO Step 4: hash the four of them together, in a form that cannot be ambiguous and
    #              that does not depend on the order of the args.
    raise NotImplementedError("Step 4: step_key() is not written yet")
