"""Stage 5 — images: content-addressed root filesystems with a name.

An image is a stack of layer tars plus a config, stored as blobs named by their SHA-256
(blobs.py) in an OCI image layout (store.py); a name like ``busybox:latest`` is parsed as Docker
parses it (reference.py); layer tars go in and out safely (layers.py); ``save``/``load``/``import``
move whole images (archive.py); ``commit -c`` edits the config (config.py); the offline base
image is built from Debian's busybox (busybox.py).

Specs: opencontainers/image-spec image-layout.md, manifest.md, config.md, layer.md.
Used by: notebook 05-images, lab 05-images (and every stage that runs ``busybox``).
"""

# Docker's PATH for a container whose image sets none (here, not in store.py, so that the
# container stage can use it without loading the store: the monitor stays small)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
