"""Stage 5 — the image verbs over the store: ``rmi``, ``image prune``, ``history``, ``inspect``.

An image has names (tags) and may be used by containers. ``rmi NAME`` takes one name away; the
image itself goes only with its last name, and not while a container uses it (``-f`` to
insist); its untagged parents go with it (``--no-prune`` keeps them). ``image prune`` deletes the untagged images no container uses (``-a``: every unused
one; a damaged one always goes) -- but never an image another one was built on (its parent:
a build's earlier steps, the base of a ``commit``), as Docker prunes only the "heads" of its
parent chains: the steps under a tagged build stay its cache; once the head goes, its untagged
parents are heads in turn and follow it. Which containers use which image is a question for stage 6,
above this one: the caller answers it, as ``users`` (image ID -> the IDs of the containers that
use it), and holds the containers lock while these verbs run, so that no create starts using
an image between that answer and the delete. Each verb is one store transaction.

Model: moby's ``daemon/images/image_delete.go`` (its rules for untag vs delete),
``image_prune.go`` and ``image_history.go``. Spec: the OCI image spec's config ``history``.
Used by notebook 05.
"""

from minidocker.errors import Conflict, NotFound
from minidocker.filters import Filters
from minidocker.image.filters import dangling
from minidocker.image.store import ImageStore, tag_named, transaction

Users = dict[str, list[str]]  # image ID -> IDs of the containers that use it


def remove_image(name: str, force: bool, users: Users, prune_parents: bool = True) -> list[str]:
    """``docker rmi``: untag the name given (every name, for an ID); delete the image when its
    last name goes, unless a container still uses it, and then its untagged parents that
    nothing else is built on (``prune_parents``; ``--no-prune`` keeps them). Returns the lines
    Docker prints."""
    with transaction():
        return _remove_image(ImageStore(), name, force, users, prune_parents)


def _remove_image(store: ImageStore, name: str, force: bool, users: Users,
                  prune_parents: bool) -> list[str]:
    image = store.find(name)  # a damaged image too: rmi is how it goes
    tag = tag_named(name, image)
    names = [*image.tags, *image.digests]
    if tag is None and len(image.tags) > 1 and not force:
        raise Conflict(f"unable to delete {image.short_id} (must be forced) - image is "
                       f"referenced in multiple repositories: {', '.join(image.tags)}")
    untag = _names_going(tag, image) if tag else names
    last_name = set(untag) >= set(names)
    used_by = users.get(image.id, [])
    if last_name and used_by and not force:
        raise Conflict(f"unable to remove {name} (must force) - container "
                       f"{used_by[0][:12]} is using its referenced image {image.short_id}; "
                       "remove the container first ('minidocker rm')")
    for name_to_drop in untag:
        store.untag(name_to_drop)
    done = [f"Untagged: {t}" for t in untag]
    if last_name and not used_by:
        store.delete(image)
        done.append(f"Deleted: {image.id}")
        if prune_parents:
            done += _remove_parents(store, image, users)
    return done


def _remove_parents(store: ImageStore, child, users: Users) -> list[str]:
    """After ``rmi`` deleted an image: its parent goes too if it has no name, no container
    and no other child -- then that one's parent, up the chain (moby's image delete: the
    intermediate images of a build go with it)."""
    done = []
    while True:
        images = store.images()
        parent = max((p for p in images if built_on(child, p)), default=None,
                     key=lambda p: len(p.config.get("history", [])))
        if (parent is None or parent.tags or parent.digests or users.get(parent.id)
                or any(built_on(other, parent) for other in images)):  # another child
            break
        store.delete(parent)
        done.append(f"Deleted: {parent.id}")
        child = parent
    return done


def _names_going(name: str, image) -> list[str]:
    """The names an ``rmi NAME`` takes away: NAME, and with the last tag of a repository that
    repository's digests too (moby's rule: a digest alone would keep an image nobody asked
    for)."""
    if "@" in name:
        return [name]
    repository = name.rpartition(":")[0]
    if any(t.rpartition(":")[0] == repository for t in image.tags if t != name):
        return [name]
    return [name, *(d for d in image.digests if d.partition("@")[0] == repository)]


def prune_images(everything: bool, users: Users,
                 chosen: Filters | None = None) -> tuple[list[str], int]:
    """``docker image prune``: untagged images no container uses (``-a``: every unused), and
    damaged ones (``index.json`` names a blob the store lacks): the store is whole again.
    ``chosen`` (``--filter until=24h``, ``label=...``) narrows the unused images removed.
    Heads first, round after round: an image's parent goes only once nothing is built on it.
    The lines to print, and the bytes of the blobs freed."""
    store, removed, reclaimed = ImageStore(), [], 0
    chosen = chosen or Filters()

    def prunable(image, parents: set[str]) -> bool:
        if image.damage:
            return True
        return (image.id not in parents and not users.get(image.id)
                and (everything or dangling(image)) and chosen.match_prune(
                    image.config.get("config", {}).get("Labels") or {},
                    image.config.get("created") or "1970-01-01T00:00:00Z"))

    with transaction():
        while True:
            images = store.images()
            parents = parents_of(images)
            going = [image for image in images if prunable(image, parents)]
            if not going:
                break
            for image in going:
                reclaimed += store.delete(image)
                removed += [f"Untagged: {name}" for name in [*image.tags, *image.digests]]
                removed.append(f"Deleted: {image.id}")
        reclaimed += store.collect_garbage()  # also sweeps what killed writers left
    return removed, reclaimed


def parents_of(images: list) -> set[str]:
    """The IDs of the images some other image was built on."""
    return {parent.id for parent in images for child in images
            if child.id != parent.id and built_on(child, parent)}


def built_on(child, parent) -> bool:
    """Was ``child`` built on ``parent`` (by a build step, a ``commit``)? Docker's store
    records each image's parent; the OCI config shows it too: a child's history and layers
    begin with all of its parent's, and go on (history entries carry their times: no two
    builds share one)."""
    mine, theirs = child.config.get("history", []), parent.config.get("history", [])
    return (0 < len(theirs) < len(mine) and mine[:len(theirs)] == theirs
            and child.diff_ids[:len(parent.diff_ids)] == parent.diff_ids)


def history(name: str) -> list[tuple[str, dict, int]]:
    """``docker history``: (image ID or ``<missing>``, history entry, layer size) per entry,
    newest first. An entry that made a layer has that layer's size; an ``empty_layer`` one
    (a config change) has 0; only the newest row names the image."""
    image = ImageStore().get(name)
    sizes = iter(layer["size"] for layer in image.manifest["layers"])
    entries = [(entry, 0 if entry.get("empty_layer") else next(sizes, 0))
               for entry in image.config.get("history", [])]  # oldest first, like the layers
    entries.reverse()
    return [(image.short_id if i == 0 else "<missing>", entry, size)
            for i, (entry, size) in enumerate(entries)]


def inspect_image(name: str) -> dict:
    """``docker image inspect``: the image as the Engine API shows it."""
    try:
        image = ImageStore().get(name)
    except NotFound:
        raise NotFound(f"No such object: {name} (neither a container, see 'minidocker "
                       "ps -a', nor an image, see 'minidocker images')") from None
    config = image.config
    return {"Id": image.id, "RepoTags": image.tags, "RepoDigests": image.digests,
            "Created": config.get("created"), "Author": config.get("author", ""),
            "Architecture": config.get("architecture"), "Os": config.get("os"),
            "Size": image.size, "Config": config.get("config", {}),
            "RootFS": {"Type": "layers", "Layers": image.diff_ids},
            "Manifest": image.manifest_digest}
