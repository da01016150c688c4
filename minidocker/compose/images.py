"""Stage 13 — the images of a project: built (stage 10), pulled and pushed (stage 11).

A service names an ``image``, or has a ``build`` whose result is tagged ``image`` (or
``<project>-<service>`` when it names none). ``up`` builds what is missing (everything with
``--build``) and pulls what is neither here nor buildable, before any container is made; each
step goes through the same calls as ``minidocker build``, ``pull`` and ``push``.
"""

import sys
from pathlib import Path

from minidocker.compose.model import Service
from minidocker.errors import MinidockerError, NotFound


def present(name: str) -> bool:
    from minidocker.image.store import ImageStore

    try:
        ImageStore().get(name)
        return True
    except NotFound:
        return False


def image_id(name: str) -> str:
    from minidocker.image.store import ImageStore

    return ImageStore().get(name).id


def ensure(service: Service, build_too: bool, say) -> None:
    """The service's image is in the store: built if asked or missing, else pulled."""
    if service.build and (build_too or not present(service.image)):
        build(service, say)
    elif not present(service.image):
        pull(service.image, say)


def build(service: Service, say) -> str:
    """``docker build -t IMAGE --build-arg ... --target ... CONTEXT``; the image's ID."""
    from minidocker.build import builder, progress
    from minidocker.build.context import receive_context, send_context
    from minidocker.build.parser import parse
    from minidocker.image.store import ImageStore

    spec = service.build
    say(f" Service {service.name}  Building")
    args = {k: v for k, v in spec.args.items() if v is not None}
    options = builder.BuildOptions([service.image], args, dict(spec.labels), spec.target)
    view = progress.Plain()
    try:
        with ImageStore().scratch() as scratch:
            tar_path, root = Path(scratch) / "context.tar", Path(scratch) / "context"
            root.mkdir()
            with open(tar_path, "wb") as out:
                send_context(Path(spec.context), out)
            with open(tar_path, "rb") as stream:
                received = receive_context(stream, root)
            dockerfile = Path(spec.context) / spec.dockerfile
            parsed = parse(dockerfile.read_bytes(), file=dockerfile.name)
            image = builder.build(parsed, received, options, view)
    except MinidockerError as error:
        raise MinidockerError(f"service {service.name!r} failed to build: {error}") from None
    finally:
        view.close()
    say(f" Service {service.name}  Built")
    return image.id


def pull(name: str, say, ignore_failures: bool = False) -> None:
    from minidocker.registry import progress
    from minidocker.registry.pull import pull as pull_image

    say(f" Image {name}  Pulling")
    report = progress.for_stream(sys.stderr)
    try:
        pull_image(name, report)
    except MinidockerError as error:
        if not ignore_failures:
            raise MinidockerError(f"cannot pull {name}: {error}") from None
        say(f" Image {name}  Failed: {error}")
    finally:
        report.close()


def push(name: str, say) -> None:
    from minidocker.registry import progress
    from minidocker.registry.push import push as push_image

    say(f" Image {name}  Pushing")
    report = progress.for_stream(sys.stderr)
    try:
        push_image(name, report)
    finally:
        report.close()
