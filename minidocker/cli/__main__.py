"""``python -m minidocker.cli``: the same as the ``minidocker`` command.

Spec: Python's ``-m`` switch (runpy); the docker CLI reference for the commands."""

from minidocker.cli import main

main(prog_name="minidocker")
