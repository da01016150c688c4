"""Stage 13 — compose: many containers as one project, a client of the engine's API.

A Compose file names services, networks and volumes; ``minidocker compose up`` turns it into
the same create/start/connect calls a person would type. Spec: the Compose Specification,
https://github.com/compose-spec/compose-spec/blob/master/spec.md

The modules in the order a command uses them: ``loader`` (files, ``.env``, names, profiles) with
``interpolation``, ``schema`` (every key checked, one canonical form) and ``merge`` (several
``-f`` files); ``order`` (``depends_on``); ``model`` (typed services, the config hash);
``convert`` (a service as the engine's ``Config``/``HostConfig`` and Compose's labels);
``images`` (build, pull, push); ``project`` (up, down, converge). Used by: ``minidocker
compose`` (cli/compose.py), notebook 13-compose, lab 13-compose.
"""
