"""What a test could leave on the host, to compare before and after it (with the
``nothing_left_behind`` fixture of conftest.py)."""

import glob


def lab_traces(number: str, **more) -> dict:
    """What the checks of lab ``number`` could leave on this host: the mount points and the
    lab's scratch directories (/tmp/minidocker-labNN-*), with ``more`` (what else the lab
    touches: cgroups, links, images). Equal before and after a test, or something leaked."""
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    return {"mounts": mounts, "scratch": sorted(glob.glob(f"/tmp/minidocker-lab{number}-*")),
            **more}
