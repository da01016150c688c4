"""Stage 5 — ``images --filter``: which images a listing shows, by Docker's keys.

``dangling`` (true: images without a tag, left behind when a tag moved on), ``label`` (the
image config's Labels), ``reference`` (a ``name[:tag]`` pattern with shell wildcards, e.g.
``busy*`` or ``*:latest``), ``before`` / ``since`` (another image). The rules shared by every
listing are in minidocker/filters.py.

Docker: ``docker images --help``, "Filtering". Used by: ``minidocker images``, (later) the
Engine API's ``GET /images/json``.
"""

import dataclasses
import fnmatch
import functools

from minidocker.filters import Filters

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
    def matching(names: list[str]) -> list[str]:  # tags, and digests' repositories
        return [name for name in names if filters.match(
            "reference", functools.partial(named_tag, name.partition("@")[0]))]
    return [dataclasses.replace(image, tags=matching(image.tags), digests=matching(image.digests))
            for image in chosen]


def matches(image, f: Filters, created) -> bool:
    return (f.match_bool("dangling", not image.tags and not image.digests)
            and f.match_labels((image.config.get("config") or {}).get("Labels") or {})
            and f.match("reference", lambda pattern: named(image, pattern))
            and f.match_created(created_of(image), created))


def created_of(image) -> str:
    return image.config.get("created", "")


def named(image, pattern: str) -> bool:
    """One of the image's tags matches ``pattern``."""
    return any(named_tag(tag, pattern) for tag in image.tags)


def named_tag(tag: str, pattern: str) -> bool:
    """A tag (``busybox:latest``) or its repository (``busybox``) matches ``pattern``."""
    return fnmatch.fnmatchcase(tag, pattern) or fnmatch.fnmatchcase(tag.rpartition(":")[0], pattern)
