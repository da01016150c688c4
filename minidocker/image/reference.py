"""Image references, parsed the way Docker parses them.

``busybox`` means ``busybox:latest``; ``busybox:1.36`` names a tag; a registry host comes first
when the first component has a ``.`` or ``:`` or is ``localhost`` (``localhost:5000/team/app:v1``);
``@sha256:<64 hex>`` pins a digest. Names are lowercase; tags are at most 128 characters.

Spec: the grammar in distribution's ``reference`` package (docs: "docker image tag").
Used by: every command that names an image; notebook 05-images (``tag``, ``images``).
"""

import re
from dataclasses import dataclass

from minidocker.errors import MinidockerError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?"
_NAME = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    repository: str  # e.g. "busybox" or "localhost:5000/team/app"
    tag: str | None = "latest"
    digest: str | None = None

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def short_name(name: str) -> str:
    """A name as Docker shows it: ``docker.io/library/busybox:latest`` is ``busybox:latest``."""
    for implied in ("docker.io/library/", "docker.io/"):
        if name.startswith(implied):
            return name[len(implied):]
    return name


def parse_reference(text: str) -> Reference:
    """Parse ``[registry/]name[:tag][@digest]``; bad input is a clear error."""
    rest, digest = short_name(text), None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise _invalid(text, "a digest looks like sha256:<64 lowercase hex digits>")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        if not _TAG.match(tag):
            raise _invalid(text, "a tag has letters, digits, '_', '.', '-' (at most 128)")
    match = _NAME.match(name)
    if not match:
        hint = "repository names must be lowercase" if name.lower() != name else \
            "use letters, digits and the separators '.', '_', '-' and '/'"
        raise _invalid(text, hint)
    return Reference(name, tag or (None if digest else "latest"), digest)


class InvalidReference(MinidockerError):
    """Text that is no image reference (docker/cli: "invalid reference format")."""


def _invalid(text: str, hint: str) -> InvalidReference:
    return InvalidReference(f'invalid reference format: "{text}": {hint}')
