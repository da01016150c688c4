"""Stage 12 — the daemon: minidocker speaks the Docker Engine API on a unix socket, so the
real docker CLI, docker-py and compose drive it unchanged.

It is a *front end*, like the CLI: each endpoint reads Docker's JSON, fills the engine's typed
``Config``/``HostConfig`` (translate.py) and calls the same engine functions the CLI calls —
``create``, ``lifecycle.start/stop/kill/rm``, ``exec_in``, the image store and its verbs, the
network and volume stores. Nothing here creates, starts or tears down a container by itself:
the containers it starts are all watched by one *monitor host*, a process apart (one select
loop for all of them, container/monitor.py), so stopping the daemon loses nothing and the next
one finds them again from their records. What is new is only the HTTP conversation: the routes (app.py), one handler per
endpoint (system, containers, execs, images, builds, distribution, networks, volumes), Docker's
error body (errors.py), the hijacked attach stream (hijack.py), and the streamed JSON progress
of long image operations (progress.py).

Spec: Docker Engine API v1.50 (docs.docker.com/reference/api/engine/version/v1.50/).
Model: moby ``api/server/router/`` (one router per section, one handler per route).
Used by: ``minidocker daemon`` (cli/daemon.py); tests/test_daemon*.py.
"""
