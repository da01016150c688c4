"""The CLI's start-up budget: ``minidocker run --rm --network none`` imports only what it uses.

Every command module registers itself when the CLI starts, so one module-level import of a
heavy library puts it on every command's path. ``python -X importtime`` lists each module a
process imports (one line each on stderr: ``import time: self | cumulative | name``); the
test runs the real command with it and fails on any module below that ``run`` without a
network has no use for. See bench/README.md ("CLI start-up") for what each one cost.
"""

import subprocess

from tests.conftest import MINIDOCKER

HEAVY = {
    "rich": "tables and colours: listings only",
    "pyroute2": "netlink: the bridge only, not --network none",
    "httpx": "the registry client: pull and push",
    "starlette": "the daemon",
    "uvicorn": "the daemon",
    "yaml": "compose files",
    "jinja2": "templates",
    "tarfile": "the layer writer and reader: commit, save, load, pull",
    "gzip": "layers' compression",
    "decimal": "healthcheck durations",
    "minidocker.image.layers": "the layer writer and reader",
    "minidocker.image.archive": "save, load, import",
    "minidocker.build": "build",
    "minidocker.registry": "pull, push, the registry",
    "minidocker.daemon": "the daemon",
    "minidocker.compose": "compose",
    "minidocker.cli.compose": "the other commands' modules (cli/__init__.py COMMAND_MODULES)",
    "minidocker.cli.swarm": "the other commands' modules",
    "minidocker.cli.build": "the other commands' modules",
    "minidocker.cli.daemon": "the other commands' modules",
    "minidocker.cli.system": "the other commands' modules",
}


def imported_by(*args: str) -> set[str]:
    """The modules ``minidocker ARGS...`` imported, from ``-X importtime``'s report."""
    command = [MINIDOCKER[0], "-X", "importtime", *MINIDOCKER[1:], *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2} - {"imported package"}


def heavy_in(modules: set[str], budget: dict[str, str]) -> dict[str, str]:
    return {name: why for name, why in budget.items()
            if any(m == name or m.startswith(name + ".") for m in modules)}


def test_run_without_a_network_imports_nothing_heavy():
    modules = imported_by("run", "--rm", "--network", "none", "busybox", "true")
    assert "minidocker.container.start" in modules, "the report was not parsed"
    heavy = heavy_in(modules, HEAVY)
    assert not heavy, (f"'run --network none' imports {heavy}: import them inside the "
                       "function that needs them")


def test_run_on_the_bridge_imports_only_pyroute2s_rtnetlink_messages():
    """pyroute2's own ``__init__`` imports every netlink family it knows, and its ``IPRoute``
    an asyncio loop; network/netlink.py loads the rtnetlink message classes alone."""
    modules = imported_by("run", "--rm", "busybox", "true")
    assert "pyroute2.netlink.rtnl.ifinfmsg" in modules, "the report was not parsed"
    budget = {name: why for name, why in HEAVY.items() if name != "pyroute2"}
    budget.update(dict.fromkeys(("pyroute2.ipdb", "pyroute2.ndb", "pyroute2.conntrack",
                                 "pyroute2.ethtool", "pyroute2.iwutil", "pyroute2.ipvs",
                                 "pyroute2.iproute", "pyroute2.nslink", "asyncio"),
                                "what the bridge's netlink messages do not need"))
    heavy = heavy_in(modules, budget)
    assert not heavy, f"'run' on the bridge imports {heavy}"


def test_reading_records_loads_no_seccomp():
    """``ps`` reads every record; stage 9's options stay data there (the seccomp compiler and
    its BPF are for a process that starts)."""
    created = subprocess.run([*MINIDOCKER, "create", "--cap-drop", "NET_RAW", "busybox"],
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    try:
        modules = imported_by("ps", "-a")
        assert "minidocker.container.records" in modules, "the report was not parsed"
        assert not {m for m in modules if m.startswith("minidocker.security")}
    finally:
        subprocess.run([*MINIDOCKER, "rm", created.stdout.strip()], capture_output=True)
