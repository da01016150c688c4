"""Stage 5 (first step) — finding an image's root filesystem by name.

Until the OCI image store lands, an image is a plain root directory under the state root,
named like the image it stands for: ``$MINIDOCKER_ROOT/images/busybox:latest/``. The command
line is already Docker's, so nothing a student types changes when real layers arrive.
"""

from pathlib import Path

from minidocker.errors import NotFound
from minidocker.image.reference import Reference, parse_reference
from minidocker.state import state_root


def images_dir() -> Path:
    return state_root() / "images"


def image_root(reference: Reference) -> Path:
    return images_dir() / f"{reference.repository}:{reference.tag or 'latest'}"


def list_images() -> list[str]:
    """Names of the images present, like ``busybox:latest``."""
    if not images_dir().is_dir():
        return []
    return sorted(str(p.relative_to(images_dir())) for p in images_dir().rglob("*:*")
                  if p.is_dir() and (p / "bin").exists())


def resolve_image(name: str) -> tuple[Reference, Path]:
    """The reference and root directory of an image, or a NotFound that says what exists."""
    reference = parse_reference(name)
    root = image_root(reference)
    if not root.is_dir():
        present = ", ".join(list_images()) or "none"
        raise NotFound(f"Unable to find image '{reference}' locally (images here: {present}). "
                       "Create the base image with 'minidocker setup' (or 'sudo ./kit setup').")
    return reference, root
