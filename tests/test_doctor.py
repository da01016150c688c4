"""minidocker doctor: every check ran for real, failures say how to fix them."""

import re

from minidocker import cgroups


def test_this_machine_passes_and_every_namespace_was_tried(md):
    result = md("doctor")
    assert result.returncode == 0, result.stdout
    for kind in ("uts", "pid", "mnt", "ipc", "net", "user", "cgroup"):
        assert f"[  ok] {kind} namespace: works" in result.stdout
    layout = re.search(r"cgroup layout: (\w+)", result.stdout)[1]
    assert layout == cgroups.layout()
    print(f"cgroup layout seen by the doctor: {layout}")


def test_a_missing_base_image_fails_with_its_fix(md, tmp_path):
    result = md("doctor", env={"MINIDOCKER_ROOT": str(tmp_path)})
    assert result.returncode == 1
    assert "[FAIL] base image busybox: missing\n       fix: sudo minidocker setup" in result.stdout
