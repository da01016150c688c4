"""The ``registry`` image: ``docker run -d -p 5000:5000 registry``, made offline.

Docker Hub's ``registry`` image is distribution's one Go program, ``/bin/registry``, with a
``config.yml`` in ``/etc/docker/registry/``, a volume for ``/var/lib/registry`` and port
5000. Debian ships the same program (distribution 2.8) as ``/usr/bin/docker-registry``, so
the kit makes the same image from it, without a network: a build context holding the
program, the shared libraries ``ldd`` says it loads (glibc and its loader: Debian builds it
with cgo), and the config, built ``FROM scratch`` by minidocker's own builder (stage 10).
The image holds nothing else: no shell, no package manager — a container of it is one process.

Why distribution rather than minidocker's own server: it is what the seeds run, it is one
static-ish file (an image of minidocker's server would carry a Python interpreter and its
libraries), and a registry container that is the reference implementation lets the tests
push to it with minidocker's client. Both servers read the same ``config.yml``
(``registry/config.py``): ``minidocker registry serve --config FILE``.

Docs: Docker's "Deploy a registry server", distribution's configuration.md; ldd(1).
Used by: ``minidocker registry image``; tests/test_registry_container.py.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from minidocker.errors import MinidockerError

# the official image's config.yml (distribution's cmd/registry/config-docker.yml)
CONFIG_YML = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

DOCKERFILE = """\
# Docker Hub's "registry" image, from Debian's docker-registry (distribution 2.8)
FROM scratch
COPY rootfs/ /
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/bin/registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
"""

LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def shared_libraries(binary: Path) -> list[Path]:
    """The files the dynamic loader maps for ``binary``, as ``ldd`` lists them (the loader
    itself included; the kernel's vDSO has no file)."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if "not a dynamic executable" in result.stdout + result.stderr:
        return []  # a static build needs nothing more
    if result.returncode != 0:
        raise MinidockerError(f"ldd {binary} failed: {result.stderr.strip()}")
    return [Path(match.group(1)) for line in result.stdout.splitlines()
            if (match := LDD_LINE.search(line))]


def write_context(binary: Path, context: Path) -> Path:
    """The build context: ``Dockerfile`` and ``rootfs/`` (the program, its libraries at the
    paths the loader looks for them, the config, and the empty directories it uses)."""
    rootfs = context / "rootfs"
    for folder in ("bin", "etc/docker/registry", "var/lib/registry", "tmp"):
        (rootfs / folder).mkdir(parents=True, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    shutil.copy2(binary, rootfs / "bin" / "registry")
    for library in shared_libraries(binary):
        target = rootfs / library.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, target)  # the file the symlink names, under the symlink's name
    (rootfs / "etc/docker/registry/config.yml").write_text(CONFIG_YML)
    (context / "Dockerfile").write_text(DOCKERFILE)
    return context


def build_registry_image(binary: Path, scratch: Path, tag: str = "registry"):
    """Build the image with minidocker's builder; returns it (tagged ``tag``)."""
    from minidocker.build.builder import BuildOptions, build
    from minidocker.build.context import BuildContext, Ignore
    from minidocker.build.parser import parse
    from minidocker.build.progress import Plain

    context = write_context(binary, scratch / "context")
    dockerfile = parse((context / "Dockerfile").read_bytes(), file="Dockerfile")
    return build(dockerfile, BuildContext(context, Ignore.of_directory(context)),
                 BuildOptions(tags=[tag], network="none"), Plain())
