"""Every prune asks as docker 28 does (``WARNING! ... [y/N]``, only ``y`` goes on) and a
declined one is cancelled alike: nothing removed, nothing more printed, exit 0."""

import pytest

from minidocker.cli.lifecycle import system_prune_warning
from minidocker.filters import PRUNE_FILTERS, Filters

PRUNES = [("container", "prune"), ("image", "prune"), ("image", "prune", "-a"),
          ("network", "prune"), ("volume", "prune"), ("builder", "prune"),
          ("system", "prune", "--volumes")]


@pytest.mark.parametrize("command", PRUNES, ids=["-".join(c).replace("--", "") for c in PRUNES])
def test_a_declined_prune_is_cancelled_quietly(md, command):
    declined = md(*command, input="yes\n")  # docker reads only y or Y as yes
    assert (declined.returncode, declined.stderr) == (0, "")
    assert declined.stdout.startswith("WARNING! This will remove")
    assert declined.stdout.endswith("Are you sure you want to continue? [y/N] ")


def test_a_declined_prune_keeps_the_container(md, containers):
    name = containers.name()
    assert md("create", "--name", name, "busybox", "true").returncode == 0
    assert md("container", "prune", input="").returncode == 0  # no answer at all: no
    assert md("inspect", "-f", "{{.Name}}", name).stdout == f"/{name}\n"


def test_system_prune_names_its_filters_as_docker_does():
    chosen = Filters.parse(["until=1h", "label=a", "label!=b"], PRUNE_FILTERS, "system prune")
    assert system_prune_warning(False, False, chosen) == (
        "WARNING! This will remove:\n  - all stopped containers\n"
        "  - all networks not used by at least one container\n  - all dangling images\n\n"
        "  Items to be pruned will be filtered with:\n  - label!=b\n  - label=a\n"
        "  - until=1h\n\nAre you sure you want to continue?")
