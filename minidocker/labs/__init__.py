"""The course's labs: the student writes the container code; a checker runs it on the kernel.

Each lab is a folder ``labs/NN-topic/`` next to this package: ``README.md`` (the goal, the task
in steps, hints that go from a nudge to nearly the answer, how to check) and ``starter.py``, the
student's file, whose stubs raise ``NotImplementedError("Step N: ...")``. Reference solutions
live apart, in ``labs/solutions/``. The checker of each lab is a module here
(``lab01_namespaces`` ... ``lab09_security``, one per stage 1-9, and ``lab10_runtime``, the
capstone that puts them together) built on ``framework`` (the format, the report) and
``sandbox`` (where the student's code runs without touching the host).

    sudo minidocker lab list
    sudo minidocker lab check 01                  # labs/01-namespaces/starter.py
    sudo minidocker lab check 02 my_rootfs.py     # any copy of the starter

Man pages: each lab module names those of its stage (lab01_namespaces.py: unshare(2),
namespaces(7), ...); the labs' own READMEs link them.
Used by: labs/01-namespaces ... labs/10-runtime through ``minidocker lab`` (cli/), and the
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
    lab10_runtime,
)

LABS = [lab01_namespaces.LAB, lab02_root_filesystem.LAB, lab03_cgroups.LAB, lab04_overlay.LAB,
        lab05_images.LAB, lab06_lifecycle.LAB,
        lab07_volumes.LAB,
        lab08_networking.LAB,
        lab09_security.LAB,
        lab10_runtime.LAB]


def check(number: str, path: str | os.PathLike | None = None) -> int:
    """Check lab ``number`` on the file ``path`` (default: the lab's starter.py), printing a
    verdict per step. Returns the exit code: 0 when every step passes, else 1."""
    return framework.check(LABS, number, path)


def run(number: str, path: str | os.PathLike | None = None) -> list[framework.Result]:
    """The verdict of every step, as data (``check`` prints the same verdicts)."""
    lab = framework.find_lab(LABS, number)
    file = framework.student_file(lab, path)
    with lab.open_workspace() as workspace:
        return framework.run_steps(lab, file, workspace)


def list_labs() -> str:
    """The labs, one per line, with their titles."""
    return framework.list_labs(LABS)
