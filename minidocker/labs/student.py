"""The student's side of the labs: a working copy of each starter, progress, and hints.

**The working copy.** ``labs/NN-topic/starter.py`` stays as shipped; the student writes in a
copy of it, ``labs/NN-topic/mine.py`` (git ignores it), made by ``minidocker lab reset NN``.
Beside the starter, JupyterLab's file browser and editor reach it (in the classroom VM too,
where the checkout is ``/vagrant``, shared with the student's own computer).
``$MINIDOCKER_LAB_WORKDIR`` moves the copies elsewhere: ``$MINIDOCKER_LAB_WORKDIR/NN-topic/mine.py``.
``minidocker lab check NN`` checks the copy, or the starter while there is no copy.

**Progress.** The verdicts of each lab's last check, and how many hints of each step the student
has opened, live in ``labs.json`` under the state root (``/var/lib/minidocker``, root's, as the
checks are): ``minidocker lab list`` shows them, ``minidocker lab hint`` picks the step to help
with from them.

**Hints.** Each lab's README has a ``## Hints`` section: one ``### Step N`` per step, and under
it ``<details><summary>Hint K</summary> ... </details>`` blocks, from a nudge to nearly the
answer. ``hints()`` reads them in that order; ``minidocker lab hint NN --next`` opens one more.

Used by: ``minidocker lab list / check / hint / reset`` (cli/), tests/test_lab_ux.py.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from minidocker import state
from minidocker.errors import NotFound
from minidocker.labs.framework import PASS, Lab, Result

WORKING_COPY = "mine.py"


# --- the working copy ---------------------------------------------------------------------------

def working_copy(lab: Lab) -> Path:
    """Where the student's copy of ``lab``'s starter lives (whether or not it exists yet)."""
    workdir = os.environ.get("MINIDOCKER_LAB_WORKDIR")
    folder = Path(workdir) / lab.directory if workdir else lab.path
    return folder / WORKING_COPY


def default_file(lab: Lab) -> Path:
    """What ``lab check NN`` checks without a PATH: the working copy, else the starter."""
    mine = working_copy(lab)
    return mine if mine.exists() else lab.path / "starter.py"


@dataclass
class Reset:
    copy: Path
    backup: Path | None  # the student's previous copy, kept once under this name


def reset(lab: Lab) -> Reset:
    """Put a fresh copy of the starter in the working copy's place; an existing copy is kept
    as ``mine.py.bak`` (one level of undo). Under sudo the copy belongs to the student."""
    starter = lab.path / "starter.py"
    mine = working_copy(lab)
    mine.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if mine.exists():
        backup = mine.with_name(WORKING_COPY + ".bak")
        os.replace(mine, backup)
    shutil.copyfile(starter, mine)
    mine.chmod(0o644)
    _give_to_student(mine, backup)
    return Reset(mine, backup)


def _give_to_student(*paths: Path | None) -> None:
    """``sudo minidocker lab reset`` makes the file for the user who typed it, not for root."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid:
        return
    for path in paths:
        if path is not None:
            try:
                os.chown(path, int(uid), int(gid))
            except OSError:
                pass  # a shared folder (the VM's /vagrant) keeps its own owner


# --- progress: the last check of each lab, and the hints opened ----------------------------------

def progress_file() -> Path:
    return state.state_root() / "labs.json"


def load_progress() -> dict:
    """Everything recorded so far ({} when nothing is, or when this user cannot read it)."""
    try:
        return state.read_json(progress_file())
    except (FileNotFoundError, PermissionError, json.JSONDecodeError):
        return {}


def save_progress(progress: dict) -> None:
    path = progress_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    state.write_json(path, progress)


def record_check(lab: Lab, file: Path, results: list[Result]) -> None:
    """Remember the verdicts of a check (``lab list`` shows them, ``lab hint`` uses them)."""
    progress = load_progress()
    entry = progress.setdefault(lab.number, {})
    entry["checked"] = state.now()
    entry["file"] = str(file)
    entry["steps"] = {str(r.step.number): r.status for r in results}
    try:
        save_progress(progress)
    except PermissionError:
        pass  # a check still prints its verdicts; only the memory of them is lost


def status(lab: Lab, progress: dict | None = None) -> str:
    """``lab list``'s status column: "not checked yet", "2 of 3 steps pass", "done"."""
    entry = (load_progress() if progress is None else progress).get(lab.number, {})
    steps = entry.get("steps")
    if not steps:
        return "not checked yet"
    passed = sum(s == PASS for s in steps.values())
    return "done" if passed == len(steps) else f"{passed} of {len(steps)} steps pass"


def current_step(lab: Lab, progress: dict | None = None) -> int:
    """The step to work on: the first that did not pass in the last check (1 before any)."""
    steps = (load_progress() if progress is None else progress).get(lab.number, {}) \
        .get("steps", {})
    for number in sorted(steps, key=int):
        if steps[number] != PASS:
            return int(number)
    return 1 if not steps else len(lab.steps)


# --- hints ---------------------------------------------------------------------------------------

HINT = re.compile(r"<details>\s*<summary>\s*Hint\s*(\d+)\s*</summary>(.*?)</details>", re.S)


def hints(lab: Lab) -> dict[int, list[str]]:
    """The README's hints: step number -> its hints, first (a nudge) to last (nearly the answer)."""
    readme = (lab.path / "README.md").read_text()
    section = re.search(r"^## Hints\s*$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if not section:
        raise NotFound(f"{lab.directory}/README.md has no '## Hints' section")
    found: dict[int, list[str]] = {}
    for part in re.split(r"^### ", section.group(1), flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        number = re.match(r"Step\s+(\d+)", heading)
        if number:
            found[int(number.group(1))] = [text.strip() for _, text in HINT.findall(body)]
    return found


@dataclass
class Hint:
    lab: Lab
    step: int
    shown: list[str]  # the hints opened so far for this step, in order
    total: int
    remembered: bool  # False when progress could not be written (not root)

    def text(self) -> str:
        lines = [f"Lab {self.lab.number} — {self.lab.title}, step {self.step}"]
        for number, hint in enumerate(self.shown, 1):
            lines += ["", f"Hint {number} of {self.total}:", _indent(hint)]
        lines.append("")
        if len(self.shown) < self.total:
            lines.append(f"One more: minidocker lab hint {self.lab.number} --step {self.step} "
                         "--next")
        else:
            lines.append(f"That was the last hint for step {self.step}; the README has the "
                         "steps in full: " + str(self.lab.path / "README.md"))
        if not self.remembered:
            lines.append("(not remembered: run it with sudo to keep your place)")
        return "\n".join(lines) + "\n"


def hint(lab: Lab, step: int | None = None, more: bool = False) -> Hint:
    """The hints of ``step`` (default: the step the last check stopped at) opened so far — at
    least the first; ``more`` opens one more."""
    every = hints(lab)
    progress = load_progress()
    step = current_step(lab, progress) if step is None else step
    if step not in every:
        raise NotFound(f"lab {lab.number} has no hints for step {step}; its steps: "
                       + ", ".join(str(n) for n in sorted(every)))
    entry = progress.setdefault(lab.number, {})
    opened = entry.setdefault("hints", {})
    count = max(1, opened.get(str(step), 0)) + (1 if more and opened.get(str(step)) else 0)
    count = min(count, len(every[step]))
    opened[str(step)] = count
    try:
        save_progress(progress)
        remembered = True
    except PermissionError:
        remembered = False
    return Hint(lab, step, every[step][:count], len(every[step]), remembered)


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line.strip() else "" for line in text.splitlines())

