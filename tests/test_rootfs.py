"""Stage 2: why pivot_root and not chroot — the breakout, tried for real on a scratch root."""

import shutil

import pytest

from minidocker import rootfs
from minidocker.image.store import single_layer_dir


@pytest.fixture
def scratch_root(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(single_layer_dir("busybox"), root, symlinks=True)
    return str(root)


def test_chroot_can_be_escaped(scratch_root):
    result = rootfs.breakout_demo(scratch_root, "chroot")
    assert result.escaped, result.evidence


def test_pivot_root_cannot_be_escaped(scratch_root):
    result = rootfs.breakout_demo(scratch_root, "pivot_root")
    assert not result.escaped, result.evidence
    assert "'bin'" in result.evidence  # it is still inside the busybox tree


def test_every_masked_and_readonly_path_has_a_reason():
    for table in (rootfs.MASKED_PATHS, rootfs.READONLY_PATHS):
        assert all(path.startswith(("/proc/", "/sys/")) and reason for path, reason in
                   table.items())
