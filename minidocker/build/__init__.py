"""Stage 10 — builds: from a Dockerfile to an image, one step at a time.

A Dockerfile is read in two layers, as BuildKit reads it. ``parser.py`` turns lines into nodes
(directives, comments, continuation lines, heredocs; each instruction's arguments are read by
``arguments.py``), held to BuildKit's own parser test corpus. ``instructions.py`` gives each
node its meaning — a typed ``Run``, ``Copy``, ``Env``... — and groups them into stages, one
per ``FROM``. ``shell.py`` is the small shell lexer that expands ``$variables`` in the
instructions Docker expands. The builder runs the stages on the engine below (stage 6).

Spec: moby/buildkit frontend/dockerfile/docs/reference.md.
Used by: notebook 10-builds, lab 10-build.
"""
