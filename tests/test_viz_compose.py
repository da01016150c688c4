"""Notebook 13's pictures, as data: the file's services beside the containers, networks and
volumes the records hold, and the timeline of starts and ends."""

from types import SimpleNamespace

from minidocker.viz import compose as cviz


def record(name, service, number, networks, mounts=(), started="", finished="",
           status="running"):
    return SimpleNamespace(
        Name=name, Id="abcdef123456" + "0" * 52,
        Config=SimpleNamespace(Labels={cviz.SERVICE: service, cviz.NUMBER: str(number)}),
        NetworkSettings={"Networks": {n: {"Aliases": [*a, "abcdef123456"]}
                                      for n, a in networks.items()}},
        Mounts=list(mounts), State={"StartedAt": started, "FinishedAt": finished,
                                    "Status": status})


def test_the_graph_puts_services_beside_what_they_became():
    project = SimpleNamespace(services={"api": None, "db": None})
    records = [record("shop-api-1", "api", 1, {"shop_default": ["api"]}),
               record("shop-api-2", "api", 2, {"shop_default": ["api"]}),
               record("shop-db-1", "db", 1, {"shop_default": ["db", "database"]},
                      [{"Type": "volume", "Name": "shop_data", "Destination": "/data"},
                       {"Type": "volume", "Name": "f" * 64, "Destination": "/cache"},
                       {"Type": "bind", "Source": "/srv", "Destination": "/srv"}])]
    graph = cviz.project_graph(project, records)
    assert {n.id for n in graph.nodes} == {
        "service:api", "service:db", "container:shop-api-1", "container:shop-api-2",
        "container:shop-db-1", "network:shop_default", "volume:shop_data",
        "volume:(anonymous)"}
    assert ("service:api", "container:shop-api-2", "#2") in graph.edges
    assert ("container:shop-db-1", "network:shop_default", "db, database") in graph.edges
    assert ("container:shop-db-1", "volume:shop_data", "/data") in graph.edges
    source = cviz.draw_project(project, records, "shop").source
    assert "cluster_file" in source and "shop-db-1" in source


def test_the_timeline_starts_at_the_first_start():
    records = [record("web", "web", 1, {}, started="2026-12-04T10:00:03.500000Z"),
               record("db", "db", 1, {}, started="2026-12-04T10:00:01Z"),
               record("job", "job", 1, {}, started="2026-12-04T10:00:02Z",
                      finished="2026-12-04T10:00:02.250000Z", status="exited"),
               record("never", "x", 1, {}, status="created")]
    assert cviz.timeline(records) == [("db", 0.0, None), ("job", 1.0, 1.25),
                                      ("web", 2.5, None)]
    assert cviz.draw_timeline(records).axes[0].get_xlabel().startswith("seconds")
