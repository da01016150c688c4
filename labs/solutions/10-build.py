"""Lab 10 — the build cache: a reference solution (spoilers: try the lab first).

The matcher here walks the pattern and the path together, one path segment at a time, as Go's
filepath.Match does; minidocker's own (minidocker/build/context.py) translates each pattern
into a regular expression instead, as moby/patternmatcher does. Both read ``**`` the same way.

Check it: sudo minidocker lab check 10 labs/solutions/10-build.py
"""

import hashlib
import json
import os
import posixpath
import stat
from pathlib import Path


def match(pattern: str, path: str) -> bool:
    """Step 1: segment by segment; ``**`` takes any number of path segments (none included)."""
    return _segments(pattern.split("/"), path.split("/"))


def _segments(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":
        if len(pattern) == 1:
            return True  # a trailing ** matches everything below
        return any(_segments(pattern[1:], path[skip:]) for skip in range(len(path) + 1))
    return bool(path) and _name(pattern[0], path[0]) and _segments(pattern[1:], path[1:])


def _name(pattern: str, name: str) -> bool:
    """One segment: ``*``, ``?``, ``[class]`` and ``\\`` escapes, as in filepath.Match."""
    if not pattern:
        return not name
    head = pattern[0]
    if head == "*":
        return any(_name(pattern[1:], name[skip:]) for skip in range(len(name) + 1))
    if not name:
        return False
    if head == "?":
        return _name(pattern[1:], name[1:])
    if head == "[":
        end = pattern.index("]", 2)
        members, negated = pattern[1:end], pattern[1] == "^"
        if negated:
            members = members[1:]
        inside = any(low <= name[0] <= high for low, high in _ranges(members))
        return inside != negated and _name(pattern[end + 1:], name[1:])
    if head == "\\" and len(pattern) > 1:
        head, pattern = pattern[1], pattern[1:]
    return head == name[0] and _name(pattern[1:], name[1:])


def _ranges(members: str) -> list[tuple[str, str]]:
    """``a-cx`` -> [("a", "c"), ("x", "x")]."""
    found, i = [], 0
    while i < len(members):
        if i + 2 < len(members) and members[i + 1] == "-":
            found.append((members[i], members[i + 2]))
            i += 3
        else:
            found.append((members[i], members[i]))
            i += 1
    return found


def excluded(lines: list[str], path: str) -> bool:
    """Step 2: every matching line decides in turn; a parent directory's match counts."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    decision = False
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = posixpath.normpath("/" + line.lstrip("!").strip()).lstrip("/")
        if any(match(pattern, candidate) for candidate in candidates):
            decision = not exception
    return decision


def files_checksum(root: Path, sources: list[str]) -> str:
    """Step 3: a list of every node (path, type, mode, link target or content hash), hashed."""
    nodes = []
    for source in sources:
        top = Path(root, source)
        paths = [top]
        if top.is_dir() and not top.is_symlink():
            for folder, dirs, files in os.walk(top):
                dirs.sort()
                paths += [Path(folder, name) for name in sorted(dirs + files)]
        for path in paths:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                what = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = ""
            nodes.append([source, str(path.relative_to(top)), stat.S_IFMT(info.st_mode),
                          stat.S_IMODE(info.st_mode), what])
    return "sha256:" + hashlib.sha256(json.dumps(nodes).encode()).hexdigest()


def step_key(parent_id: str, instruction: str, args: dict[str, str], files: str) -> str:
    """Step 4: the four inputs as one JSON object with sorted keys, hashed."""
    material = {"parent": parent_id, "instruction": instruction, "args": args, "files": files}
    return "sha256:" + hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
