"""The daemon's in-memory bookkeeping, without a daemon: the wake-up of ``wait`` requests
when an attach stream sees an exit (sessions.py), and the detach keys typed one at a time
(containers.feed). Fast: no namespaces, no containers."""

import asyncio

from minidocker.daemon.containers import feed, keys_begun
from minidocker.daemon.sessions import Sessions


def test_every_waiter_hears_of_one_exit():
    async def scenario():
        sessions = Sessions()
        waiters = [asyncio.create_task(sessions.exit_seen("c1", 5)) for _ in range(2)]
        await asyncio.sleep(0)  # both wait now
        sessions.saw_exit("c1", 3)
        return await asyncio.gather(*waiters), sessions.exit_codes["c1"]

    assert asyncio.run(scenario()) == ([True, True], 3)


def test_no_exit_seen_is_a_timeout():
    assert asyncio.run(Sessions().exit_seen("c1", 0.01)) is False


def test_the_start_of_the_detach_keys_is_held_back():
    keys = b"\x10\x11"  # ctrl-p,ctrl-q
    assert keys_begun(b"ls\x10", keys) == b"\x10"
    assert keys_begun(b"ls\x11", keys) == b""
    assert keys_begun(b"", keys) == b""
    assert keys_begun(b"ab\x10", b"\x01") == b""  # one key: nothing to hold


class Writer:
    def __init__(self):
        self.sent, self.closed, self.eof = b"", False, False

    def write(self, data):
        self.sent += data

    async def drain(self):
        pass

    def close(self):
        self.closed = True

    def write_eof(self):
        self.eof = True


def feed_messages(bodies, keys=b"\x10\x11"):
    """What ``feed`` sends to the container for these request bodies, and whether it hung
    up (detached) before the client's stdin ended."""
    messages = iter([{"type": "http.request", "body": body, "more_body": True}
                     for body in bodies] + [{"type": "http.request", "body": b"",
                                             "more_body": False},
                                            {"type": "http.disconnect"}])

    async def receive():
        return next(messages)

    writer = Writer()
    asyncio.run(feed(receive, writer, keys))
    return writer.sent, writer.closed and not writer.eof


def test_detach_keys_typed_one_at_a_time():
    assert feed_messages([b"echo hi\n", b"\x10", b"\x11", b"never"]) == (b"echo hi\n", True)


def test_the_start_of_the_keys_then_other_input_is_sent():
    sent, detached = feed_messages([b"a\x10", b"b"])
    assert (sent, detached) == (b"a\x10b", False)


def test_the_start_of_the_keys_at_the_end_of_stdin_is_sent():
    sent, detached = feed_messages([b"a\x10"])
    assert (sent, detached) == (b"a\x10", False)


def test_a_removed_container_is_forgotten_and_old_exits_go():
    from minidocker.daemon import sessions as kept

    async def scenario():
        sessions = Sessions()
        sessions.saw_exit("gone", 1)
        sessions.saw_exit("stays", 2)
        sessions.forget(["gone"])
        forgotten = sorted(sessions.exit_codes), sorted(sessions.exits)
        for n in range(kept.REMEMBERED + 5):  # never removed through the API (--rm)
            sessions.saw_exit(f"c{n}", 0)
        return forgotten, sessions

    forgotten, sessions = asyncio.run(scenario())
    assert forgotten == (["stays"], ["stays"])
    assert len(sessions.exit_codes) == len(sessions.exits) == kept.REMEMBERED
    assert "stays" not in sessions.exit_codes and "c0" not in sessions.exit_codes  # the oldest
    assert f"c{kept.REMEMBERED + 4}" in sessions.exit_codes
