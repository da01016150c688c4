"""The notebook 06b helpers (minidocker/viz/runtime.py): config.json read beside the stages."""

import pytest

from minidocker.container import Config, HostConfig
from minidocker.container.bundle import runtime_spec
from minidocker.container.create import create
from minidocker.container.start import plan_start
from minidocker.container.teardown import remove
from minidocker.security.users import User
from minidocker.viz import runtime


@pytest.fixture(scope="module")
def config():
    record = create(Config(Image="busybox", Cmd=["true"]),
                    HostConfig(Ulimits=[{"Name": "nofile", "Soft": 10, "Hard": 20}]))
    try:
        yield runtime_spec(plan_start(record), User(), "/rootfs")
    finally:
        remove(record)


def test_every_annotated_field_is_in_a_config(config):
    absent = {path for path, *_ in runtime.SPEC_STAGES if runtime.lookup(config, path) is None}
    # no user namespace, no network (no hook), no --device: the only fields left out
    assert absent == {"linux.uidMappings", "hooks.createRuntime"}
    rows = {row[0]: row for row in runtime.spec_table(config).rows}
    assert rows["process.rlimits"][1:3] == ("[1] {type, soft, hard}", "6")
    assert rows["linux.seccomp"][2] == "9" and rows["root.path"][1] == "/rootfs"
    assert all(len(row[1]) <= 48 for row in rows.values())


def test_summary_shortens_ids_and_lists():
    assert runtime.summary("/minidocker/" + "ab" * 32) == "/minidocker/abababababab"
    assert runtime.summary([1, 2, 3, 4]) == "[4] 1, 2, 3, …"
    assert runtime.summary(None) == "(absent)" and runtime.summary(False) == "false"


def test_seccomp_and_mount_tables_read_the_config(config):
    calls = {row[0]: row for row in runtime.seccomp_table(config).rows}
    assert calls["unshare clone"][2] == "arg0 MASKED_EQ 0x10000000"  # CLONE_NEWUSER
    assert calls["(every other call)"][1] == "SCMP_ACT_ALLOW"
    assert [row[0] for row in runtime.mounts_table(config).rows][:2] == ["/proc", "/dev"]


def test_the_chains_end_with_pid_1_and_name_its_parent():
    for name in runtime.CHAINS:
        table = runtime.chain_table(name)
        assert table.rows[-1][0] == "PID 1" and table.title == name
    assert "subreaper" in runtime.chain_table("minidocker --runtime runc").rows[-1][2]


def test_podman_stays_in_a_private_mount_namespace():
    script = runtime.podman_script("/w/podman", "/w/b.tar", "parent")
    assert script.startswith("mount --make-rprivate / && mount -t tmpfs tmpfs /run")
    assert "--network none" in script and "--runtime runc" in script
    assert "--log-driver k8s-file" in script  # not journald: its socket is not on our /run
