"""The lab format, and the checker that runs a student's file step by step.

A lab is a directory ``labs/NN-topic/`` with a ``README.md`` (goal, steps, hints, how to check)
and a ``starter.py``: the student's file, where every function still to write raises
``NotImplementedError("Step N: ...")``. Its checker is a ``Lab`` here: a list of ``Step``s,
each a function that loads the student's file, runs it against the real kernel and says what
the kernel shows. Each step runs in its own sandbox (sandbox.py), so the host never changes.

The verdict of a step is ``PASS`` (with what was seen), ``FAIL`` (with what is wrong and what to
do) or ``TODO`` (the stub's own message). The check exits 0 only when every step passes.

Man pages: see each lab's README. Used by: ``minidocker lab check`` and ``minidocker lab list``.
"""

import importlib.util
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import click

from minidocker.errors import MinidockerError, NotFound
from minidocker.image.store import single_layer_dir
from minidocker.labs.sandbox import FAIL, PASS, TODO, CheckFailed, Outcome, run_sandboxed

REPO_ROOT = Path(__file__).resolve().parents[2]  # minidocker/labs/framework.py -> the checkout
STEP_TIMEOUT = 60  # seconds; a step that runs longer is stopped and fails (steps take a few
# seconds on a real machine, several times more in the emulated classroom VM)
COLOURS = {PASS: "green", FAIL: "red", TODO: "yellow"}


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    check: Callable  # check(student_module, workspace) -> what it saw; runs in the sandbox


@dataclass(frozen=True)
class Lab:
    directory: str  # "01-namespaces": the folder under labs/
    steps: tuple[Step, ...]
    cumulative: bool = False  # step N builds on steps 1..N-1, so it waits for them to pass
    workspace: Callable[[], AbstractContextManager] | None = None  # host-side scratch space

    @property
    def number(self) -> str:
        return self.directory.split("-", 1)[0]

    @property
    def path(self) -> Path:
        return labs_dir() / self.directory

    def open_workspace(self) -> AbstractContextManager:
        """What the lab's checks need from the host side (lab 02: the image, a scratch dir)."""
        return self.workspace() if self.workspace else nullcontext()

    @property
    def title(self) -> str:
        """The README's first heading, without its "Lab NN —" prefix."""
        readme = self.path / "README.md"
        heading = readme.read_text().splitlines()[0] if readme.exists() else self.directory
        return heading.lstrip("# ").split("—", 1)[-1].strip()


# --- workspaces: what a lab's checks need from the host side ----------------------------------------

@contextmanager
def scratch_workspace(lab: str) -> Iterator[str]:
    """An empty directory for the checks of lab ``lab`` (``"06"``). Each step's sandbox mounts a
    tmpfs of its own on it (``sandbox.mount_scratch``), so the host's side of it stays empty;
    it goes when the check ends."""
    scratch = tempfile.mkdtemp(prefix=f"minidocker-lab{lab}-")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class ImageWorkspace:
    """Made on the host side, once per check: the image to copy and an empty directory."""

    image: str
    scratch: str


@contextmanager
def busybox_workspace(lab: str) -> Iterator[ImageWorkspace]:
    """The busybox image, and a scratch directory that only ever holds the sandboxes' tmpfs
    mounts (``scratch_workspace``)."""
    image = single_layer_dir("busybox")
    with scratch_workspace(lab) as scratch:
        yield ImageWorkspace(str(image), scratch)


@dataclass
class Result:
    step: Step
    status: str
    detail: str


def labs_dir() -> Path:
    path = REPO_ROOT / "labs"
    if not path.is_dir():
        raise NotFound(f"the labs are not here ({path} does not exist): the labs come with the "
                       "source checkout of minidocker; install it from there with pip install -e")
    return path


def find_lab(labs: list[Lab], number: str) -> Lab:
    """The lab called ``01``, ``1`` or ``01-namespaces``."""
    wanted = number.split("-", 1)[0]
    if wanted.isdigit():
        wanted = f"{int(wanted):02d}"
    for lab in labs:
        if lab.number == wanted:
            return lab
    known = ", ".join(lab.directory for lab in labs)
    raise NotFound(f"there is no lab {number!r}; the labs are: {known} "
                   "(see 'minidocker lab list')")


def student_file(lab: Lab, path: str | os.PathLike | None) -> Path:
    """The file to check: ``path``, or the lab's starter.py. It must exist and compile."""
    file = Path(path) if path else lab.path / "starter.py"
    if not file.is_file():
        raise NotFound(f"no such file: {file} (give the path of your copy of "
                       f"{lab.directory}/starter.py)")
    try:
        compile(file.read_bytes(), str(file), "exec")
    except SyntaxError as exc:
        raise MinidockerError(f"{file} line {exc.lineno}: {exc.msg}; fix it and check again")\
            from None
    return file.resolve()


def load_student(file: Path) -> ModuleType:
    """Import the student's file by path. This runs its top-level code, so it is only ever
    called inside a sandbox."""
    sys.dont_write_bytecode = True  # leave no __pycache__ beside the student's file
    spec = importlib.util.spec_from_file_location("student_lab", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and friends look their module up here
    spec.loader.exec_module(module)
    return module


def function(student: ModuleType, name: str) -> Callable:
    """A function the step needs from the student's file, or a FAIL that names it."""
    found = getattr(student, name, None)
    if not callable(found):
        raise CheckFailed(f"your file has no function {name}(): keep the starter's names")
    return found


def run_steps(lab: Lab, file: Path, workspace=None, echo: bool = True) -> list[Result]:
    """Check every step of ``lab`` on ``file``, printing each verdict as soon as it is known
    (unless ``echo`` is false: a notebook shows the verdicts as a table instead)."""
    results: list[Result] = []
    for step in lab.steps:
        waiting = next((r for r in results if r.status != PASS), None) if lab.cumulative \
            else None
        if waiting:
            outcome = Outcome(TODO, f"waits for step {waiting.step.number}, which it builds on")
        else:
            outcome = run_sandboxed(lambda step=step: step.check(load_student(file), workspace),
                                    STEP_TIMEOUT)
        results.append(Result(step, outcome.status, outcome.detail))
        if echo:
            print_result(results[-1])
    return results


def print_result(result: Result) -> None:
    status = click.style(f"{result.status:4}", fg=COLOURS[result.status], bold=True)
    click.echo(f"  {status}  Step {result.step.number}: {result.step.title}")
    click.echo(textwrap.fill(result.detail, width=100, initial_indent=" " * 8,
                             subsequent_indent=" " * 8, break_long_words=False,
                             break_on_hyphens=False))


def check(labs: list[Lab], number: str, path: str | os.PathLike | None = None,
          record: Callable[[Lab, Path, list[Result]], None] | None = None) -> int:
    """``minidocker lab check NUMBER [PATH]``: print the verdict of every step; 0 if all pass.
    ``record`` is given the verdicts (``minidocker lab list`` shows the last ones)."""
    lab = find_lab(labs, number)
    file = student_file(lab, path)
    if os.geteuid() != 0:
        raise MinidockerError("lab checks need root (they make namespaces and mounts): "
                              f"sudo minidocker lab check {lab.number}")
    with lab.open_workspace() as workspace:
        click.echo(f"Lab {lab.number} — {lab.title}")
        click.echo(f"checking {_shown(file)}\n")
        results = run_steps(lab, file, workspace)
    if record:
        record(lab, file, results)
    passed = sum(r.status == PASS for r in results)
    click.echo(f"\n{passed} of {len(results)} steps pass.")
    missing = next((r for r in results if r.status != PASS), None)
    if missing:
        click.echo(f"Next: step {missing.step.number}. Hints: sudo minidocker lab hint "
                   f"{lab.number} (one more each time with --next), or "
                   f"{_shown(lab.path / 'README.md')}")
        return 1
    click.echo(f"Lab {lab.number} is done.")
    return 0


def list_labs(labs: list[Lab], status: Callable[[Lab], str] | None = None) -> str:
    """``minidocker lab list``: one line per lab (with ``status(lab)``, the last check's
    verdict, when given), and how to check one."""
    width = max(len(lab.title) for lab in labs)
    lines = []
    for lab in labs:
        verdict = f"{status(lab):20}  " if status else ""
        lines.append(f"{lab.number}  {lab.title:{width}}  {verdict}{_shown(lab.path)}/")
    lines.append("\nYour copy of a lab: sudo minidocker lab reset NUMBER; check it: sudo minidocker "
                 "lab check NUMBER [PATH]; stuck: sudo minidocker lab hint NUMBER --next")
    return "\n".join(lines) + "\n"


def _shown(path: Path) -> str:
    """A path relative to the current directory when it is below it, else absolute."""
    if Path.cwd() == Path("/"):
        return str(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
