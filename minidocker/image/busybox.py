"""The offline base image: a busybox root filesystem built from Debian's ``busybox-static``.

One statically linked binary, ``/bin/busybox``, is every tool at once: it looks at the name it
was started as (``argv[0]``). So the image is that binary, a symlink per applet, and the few
files programs expect (``/etc/passwd``, ``/etc/group``, an empty ``/tmp``). The directory is
tarred into one layer and stored like any image (``busybox:latest``). No network needed.

Man pages: busybox(1), passwd(5), group(5).
Used by: ``minidocker setup`` (run by ``./kit setup``); every notebook and lab runs this image.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from minidocker.errors import MinidockerError, NotFound
from minidocker.image.layers import write_layer_tar
from minidocker.image.store import DEFAULT_PATH, Image, ImageStore, new_config
from minidocker.state import now

BUSYBOX = "/bin/busybox"
DIRECTORIES = ["bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr/bin",
               "usr/sbin", "sbin", "var/log", "var/tmp"]
ETC_FILES = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\n"
              "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
              "nobody:x:65534:65534:nobody:/home:/bin/false\n",
    "group": "root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n",
    "hostname": "busybox\n",
    "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "resolv.conf": "",
}


def create_busybox_image(name: str = "busybox:latest") -> Image:
    """Build the busybox image if it is not there yet (or is damaged: build it again)."""
    store = ImageStore()
    with contextlib.suppress(NotFound):
        image = store.find(name)
        if not image.damage:
            return image
    if not _is_static(BUSYBOX):
        raise MinidockerError(f"{BUSYBOX} is missing or not statically linked; install "
                              "Debian's busybox-static (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory() as scratch:
        root, tar_path = Path(scratch) / "root", Path(scratch) / "layer.tar"
        _fill(root)
        with open(tar_path, "wb") as tar:
            write_layer_tar(root, tar)
        with store.transaction():  # from the layer's blob to the image's name
            layer = store.add_layer(tar_path)
            return store.add_image(busybox_config(layer.diff_id), [layer], name)


def busybox_config(diff_id: str) -> dict:
    version = subprocess.run([BUSYBOX], capture_output=True, text=True).stdout.split("\n")[0]
    history = [{"created": now(),
                "created_by": f"minidocker setup: {version.strip()} from busybox-static",
                "comment": "the offline base image"}]
    return new_config([diff_id], {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]}, history)


def _fill(root: Path) -> None:
    for directory in DIRECTORIES:
        (root / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:  # e.g. "usr/bin/wc"
        link = root / applet
        if applet != "bin/busybox" and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/bin/busybox", link)
    for name, content in ETC_FILES.items():
        (root / "etc" / name).write_text(content)


def _is_static(path: str) -> bool:
    """A static ELF binary names no dynamic loader (no PT_INTERP such as ld-linux.so)."""
    if not os.path.exists(path):
        return False
    with open(path, "rb") as f:
        head = f.read(8192)
    return head.startswith(b"\x7fELF") and b"/ld-" not in head
