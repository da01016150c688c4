"""Commands on one container's files and resources: ``cp``, ``stats``, ``update``.

``cp`` is container/archive.py (both ways, the same safe archive code as the Engine API's
``/containers/{id}/archive``); ``stats`` reads each container's cgroup through the driver's
``stats()`` (stage 3) and draws a live table with rich, as ``docker stats`` does; ``update``
writes new limits into a running container's cgroup and its record.

Docker: ``docker cp --help``, ``docker stats --help``, ``docker update --help``.
"""

import click

from minidocker.cli import CONTEXT, main, require_root


@main.command(context_settings=CONTEXT)
@click.argument("source")
@click.argument("destination")
def cp(source, destination):
    """Copy files between a container and the host.

    \b
      minidocker cp CONTAINER:SRC_PATH DEST_PATH|-
      minidocker cp SRC_PATH CONTAINER:DEST_PATH
    SRC_PATH/. copies a directory's contents; a DEST_PATH ending in / must be a directory.
    """
    require_root("cp")
    from minidocker.container import archive, lifecycle
    from minidocker.errors import MinidockerError

    inside_src, inside_dst = _split_container(source), _split_container(destination)
    if bool(inside_src) == bool(inside_dst):
        raise MinidockerError("copying between containers or between host paths is not "
                              "supported: one of SRC and DEST must be CONTAINER:PATH")
    if inside_src:
        name, path = inside_src
        archive.copy_from(lifecycle.find(name), path, destination)
    else:
        name, path = inside_dst
        archive.copy_to(lifecycle.find(name), source, path)


def _split_container(arg: str) -> tuple[str, str] | None:
    """``CONTAINER:PATH`` -> (container, path); a local path (with ``/`` or ``.`` before any
    ``:``) -> None, as docker/cli's ``splitCpArg``."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None
    name, _, path = arg.partition(":")
    return (name, path) if name and "/" not in name else None
