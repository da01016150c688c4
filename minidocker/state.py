"""Where minidocker keeps its state, and how it writes it without ever leaving half a file.

Everything lives under one state root: ``/var/lib/minidocker``, or ``$MINIDOCKER_ROOT`` (tests
and notebooks point it at a temporary directory). Writes are atomic: the new content goes to a
temporary file in the same directory, is flushed to disk, and is renamed over the old name.
rename(2) replaces a name in one step, so a crash (even ``kill -9``) leaves the old file or the
new one, never a mix.

Man pages: rename(2), fsync(2).
Used by: every stage; notebooks 05-images, 07-volumes and 09-security show the state root.
"""

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

DEFAULT_ROOT = "/var/lib/minidocker"


def state_root() -> Path:
    """The state root, from ``$MINIDOCKER_ROOT`` or the default. It is root's alone (0700):
    a container's upper dir may hold a setuid-root file that no host user may reach."""
    root = Path(os.environ.get("MINIDOCKER_ROOT") or DEFAULT_ROOT)
    if os.geteuid() == 0:
        try:
            if root.stat().st_mode & 0o077:  # made by an older version, or by hand
                root.chmod(0o700)
        except FileNotFoundError:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def now() -> str:
    """A timestamp as Docker writes them (RFC 3339, UTC)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_file(path: Path | str, mode: int = 0o600) -> Iterator[BinaryIO]:
    """``with atomic_file(path) as f:`` — write ``f``; ``path`` appears, complete, only when
    the block ends without an error. Until then the bytes live in a temp file next to it
    (same filesystem, so the rename is one step), removed if the block fails."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value) -> None:
    atomic_write(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path):
    return json.loads(path.read_text())
