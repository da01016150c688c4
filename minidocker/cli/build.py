"""``minidocker build`` and ``minidocker builder prune`` (stage 10).

The client's half of ``docker build``: it reads the Dockerfile, packs the context directory
into a tar (leaving out what ``.dockerignore`` names) and hands both to the builder, which
unpacks the tar as untrusted input. ``-`` as the context reads that tar from stdin (or a
Dockerfile alone, with an empty context); ``-f -`` reads the Dockerfile from stdin.
A failed build exits 1, as ``docker build`` does.
"""

import functools
import os
import sys
from pathlib import Path

import click

from minidocker.cli import CONTEXT, Group, image_users, main, require_root
from minidocker.cli.flags import confirm_prune, echo_pruned


def _pairs(values: tuple[str, ...], flag: str, from_environment: bool = False) -> dict:
    """``K=V`` values; for --build-arg a bare ``K`` takes its value from our environment."""
    from minidocker.errors import MinidockerError

    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not key or (not sep and not from_environment):
            raise MinidockerError(f"invalid {flag} {value!r}: use KEY=VALUE")
        if sep or key in os.environ:
            pairs[key] = val if sep else os.environ[key]
    return pairs


class BuildCommand(click.Command):
    """``build``: Docker's boolean flags also take a value (``--rm=false``)."""

    BOOLEANS = {"--rm": "--no-rm", "--force-rm": None, "--no-cache": None, "--quiet": None,
                "--pull": None}

    def parse_args(self, ctx, args):
        spelled = []
        for arg in args:
            flag, sep, value = arg.partition("=")
            if sep and flag in self.BOOLEANS and value.lower() in ("true", "1", "false", "0"):
                if value.lower() in ("true", "1"):
                    spelled.append(flag)
                elif self.BOOLEANS[flag]:
                    spelled.append(self.BOOLEANS[flag])
                continue
            spelled.append(arg)
        return super().parse_args(ctx, spelled)


@main.command(cls=BuildCommand, context_settings=CONTEXT)
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME[:TAG]",
              help="Name and optionally a tag for the image (repeatable).")
@click.option("-f", "--file", "dockerfile", metavar="PATH",
              help="The Dockerfile (default: CONTEXT/Dockerfile; '-' reads stdin).")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE",
              help="Set a build-time variable (an ARG).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Set metadata on the image.")
@click.option("--target", default="", help="Build this stage (and those it needs) only.")
@click.option("--no-cache", is_flag=True, help="Do not use the cache.")
@click.option("--pull", is_flag=True, help="Always pull the FROM images, even those in the "
              "store (a missing one is pulled anyway).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID (the output "
              "comes back if the build fails).")
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image ID here.")
@click.option("--network", default="default", help="The network of the RUN steps: default "
              "(the bridge), none, host, or a network's name.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty"]), default="auto",
              help="plain: the classic lines; tty: a live view; auto: tty on a terminal.")
@click.option("--rm/--no-rm", "remove", default=True, help="Remove the intermediate "
              "containers (--rm=false or --no-rm keeps them).")
@click.option("--force-rm", is_flag=True, help="Always remove the intermediate containers.")
@click.argument("context")
def build(tags, dockerfile, build_args, labels, target, no_cache, pull, quiet, iidfile,
          network, progress, remove, force_rm, context):
    """Build an image from a Dockerfile and a context directory."""
    require_root("build")
    from minidocker.build import builder
    from minidocker.build import progress as views
    from minidocker.cli.registry import ensure_image
    from minidocker.image.store import ImageStore

    options = builder.BuildOptions(
        list(tags), _pairs(build_args, "--build-arg", from_environment=True),
        _pairs(labels, "--label"), target, no_cache, network, remove, force_rm, pull)
    view = views.choose(progress, quiet)
    try:
        with ImageStore().scratch() as scratch:
            parsed, received = _prepare(context, dockerfile, Path(scratch), view)
            image = builder.build(parsed, received, options, view,
                                  functools.partial(ensure_image, out=view.out))
    except BaseException:
        view.failed()
        raise
    finally:
        view.close()
    if quiet:
        click.echo(image.id)
    if iidfile:
        Path(iidfile).write_text(image.id)


def _prepare(context: str, dockerfile: str | None, scratch: Path, view):
    """The parsed Dockerfile and the context as the builder gets it (a tar, unpacked)."""
    from minidocker.build.context import human_kb, receive_context, send_context
    from minidocker.build.parser import parse
    from minidocker.errors import MinidockerError

    stdin = sys.stdin.buffer
    text = stdin.read() if dockerfile == "-" else None
    tar_path, root = scratch / "context.tar", scratch / "context"
    root.mkdir()
    if context == "-":
        if dockerfile == "-":
            raise MinidockerError("only one of the context and -f can be '-' (stdin)")
        data = stdin.read()
        if _is_archive(data):
            tar_path.write_bytes(data)
        else:  # `build - < Dockerfile`: a Dockerfile alone, an empty context
            text = data
            with open(tar_path, "wb") as out:
                send_context(root, out)
    else:
        with open(tar_path, "wb") as out:
            size = send_context(Path(context), out)
        view.say(f"Sending build context to Docker daemon  {human_kb(size)}")
    with open(tar_path, "rb") as stream:
        received = receive_context(stream, root)
    if text is None:
        base = root if context == "-" else Path(context)  # -f: in a tar context, a name in it
        path = base / (dockerfile or "Dockerfile") if context == "-" or not dockerfile \
            else Path(dockerfile)
        try:
            text = path.read_bytes()
        except OSError as err:
            raise MinidockerError(f"unable to prepare context: cannot read the Dockerfile "
                                  f"{path}: {err.strerror} (give another with -f)") from None
        name = path.name
    else:
        name = "Dockerfile"
    return parse(text, file=name), received


def _is_archive(data: bytes) -> bool:
    """A tar (plain, gzip, bzip2 or xz) rather than a Dockerfile, as the docker CLI decides:
    by the compressors' magic bytes, or the tar header's ``ustar`` at offset 257."""
    return (data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00"
            or data[257:262] == b"ustar")


@main.group(cls=Group, context_settings=CONTEXT)
def builder():
    """Manage builds: the build cache is the images of earlier build steps, kept in the
    store with their keys in build-cache.json."""


@builder.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
def builder_prune(force):
    """Remove the build cache: the images of build steps that nothing else uses."""
    require_root("builder prune")
    from minidocker.build.cache import BuildCache
    from minidocker.image.store import ImageStore

    confirm_prune(force, "WARNING! This will remove all dangling build cache. Are you sure you "
                  "want to continue?")
    with image_users() as users:
        echo_pruned({"build cache objects": BuildCache(ImageStore()).prune(users)})
