"""Stage 5 — images: names (reference.py), where their root filesystems live (store.py) and
the offline base image (busybox.py)."""
