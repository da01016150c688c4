"""What ``minidocker run`` loads: every module imported is start-up time for each command (and
memory for a detached container's monitor, watch.py). Two budgets, each checked on the real
command in the session's lab host, by reading ``sys.modules`` as the interpreter exits:

* ``run --rm --network none`` imports no module it does not use: no terminal UI (rich), no
  HTTP client or server (httpx, starlette, uvicorn), no templates or YAML (jinja2, yaml), no
  netlink (pyroute2: only a network needs it);
* a detached container's watcher, once the monitor has exec'd it, holds only relay.py and
  its few friends: not the engine.
"""

import subprocess
import sys
import textwrap
import time

from minidocker.container import records, watch

from .conftest import TIMEOUT_SCALE

HEAVY = ("rich", "httpx", "starlette", "uvicorn", "jinja2", "yaml", "pyroute2")
ENGINE = ("minidocker.container.start", "minidocker.container.records", "minidocker.image",
          "minidocker.cgroups", "minidocker.security", "minidocker.network", "dataclasses",
          "pathlib")

PROBE = textwrap.dedent("""
    import atexit, runpy, sys
    out = sys.argv.pop(1)
    atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
    sys.argv[0] = "minidocker"
    runpy.run_module("minidocker.cli", run_name="__main__", alter_sys=True)
""")


def top_level(names: list[str], of: tuple[str, ...]) -> set[str]:
    return {name for name in names for package in of
            if name == package or name.startswith(package + ".")}


def test_run_network_none_imports_nothing_heavy(tmp_path):
    out = tmp_path / "modules"
    result = subprocess.run([sys.executable, "-c", PROBE, str(out), "run", "--rm", "--network",
                             "none", "busybox", "true"], capture_output=True, text=True,
                            timeout=60 * TIMEOUT_SCALE)
    assert result.returncode == 0, result.stderr
    modules = out.read_text().split()
    assert "minidocker.container.start" in modules  # the probe saw a real run
    assert top_level(modules, HEAVY) == set()


def test_the_watcher_imports_no_engine():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import minidocker.container.watch; "
            "print(\"\\n\".join(sys.modules))")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code, watch.PACKAGE_ROOT],
                            capture_output=True, text=True, check=True)
    modules = result.stdout.split()
    assert "minidocker.container.relay" in modules
    assert top_level(modules, ENGINE + HEAVY) == set()


def test_a_detached_monitor_becomes_the_watcher(containers):
    """The real thing: the monitor of ``run -d`` exec's the watcher (same PID), and that
    process maps none of the engine's C extensions (ctypes for the syscalls, OpenSSL's
    hashlib for IDs)."""
    name = containers.run_d("busybox", "sleep", "60")
    monitor = records.find(name).State["MonitorPid"]
    deadline = time.monotonic() + 30 * TIMEOUT_SCALE
    while b"minidocker.container.watch" not in read(f"/proc/{monitor}/cmdline"):
        assert time.monotonic() < deadline, "the monitor never exec'd the watcher"
        time.sleep(0.05)
    maps = read(f"/proc/{monitor}/maps").decode()
    assert "_ctypes" not in maps and "_hashlib" not in maps


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
