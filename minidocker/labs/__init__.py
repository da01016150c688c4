"""The course's labs: the student writes the container code; a checker runs it on the kernel.

Each lab is a folder ``labs/NN-topic/`` next to this package: ``README.md`` (the goal, the task
in steps, hints that go from a nudge to nearly the answer, how to check) and ``starter.py``, the
student's file, whose stubs raise ``NotImplementedError("Step N: ...")``. Reference solutions
live apart, in ``labs/solutions/``. The checker of each lab is a module here
(``lab01_namespaces`` ... ``lab09_security``, one per stage 1-9, ``lab10_build`` (stage 10),
and ``lab15_runtime``, the capstone that puts stages 1-9 together, the last lab) built
on ``framework`` (the format, the report) and
``sandbox`` (where the student's code runs without touching the host).

    sudo minidocker lab list                      # every lab, and the last check's verdict
    sudo minidocker lab reset 01                  # your copy: labs/01-namespaces/mine.py
    sudo minidocker lab check 01                  # checks it (the starter while there is none)
    sudo minidocker lab check 02 my_rootfs.py     # any copy of the starter
    sudo minidocker lab hint 01 --next            # one more hint for the step you are on

``student`` holds the student's side (working copy, progress, hints); ``report`` shows a check
as a table in a notebook.

Man pages: each lab module names those of its stage (lab01_namespaces.py: unshare(2),
namespaces(7), ...); the labs' own READMEs link them.
Used by: labs/01-namespaces ... labs/15-runtime through ``minidocker lab`` (cli/), and the
tests (tests/test_labs.py, test_labNN.py), which prove that every checker fails on its starter
and passes on its solution, and (tests/test_lab_steps.py) fails each step without its work.
"""

import os

from minidocker.labs import (
    framework,
    lab01_namespaces,
    lab02_root_filesystem,
    lab03_cgroups,
    lab04_overlay,
    lab05_images,
    lab06_lifecycle,
    lab07_volumes,
    lab08_networking,
    lab09_security,
    lab10_build,
    lab11_registry,
    lab12_engine_api,
    lab13_compose,
    lab14_scheduler,
    lab15_runtime,
    student,
)

LABS = [lab01_namespaces.LAB, lab02_root_filesystem.LAB, lab03_cgroups.LAB, lab04_overlay.LAB,
        lab05_images.LAB, lab06_lifecycle.LAB,
        lab07_volumes.LAB,
        lab08_networking.LAB,
        lab09_security.LAB,
        lab10_build.LAB,
        lab11_registry.LAB,
        lab12_engine_api.LAB,
        lab13_compose.LAB,
        lab14_scheduler.LAB,
        lab15_runtime.LAB]


def check(number: str, path: str | os.PathLike | None = None) -> int:
    """Check lab ``number`` on the file ``path`` (default: the student's working copy
    ``labs/NN-topic/mine.py``, or the starter while there is none), printing a verdict per step
    and remembering them for ``lab list``. Returns the exit code: 0 when every step passes."""
    lab = framework.find_lab(LABS, number)
    return framework.check(LABS, number, path or student.default_file(lab),
                           record=student.record_check)


def run(number: str, path: str | os.PathLike | None = None) -> list[framework.Result]:
    """The verdict of every step, as data (``check`` prints the same verdicts)."""
    lab = framework.find_lab(LABS, number)
    file = framework.student_file(lab, path)
    with lab.open_workspace() as workspace:
        return framework.run_steps(lab, file, workspace)


def list_labs() -> str:
    """The labs, one per line, with their titles and the verdict of their last check."""
    progress = student.load_progress()
    return framework.list_labs(LABS, status=lambda lab: student.status(lab, progress))


def reset(number: str) -> student.Reset:
    """A fresh copy of lab ``number``'s starter, where ``check`` looks for it by default."""
    return student.reset(framework.find_lab(LABS, number))


def hint(number: str, step: int | None = None, more: bool = False) -> student.Hint:
    """The hints opened so far for ``step`` (default: where the last check stopped)."""
    return student.hint(framework.find_lab(LABS, number), step, more)


def table(number: str, path: str | os.PathLike | None = None):
    """Check lab ``number`` and return the verdicts as a table: in a notebook, the last line of
    a cell (``labs.table("01")``) shows it as HTML; ``print`` gives plain text."""
    from minidocker.labs.report import CheckTable

    lab = framework.find_lab(LABS, number)
    file = framework.student_file(lab, path or student.default_file(lab))
    with lab.open_workspace() as workspace:
        results = framework.run_steps(lab, file, workspace, echo=False)
    student.record_check(lab, file, results)
    return CheckTable(lab, file, results)
