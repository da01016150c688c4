"""``minidocker volume ...`` (stage 7): create, ls, inspect, rm, prune."""

import click  # noqa: F401

from minidocker.cli import CONTEXT, Group, main, require_root  # noqa: F401
