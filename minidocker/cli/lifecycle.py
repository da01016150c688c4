"""The lifecycle commands (stage 6): create, start, logs, attach, exec, stop, kill, ..."""

import click  # noqa: F401

from minidocker.cli import CONTEXT, Group, main, require_root  # noqa: F401
