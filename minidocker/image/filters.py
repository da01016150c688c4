"""Stage 5 — ``images --filter``: which images a listing shows, by Docker's keys.

``dangling`` (true: images without a tag, left behind when a tag moved on or pulled by
digest only), ``label`` (the image config's Labels), ``reference`` (a pattern for a name --
``busybox:latest``, ``busybox@sha256:...`` -- or its repository, with Go's ``path.Match``
wildcards: ``busy*``, ``*:latest``; ``*`` stops at ``/``), ``before`` / ``since`` (another
image). The rules shared by every listing are in minidocker/filters.py.

Docker: ``docker images --help``, "Filtering"; moby's ``daemon/images/images.go`` and
``reference.FamiliarMatch``. Used by: ``minidocker images``, the Engine API's
``GET /images/json`` (daemon/images.py).
"""

import dataclasses
import functools

from minidocker.filters import Filters, path_match

IMAGE_FILTERS = ("before", "dangling", "label", "reference", "since")


def parse(items) -> Filters:
    return Filters.parse(items, IMAGE_FILTERS, "images")


def select(images: list, filters: Filters, store) -> list:
    """The images every filter matches; ``store`` finds those ``before``/``since`` name. With
    ``reference``, an image keeps only its names (tags, repository digests) that match, as
    Docker lists it: busybox tagged ``other/app`` too shows one row for ``--filter
    reference=busybox``, not two."""
    created = functools.cache(lambda name: created_of(store.get(name)))
    chosen = [image for image in images if matches(image, filters, created)]
    if "reference" not in filters:
        return chosen
    return [dataclasses.replace(image, tags=[t for t in image.tags if referenced(t, filters)],
                                digests=[d for d in image.digests if referenced(d, filters)])
            for image in chosen]


def matches(image, f: Filters, created) -> bool:
    return (f.match_either("dangling", if_true=dangling(image),
                           if_false=bool(image.tags or image.digests))
            and f.match_labels((image.config.get("config") or {}).get("Labels") or {})
            and ("reference" not in f
                 or any(referenced(name, f) for name in image.tags + image.digests))
            and f.match_created(created_of(image), created))


def dangling(image) -> bool:
    """Docker's dangling image (moby's image store, as dockerd 20.10 lists and prunes): one
    without a tag -- pulled by digest only too. ``dangling=false`` shows the images with any
    name, a tag or a repository digest, so one pulled by digest only is in both lists."""
    return not image.tags


def created_of(image) -> str:
    return image.config.get("created", "")


def referenced(name: str, f: Filters) -> bool:
    """One of the ``reference=`` patterns matches the name -- a tag ``busybox:latest`` or a
    repository digest ``busybox@sha256:...`` -- or its repository ``busybox``."""
    repository = name.partition("@")[0] if "@" in name else name.rpartition(":")[0]
    return f.match("reference", lambda pattern: path_match(pattern, name)
                   or path_match(pattern, repository))
