"""Stage 13 — compose: many containers as one project, a client of the engine's API.

A Compose file names services, networks and volumes; ``minidocker compose up`` turns it into
the same create/start/connect calls a person would type. Spec: the Compose Specification,
https://github.com/compose-spec/compose-spec/blob/master/spec.md
"""
