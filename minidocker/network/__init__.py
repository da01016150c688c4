"""Stage 8 — bridge networking."""
