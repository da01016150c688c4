"""Stage 11 — distribution: an OCI registry server on distribution's on-disk layout.

``paths`` makes every path from checked names, ``storage`` streams blobs in and verifies
them, ``manifests`` holds manifests, tags and referrers, ``handlers`` answers the spec's
endpoints one function each, ``app`` ties them to starlette and uvicorn, ``gc`` is
distribution's mark-and-sweep garbage collection. The package needs nothing from the engine
below it but the error family: a registry stores content, it runs nothing.

Spec: opencontainers/distribution-spec spec.md. Peers: skopeo, podman, Debian's
``docker-registry`` (distribution 2.8), which can serve the same directory.
Used by: ``minidocker registry``; notebook 11-registries.
"""
