"""The pictures of notebook 12 as data: the Engine API's conversation as table rows and as the
arrows of a sequence diagram, the frames' header bytes, a process tree with its memory."""

import os
import subprocess

from minidocker.daemon.wiretap import messages
from minidocker.viz.daemon import arrows, conversation, engine_tree, frame_table, pss_kib
from minidocker.viz.sequence import draw_sequence, sequence_graph
from tests.test_daemon_wiretap import run_i_recording


def test_the_conversation_table_says_what_each_message_is():
    rows = conversation(messages(run_i_recording())).rows
    what = [row[2] for row in rows]
    assert what[:4] == ["POST /containers/create", "201 Created",
                        "POST /containers/3770a5ab58d1/attach?stream=1&stdin=1&stdout=1&stderr=1",
                        "101 UPGRADED"]
    assert what[6:] == ["stdin: 8 bytes", "POST /containers/3770a5ab58d1/start", "204 No Content",
                        "frame: stdout 14 bytes", "frame: stderr 5 bytes", "the rest of the body"]
    assert rows[0][3] == '{"Image":"busybox","Cmd":["true"]}'
    assert "Content-Type: application/vnd.docker.multiplexed-stream" in rows[3][3]
    assert rows[9][3] == "header 01 00 00 00 00 00 00 0e  payload b'hello student\\n'"


def test_the_frame_table_explains_each_header_byte():
    rows = frame_table(messages(run_i_recording())).rows
    assert rows == [("01 00 00 00 00 00 00 0e", "1 = stdout", "00 00 00", "00 00 00 0e = 14",
                     "b'hello student\\n'"),
                    ("02 00 00 00 00 00 00 05", "2 = stderr", "00 00 00", "00 00 00 05 = 5",
                     "b'oops\\n'")]


def test_the_sequence_diagram_has_an_arrow_per_message_each_way():
    drawn = arrows(messages(run_i_recording()))
    assert [a.side for a in drawn] == ["client", "server", "client", "server", "client",
                                       "server", "client", "client", "server", "server",
                                       "server", "server"]
    assert drawn[2].label.endswith("\nUpgrade: tcp") and not drawn[2].dashed
    assert drawn[3].label.startswith("#2 101 UPGRADED") and drawn[3].dashed
    assert drawn[9].label == "#2 frame: stdout 14 bytes\n[01 00 00 00 00 00 00 0e] " \
                             "b'hello student\\n'"
    assert drawn[10].colour != drawn[9].colour  # stderr and stdout apart
    graph = sequence_graph(drawn, client="docker", server="daemon")
    labelled = [(s.split(":")[0], label) for s, _, label in graph.edges if label]
    assert [side for side, _ in labelled] == [a.side for a in drawn]
    source = draw_sequence(drawn).source
    assert "b'hello student\\\\n'" in source  # the backslash kept, not a line break


def test_a_process_tree_with_its_memory():
    child = subprocess.Popen(["sleep", "30"])
    try:
        rows = engine_tree(os.getpid(), {child.pid: "the child"}).rows
        ours = [row for row in rows if row[1] == "the child"]
        assert len(ours) == 1 and ours[0][0].startswith("└─ ")  # a child of this process
        assert rows[0][2].endswith(" MiB") and pss_kib(os.getpid()) > 0
        assert len(engine_tree(child.pid, memory=False).rows[0]) == 2
    finally:
        child.kill()
        child.wait()
    assert pss_kib(child.pid) == 0


def test_dockerd_is_started_in_namespaces_of_its_own(tmp_path):
    from minidocker.viz.engines import Dockerd

    argv = Dockerd(tmp_path).argv()
    assert argv[:3] == ["unshare", "-m", "-n"]
    script = argv[-1]
    private = tmp_path / "private"
    assert f"mount -t tmpfs tmpfs {private}" in script and "mount -t tmpfs tmpfs /run" in script
    assert script.rindex("tmpfs") < script.index("exec dockerd")
    for flag in (f"--data-root={private}/data", f"--exec-root={private}/exec",
                 f"--pidfile={private}/dockerd.pid", f"-H=unix://{tmp_path}/docker.sock",
                 "--bridge=none", "--iptables=false", "--cgroup-parent=/minidocker-dockerd-"):
        assert flag in script
    assert "--bridge=none" not in Dockerd(tmp_path, bridge=True).argv()[-1]
