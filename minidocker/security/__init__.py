"""Stage 9 — least privilege."""
