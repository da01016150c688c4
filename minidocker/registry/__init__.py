"""Stage 11 — distribution: an OCI registry server on distribution's on-disk layout, and
the client that pushes to and pulls from any registry.

The server: ``paths`` makes every path from checked names, ``storage`` streams blobs in and
verifies them, ``manifests`` holds manifests, tags and referrers, ``handlers`` answers the
spec's endpoints one function each, ``auth`` checks Basic credentials or Bearer tokens (and
issues tokens), ``app`` ties them to starlette and uvicorn, ``config`` reads distribution's
config.yml, ``gc`` is distribution's mark-and-sweep garbage collection, ``image`` builds
Docker Hub's ``registry`` image (distribution itself) for ``run -d -p 5000:5000 registry``;
``recording`` serves it from a thread and writes down its HTTP conversation (notebook 11,
lab 11). The server needs nothing from the engine below it but the
error family: a registry stores content, it runs nothing.

The client: ``client`` pings a registry and does the challenge/token dance, ``tls`` decides
whom to trust (certs.d, insecure registries) and makes the kit's CA, ``credentials`` keeps
``login``'s config.json, ``pull`` and ``push`` tell the two stories, ``progress`` prints
Docker's lines. ``pull`` stores into the image store (stage 5) as ``load`` does.

Spec: opencontainers/distribution-spec spec.md. Peers: skopeo, podman, Debian's
``docker-registry`` (distribution 2.8), which can serve the same directory.
Used by: ``minidocker registry``; notebook 11-registries.
"""
