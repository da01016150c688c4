"""Stage 7 — volumes: data that lives outside the container's union filesystem."""
