"""``python -m minidocker.cli``: the same as the ``minidocker`` command."""

from minidocker.cli import main

main(prog_name="minidocker")
