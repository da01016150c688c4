"""``ADD https://...``: a file the builder downloads itself, before the step.

A URL source is fetched by the builder (not in a container), into a directory of its own, and
then copied like a file of the context: named after the URL's last path segment (or the
destination when it does not end in ``/``), mode 0600 as Docker gives it, its mtime from the
``Last-Modified`` header. A remote archive is *not* unpacked (only local ones are).
``--checksum=sha256:...`` is checked before the file is used. The download is capped in size:
a URL is untrusted input too.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md ("ADD", "Adding files from a URL",
"ADD --checksum").
Used by: the builder.
"""

import email.utils
import hashlib
import os
import posixpath
from pathlib import Path
from urllib.parse import urlparse

from minidocker.errors import MinidockerError

MAX_DOWNLOAD = 1 << 30  # 1 GiB


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def download(url: str, folder: Path, checksum: str = "") -> str:
    """Fetch ``url`` into ``folder``; returns the file's name there."""
    import httpx  # here: only a build with ADD <url> needs it

    name = posixpath.basename(urlparse(url).path.rstrip("/")) or "download"
    digest, size, target = hashlib.sha256(), 0, folder / name
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response, \
                open(target, "wb") as out:
            if response.status_code != 200:
                raise MinidockerError(f"ADD failed: {url}: HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_DOWNLOAD:
                    raise MinidockerError(f"ADD failed: {url} is larger than "
                                          f"{MAX_DOWNLOAD} bytes")
                digest.update(chunk)
                out.write(chunk)
            modified = response.headers.get("last-modified")
    except httpx.HTTPError as err:
        raise MinidockerError(f"ADD failed: cannot download {url}: {err}") from None
    if checksum and checksum != f"sha256:{digest.hexdigest()}":
        raise MinidockerError(f"ADD failed: {url}: the content's digest is "
                              f"sha256:{digest.hexdigest()}, not {checksum} (--checksum)")
    os.chmod(target, 0o600)
    if modified:
        stamp = email.utils.parsedate_to_datetime(modified).timestamp()
        os.utime(target, (stamp, stamp))
    return name
