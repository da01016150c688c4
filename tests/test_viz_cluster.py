"""Notebook 14's pictures, as data: the swarm drawn from a snapshot of etcd, and a failure told
from the events of etcd's watch (no lab needed: the snapshots and events are made here)."""

from types import SimpleNamespace

from minidocker.viz import cluster as cviz


def node(id, host, role="worker", availability="active"):
    return {"ID": id, "Hostname": host, "Role": role, "Availability": availability}


def task(id, service, slot, node_id, state="running", desired="running"):
    return {"ID": id, "ServiceID": service, "Slot": slot, "NodeID": node_id,
            "DesiredState": desired, "Status": {"State": state}}


def snapshot():
    return SimpleNamespace(
        nodes={"a": node("a", "n1", "manager"), "b": node("b", "n2"),
               "c": node("c", "n3", availability="drain")},
        alive={"a": {}, "c": {}}, leader="a",
        services={"s": {"Spec": {"Name": "web"}}, "t": {"Spec": {"Name": "db"}}},
        tasks={"1": task("1", "s", 1, "a"), "2": task("2", "s", 2, "b", "orphaned", "shutdown"),
               "3": task("3", "s", 2, "a", "assigned"), "4": task("4", "t", 1, "")})


def test_the_graph_shows_each_node_and_the_tasks_that_should_run_there():
    graph = cviz.cluster_graph(snapshot())
    kinds = {n.id: n.kind for n in graph.nodes}
    assert kinds == {"node:a": "leader", "node:b": "down", "node:c": "node", "pending": "pending",
                     "task:1": "task", "task:3": "starting", "task:4": "pending"}
    assert graph.node("node:c").label == "n3\nworker, drain\nReady"
    assert graph.node("node:b").label == "n2\nworker\nDown"
    assert graph.node("task:3").label == "web.2\nassigned"
    assert sorted(graph.edges) == [("node:a", "task:1", ""), ("node:a", "task:3", ""),
                                   ("pending", "task:4", "")]  # the orphan is not drawn
    source = cviz.draw_cluster(snapshot(), "live").source
    assert "gold" in source and "web.1" in source


def seen(at, type, key, value=None):
    return cviz.Seen(at, type, "/minidocker/" + key, value)


def test_the_story_tells_a_failure_in_order_and_once():
    state = snapshot()
    events = [seen(105.0, "DELETE", "alive/b"),
              seen(106.0, "PUT", "tasks/2", task("2", "s", 2, "b", "orphaned", "shutdown")),
              seen(106.0, "PUT", "tasks/5", task("5", "s", 2, "a")),
              seen(107.0, "PUT", "tasks/5", task("5", "s", 2, "a")),  # nothing new: not told
              seen(107.5, "PUT", "tasks/4", task("4", "t", 1, "c")),  # another service
              seen(110.0, "PUT", "alive/b", {"Addr": "10.77.0.12"}),
              seen(111.0, "PUT", "tasks/2", task("2", "s", 2, "b", "shutdown", "shutdown")),
              seen(112.0, "PUT", "leader", "a"),
              seen(113.0, "PUT", "services/s", {"Spec": {}})]
    told = cviz.story(events, state, t0=100.0, services=("web",))
    assert told.order() == ["n2 Down: its lease expired, key deleted",
                            "task web.2 orphaned on n2 (desired shutdown)",
                            "task web.2 running on n1",
                            "n2 Ready: its agent wrote its lease key",
                            "task web.2 shutdown on n2 (desired shutdown)",
                            "leader: n1"]
    assert told.table().rows[0] == ("+5.0", "n2 Down: its lease expired, key deleted")
    assert "task db.1 running on n3" in cviz.story(events, state, 100.0).order()


def test_values_that_are_not_json_are_kept_as_text():
    assert cviz.parse('{"a": 1}') == {"a": 1}
    assert cviz.parse("node-id") == "node-id" and cviz.parse(None) is None


class FakeStore:
    """etcd as the Watcher asks it: a first read, then a watch of a few events (or an error)."""

    def __init__(self, error=None, events=()):
        self.error, self.events = error, events

    def get_prefix(self, prefix):
        if self.error:
            raise self.error
        return {}, 7

    def watch(self, prefix, start_revision=0):
        from minidocker.cluster.etcd import EtcdError

        assert start_revision == 8  # just after the first read
        yield from self.events
        raise EtcdError("no etcd member answered the watch")  # etcd went: the watch ends


def started_watcher(monkeypatch, store) -> cviz.Watcher:
    from minidocker.cluster import lab

    monkeypatch.setattr(lab, "enter", lambda _lab: None)  # no lab's namespace to enter
    watcher = cviz.Watcher(SimpleNamespace(lab=None, store=store))
    watcher.start()
    return watcher


def test_a_watch_that_cannot_start_says_why(monkeypatch):
    from minidocker.cluster.etcd import EtcdError

    watcher = started_watcher(monkeypatch, FakeStore(EtcdError("no etcd member answered")))
    try:
        watcher.wait_watching(5)
    except cviz.WatchFailed as failed:
        assert "could not start: no etcd member answered" in str(failed)
    else:
        raise AssertionError("wait_watching() returned on a watch that never started")
    watcher.join(5)
    assert not watcher.watching.is_set()


def test_a_watch_keeps_its_events_until_etcd_goes(monkeypatch):
    from minidocker.cluster.store import Event

    events = [Event("PUT", "/minidocker/leader", "a", 8), Event("DELETE", "/minidocker/alive/b",
                                                                None, 9)]
    watcher = started_watcher(monkeypatch, FakeStore(events=events))
    watcher.wait_watching(5)
    watcher.join(5)
    assert [(seen.type, seen.key, seen.value) for seen in watcher.events] == [
        ("PUT", "/minidocker/leader", "a"), ("DELETE", "/minidocker/alive/b", None)]
