"""Every step of every lab fails on a solution that lacks exactly that step's work.

A checker that passes a step the student has not done is worse than no checker. It happens when
the environment already provides what the step should make: ``ip_forward`` inherited from the
host, ``lo`` already up, mounts already private, a controller already enabled. So each lab's
reference solution is broken once per row of the table below, and the checker, run on that one
step alone (as ``test_lab07`` does: not cumulative), must say FAIL for it:

- ``emptied``: the step's own functions (those whose starter stub says "Step N", or whose
  docstring starts so) lose their body, which becomes ``return None``; derived from the starter,
  so a new lab or step is covered without a new row;
- ``without``: one line of the step's work removed (``right`` -> ``wrong``), for the parts of a
  step that the environment could provide.
"""

import ast
import re
from pathlib import Path

import pytest

from minidocker import cgroups, labs
from minidocker.labs import framework, lab08_networking, lab09_security
from tests.helpers import run_one_step

REPO = Path(__file__).resolve().parents[1]
STEP_PREFIX = re.compile(r"Step (\d+):")


def solution(lab: framework.Lab) -> Path:
    return REPO / "labs/solutions" / f"{lab.directory}.py"


def step_functions(lab: framework.Lab) -> dict[int, list[str]]:
    """The top-level functions the student writes for each step, read from the starter: those
    whose stub raises ``NotImplementedError("Step N: ...")`` or whose docstring starts with
    ``Step N:``."""
    found: dict[int, list[str]] = {}
    for node in ast.parse((lab.path / "starter.py").read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        said = [ast.get_docstring(node) or ""] + [
            n.exc.args[0].value for n in ast.walk(node)
            if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and n.exc.args
            and isinstance(n.exc.args[0], ast.Constant) and isinstance(n.exc.args[0].value, str)]
        steps = {int(m.group(1)) for text in said if (m := STEP_PREFIX.match(text))}
        for step in steps:
            found.setdefault(step, []).append(node.name)
    return found


def emptied(source: str, names: list[str]) -> str:
    """``source`` with the bodies of the top-level functions ``names`` replaced by
    ``return None`` (their docstrings kept)."""
    lines = source.splitlines(keepends=True)
    nodes = [n for n in ast.parse(source).body
             if isinstance(n, ast.FunctionDef) and n.name in names]
    assert {n.name for n in nodes} == set(names), names
    for node in sorted(nodes, key=lambda n: n.lineno, reverse=True):
        body = node.body[1:] if ast.get_docstring(node) else node.body
        start = body[0].lineno - 1 if body else node.end_lineno
        indent = " " * node.body[0].col_offset
        lines[start:node.end_lineno] = [f"{indent}return None\n"]
    return "".join(lines)


# (lab, step, what is missing, the line of the solution, what it becomes[, the cgroup layout
# where that line runs])
WITHOUT = [
    ("01", 1, "no unshare: the hostname set in the host's UTS namespace",
     "        kernel.unshare(kernel.CLONE_NEWUTS)", "        pass"),
    ("01", 3, "no fresh /proc: the sandbox's own is still there",
     '            kernel.mount("proc", "/proc", "proc",', '            (None,'),
    ("01", 3, "mounts not made private (the sandbox's are shared)",
     "            kernel.mount(None, \"/\", None, kernel.MS_REC | kernel.MS_PRIVATE)",
     "            pass"),
    ("02", 1, "mounts not made private",
     "    kernel.mount(None, \"/\", None, kernel.MS_REC | kernel.MS_PRIVATE)", "    pass"),
    ("02", 1, "new_root not bound onto itself",
     "    kernel.mount(new_root, new_root, None, kernel.MS_BIND | kernel.MS_REC)", "    pass"),
    ("02", 2, "no chdir('/') after pivot_root", '    os.chdir("/")  #', "    pass  #"),
    ("02", 2, "the old root left attached",
     '    kernel.umount2("/.oldroot", kernel.MNT_DETACH)', "    pass"),
    ("03", 2, "the controller not passed down (v2: cgroup.subtree_control)",
     '            subtree_control.write_text(f"+{controller}")', "            pass", "v2"),
    ("03", 3, "no memory limit, only the swap limit",
     "        (memory / \"memory.max\").write_text(str(limit))", "        pass", "v2"),
    ("03", 3, "no memory limit, only the swap limit (v1)",
     "    (memory / \"memory.limit_in_bytes\").write_text(str(limit))", "    pass", "v1"),
    ("08", 1, "the container's lo left down",
     '    in_container(pid, "ip", "link", "set", "lo", "up")', "    pass"),
    ("08", 1, "the host's end left down", '    run("ip", "link", "set", HOST_IF, "up")',
     "    pass"),
    ("08", 2, "the bridge left down", '    run("ip", "link", "set", BRIDGE, "up")', "    pass"),
    ("08", 2, "veth0 not plugged into the bridge",
     '    run("ip", "link", "set", HOST_IF, "master", BRIDGE)', "    pass"),
    ("08", 3, "no default route",
     '    in_container(pid, "ip", "route", "add", "default", "via", GATEWAY)', "    pass"),
    ("08", 4, "no ip_forward", '        f.write("1")', '        f.write("0")'),
    ("08", 4, "no MASQUERADE", '    run("iptables", "-t", "nat"',
     '    print("iptables", "-t", "nat"'),
    ("09", 4, "no no_new_privs", "    kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)", "    pass"),
    ("09", 4, "no filter installed, only no_new_privs",
     "    kernel.prctl(kernel.PR_SET_SECCOMP,", "    print(kernel.PR_SET_SECCOMP,"),
]


def cases():
    for lab in labs.LABS:
        for step, names in sorted(step_functions(lab).items()):
            yield pytest.param(lab.number, step, names, None, None,
                               id=f"{lab.number}-step{step}-emptied-{'+'.join(names)}")
    for number, step, what, right, wrong, *layout in WITHOUT:
        other_layout = layout and (cgroups.layout() == "v2") != (layout[0] == "v2")
        yield pytest.param(number, step, None, right, wrong,
                           id=f"{number}-step{step}-without-{what.split(':')[0]}",
                           marks=[pytest.mark.skip(f"only runs on cgroup {layout[0]}")]
                           if other_layout else [])


def test_every_step_of_every_lab_has_its_functions():
    for lab in labs.LABS:
        assert sorted(step_functions(lab)) == [s.number for s in lab.steps], lab.directory


@pytest.mark.parametrize("number, step, names, right, wrong", list(cases()))
def test_an_incomplete_solution_fails_that_step(number, step, names, right, wrong, tmp_path):
    lab = framework.find_lab(labs.LABS, number)
    source = solution(lab).read_text()
    if names:
        broken = emptied(source, names)
    else:
        assert right in source, right
        broken = source.replace(right, wrong, 1)
    student = tmp_path / "student.py"
    student.write_text(broken)
    result = run_one_step(lab, step, student)
    assert result.status == "FAIL", (result.status, result.detail)


def forwarding_host(monkeypatch) -> None:
    """Make every new network namespace start with ip_forward = 1, as it does on a host that
    forwards (each new namespace copies the first one's IPv4 settings)."""
    unshare = lab08_networking.kernel.unshare

    def unshare_like_a_router(flags: int) -> None:
        unshare(flags)
        if flags & lab08_networking.kernel.CLONE_NEWNET:
            with open(lab08_networking.IP_FORWARD, "w") as f:
                f.write("1")

    monkeypatch.setattr(lab08_networking.kernel, "unshare", unshare_like_a_router)


@pytest.mark.parametrize("fixed", [True, False], ids=["checker-sets-0", "hole-shown"])
def test_lab08_without_ip_forward_fails_on_a_forwarding_host(fixed, monkeypatch, tmp_path):
    """On a host whose ip_forward is 1, step 4 still fails without it, because the checker
    turns it off in its namespace; without that reset (the hole), the same file passes."""
    forwarding_host(monkeypatch)
    if not fixed:
        monkeypatch.setattr(lab08_networking, "set_ip_forward", lambda value: None)
    lab = framework.find_lab(labs.LABS, "08")
    student = tmp_path / "student.py"
    student.write_text(solution(lab).read_text().replace('        f.write("1")',
                                                          "        pass", 1))
    result = run_one_step(lab, 4, student)
    assert result.status == ("FAIL" if fixed else "PASS"), result.detail
    if fixed:
        assert "ip_forward is 0" in result.detail


def test_lab09_says_when_no_new_privs_was_inherited(monkeypatch, tmp_path):
    """no_new_privs cannot be cleared: where the checker inherits it, step 4 cannot see whether
    the student set it, and says so instead of claiming it."""
    scratch = lab09_security.scratch

    def scratch_with_no_new_privs() -> None:
        scratch()
        lab09_security.kernel.prctl(lab09_security.kernel.PR_SET_NO_NEW_PRIVS, 1)

    monkeypatch.setattr(lab09_security, "scratch", scratch_with_no_new_privs)
    lab = framework.find_lab(labs.LABS, "09")
    result = run_one_step(lab, 4, solution(lab))
    assert result.status == "PASS" and "1 already when your code started" in result.detail, \
        result.detail
