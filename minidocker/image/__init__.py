"""Stage 5 — images: names (reference.py), where their root filesystems live (store.py) and
the offline base image (busybox.py)."""

# Docker's PATH for a container whose image sets none (here, not in store.py, so that the
# container stage can use it without loading the store: the monitor stays small)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
