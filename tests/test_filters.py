"""``--filter`` on every listing (``ps``, ``images``, ``volume ls``, ``network ls``), with
Docker's keys and rules: one scene of containers, images, volumes and networks, and for each
key what the listing shows."""

import json

import pytest

from minidocker.container import filters as container_filters
from minidocker.errors import MinidockerError
from minidocker.filters import PRUNE_FILTERS, Filters, path_match
from minidocker.image import filters as by
from minidocker.image.store import Image

from .conftest import minidocker as md

# --- the rules every listing shares ---------------------------------------------------------


def test_keys_combine_as_dockers_filters_args():
    f = Filters.parse(["status=exited", "status=created", "label=a", "label=b=2"],
                      ("status", "label"), "ps")
    assert f.match("status", "created".__eq__)  # one key twice: either value
    assert f.match_labels({"a": "x", "b": "2"})  # labels: every one
    assert not f.match_labels({"a": "x", "b": "3"}) and not f.match_labels({"b": "2"})
    assert Filters().match("status", lambda _: False)  # not asked for: everything matches


@pytest.mark.parametrize("items, words", [
    (["nokey"], "use --filter KEY=VALUE"),
    (["colour=red"], "invalid filter 'colour' for ps: use one of status, name"),
])
def test_a_bad_filter_names_itself_and_the_keys(items, words):
    with pytest.raises(MinidockerError, match=words):
        Filters.parse(items, ("status", "name"), "ps")


def test_prune_filters_until_and_label_bang():
    f = Filters.parse(["until=2026-12-01T00:00:00Z", "label!=keep", "label=team=a"],
                      PRUNE_FILTERS, "system prune")
    assert f.match_prune({"team": "a"}, "2026-11-30T23:59:59.999999999Z")
    assert not f.match_prune({"team": "a"}, "2026-12-01T00:00:00.000001Z")  # made after
    assert not f.match_prune({"team": "a", "keep": ""}, "2020-01-01T00:00:00Z")  # label!=
    for foreign in ("yesterday", 1733000000, None):  # an image config's "created", unread
        assert not f.match_prune({"team": "a"}, foreign)
    assert not f.match_prune({"team": "b"}, "2020-01-01T00:00:00Z")
    recent = Filters.parse(["until=1h"], PRUNE_FILTERS, "image prune")  # back from now
    assert recent.match_until("2020-01-01T00:00:00Z") and not recent.match_until("2999-01-01")
    with pytest.raises(MinidockerError, match="invalid time 'soon'"):
        Filters.parse(["until=soon"], PRUNE_FILTERS, "image prune")


def test_prune_filters_as_moby_reads_them():
    with pytest.raises(MinidockerError, match="^more than one until filter specified"):
        Filters.parse(["until=1h", "until=2h"], PRUNE_FILTERS, "container prune")
    once = Filters.parse(["until=1h", "until=1h ", ""], PRUNE_FILTERS, "container prune")
    assert once.args == {"until": ["1h"]}  # a set of values; --filter "" is skipped
    both = Filters.parse(["label!=a", "label!=b=1"], PRUNE_FILTERS, "network prune")
    assert not both.match_labels({"a": "", "b": "1"})  # kept only with every label!= label
    assert both.match_labels({"a": ""}) and both.match_labels({})
    ahead = Filters.parse(["until=-10m"], PRUNE_FILTERS, "image prune")  # Go's ParseDuration
    assert ahead.match_until("2026-01-01T00:00:00Z")


def test_until_durations_are_gos():
    from minidocker.events import parse_time

    now = 10**18
    for text, back_ns in (("1h30m", 5400 * 10**9), ("-10m", -600 * 10**9),
                          ("+.5s", 5 * 10**8), ("1.s", 10**9), ("2ms5us", 2_005_000),
                          ("1μs", 1000)):
        assert parse_time(text, now) == now - back_ns, text
    for bad in ("-", "10", "1d", "m"):
        if bad != "10":  # a number alone is a Unix time
            with pytest.raises(MinidockerError, match="invalid time"):
                parse_time(bad, now)


@pytest.mark.parametrize("pattern, name, matched", [
    ("*", "busybox", True), ("*", "other/app", False), ("*/*", "other/app", True),
    ("busy*:*libc", "busybox:uclibc", True), ("?usybox", "busybox", True),
    ("a?b", "a/b", False), ("[a-c]x", "bx", True), ("[^a-c]x", "bx", False),
    ("[z-a]x", "ax", False), ("a\\*", "a*", True), ("a\\*", "ab", False),
    ("a.b", "axb", False),
], ids=lambda value: str(value))
def test_reference_patterns_are_gos_path_match(pattern, name, matched):
    assert path_match(pattern, name) is matched


@pytest.mark.parametrize("pattern", ["[", "[]", "[a-]", "a\\"])
def test_a_malformed_reference_pattern_is_an_error(pattern):
    with pytest.raises(MinidockerError, match="syntax error in pattern"):
        path_match(pattern, "busybox")


def test_dangling_as_dockerd_20_10_lists_an_image_pulled_by_digest():
    """moby's image store (dockerd 20.10, seen side by side): an image with a repository
    digest and no tag is dangling (and ``image prune`` takes it), yet ``dangling=false``
    lists it too, as it has a name."""
    digest = "sha256:" + "a" * 64
    tagged = Image("sha256:1", "", {}, {}, ["busybox:latest"], [f"busybox@{digest}"])
    by_digest = Image("sha256:2", "", {}, {}, [], [f"busybox@{digest}"])
    nameless = Image("sha256:3", "", {}, {}, [], [])

    def listed(value):
        return [i.id[-1] for i in by.select([tagged, by_digest, nameless],
                                            by.parse([f"dangling={value}"]), None)]
    assert listed("true") == ["2", "3"] and listed("false") == ["1", "2"]


def test_reference_keeps_the_names_that_match_tags_and_digests_alike():
    """moby's ``images`` filter, name by name: an image is listed when one of its names (or
    that name's repository) matches, with only those names; one named by digest alone too."""
    digest = "sha256:" + "a" * 64
    tagged = Image("sha256:1", "", {}, {}, ["busybox:latest", "other/app:1"],
                   [f"busybox@{digest}", f"localhost:5000/other/app@{digest}"])
    by_digest = Image("sha256:2", "", {}, {}, [], [f"busybox@{digest}"])

    def listed(*patterns):
        chosen = by.select([tagged, by_digest], by.parse([f"reference={p}" for p in patterns]),
                           None)
        return [(image.id, image.tags, image.digests) for image in chosen]
    assert listed("busybox") == [("sha256:1", ["busybox:latest"], [f"busybox@{digest}"]),
                                 ("sha256:2", [], [f"busybox@{digest}"])]
    assert listed("*/*") == [("sha256:1", ["other/app:1"], [])]
    assert listed("localhost") == []  # a registry's host is no repository
    assert listed(f"busybox@{digest}", "other/*") == [
        ("sha256:1", ["other/app:1"], [f"busybox@{digest}"]),
        ("sha256:2", [], [f"busybox@{digest}"])]


def test_prunes_take_only_what_the_filters_name(md):
    """A label of this test's own scopes each prune (the worker's other objects stay)."""
    mine = ["--filter", "label=prune-test=mine"]
    for name, labels in (("prn-old", ()), ("prn-kept", ("-l", "keep=1"))):
        assert md("create", "--name", name, "-l", "prune-test=mine", *labels, "busybox",
                  "true").returncode == 0
    assert md("network", "create", "--label", "prune-test=mine", "prn-net").returncode == 0
    assert md("commit", "-c", "LABEL prune-test=mine", "prn-old", "prn-img:1").returncode == 0
    try:
        early = md("system", "prune", "-a", "-f", *mine, "--filter", "until=2000-01-01")
        assert early.stdout == "Total reclaimed space: 0B\n", early.stderr  # all made later
        pruned = md("system", "prune", "-a", "-f", *mine, "--filter", "label!=keep")
        assert pruned.returncode == 0, pruned.stderr
        assert "prn-net" in pruned.stdout and pruned.stdout.count("deleted: sha256:") == 1
        left = md("ps", "-a", *mine, "--format", "{{.Names}}").stdout.split()
        assert left == ["prn-kept"]
        assert md("images", "-q", "prn-img").stdout == ""
        assert md("image", "prune", "-f", "--filter", "label=prune-test=mine").returncode == 0
    finally:
        md("rm", "-f", "prn-old", "prn-kept")
        md("rmi", "prn-img:1")
        md("network", "rm", "prn-net")


def test_a_bad_value_is_refused_before_any_object_is_looked_at():
    """As moby's filters: a bad boolean or port is told by the parse itself, also when the
    store holds nothing to match; a bad regular expression when a name is matched."""
    with pytest.raises(MinidockerError, match="dangling=true or dangling=false"):
        Filters.parse(["dangling=maybe"], ("dangling",), "images")
    with pytest.raises(MinidockerError, match=r"publish=PORT\[/PROTO\]"):
        container_filters.parse(["publish=http"])
    assert container_filters.select([], container_filters.parse(["expose=53/udp"])) == []
    with pytest.raises(MinidockerError, match="regular expression"):
        Filters.parse(["name=(("], ("name",), "ps").match_name("web")


# --- the scene ------------------------------------------------------------------------------

PREFIX = "flt"


@pytest.fixture(scope="module")
def scene():
    """web (running, labelled, -p 8080:80, on a user network, a named volume), job (exited 3),
    idle (created), an untagged labelled image committed from job, a used and an unused
    volume, a used and an unused network."""
    md("network", "create", "--label", "team=a", f"{PREFIX}-net")
    md("network", "create", f"{PREFIX}-empty")
    md("volume", "create", "--label", "keep=yes", f"{PREFIX}-spare")
    made = [md("run", "-d", "--name", f"{PREFIX}-web", "-l", "tier=web", "-p", "8080:80",
               "--network", f"{PREFIX}-net", "-v", f"{PREFIX}-data:/data", "busybox",
               "sleep", "infinity"),  # running all the module long, at any speed
            md("run", "--name", f"{PREFIX}-job", "-l", "tier=batch", "--expose", "53/udp",
               "busybox", "sh", "-c", "exit 3"),
            md("create", "--name", f"{PREFIX}-idle", "busybox", "true")]
    assert [r.returncode for r in made] == [0, 3, 0], [r.stderr for r in made]
    image = md("commit", "-c", "LABEL stage=test", f"{PREFIX}-job").stdout.strip()
    yield image
    md("rm", "-f", "-v", f"{PREFIX}-web", f"{PREFIX}-job", f"{PREFIX}-idle")
    md("rmi", image)
    md("volume", "rm", f"{PREFIX}-spare", f"{PREFIX}-data")
    md("network", "rm", f"{PREFIX}-net", f"{PREFIX}-empty")


def names(*args: str) -> list[str]:
    result = md(*args, "--format", "{{.Names}}")
    assert result.returncode == 0, result.stderr
    return sorted(n.removeprefix(f"{PREFIX}-") for n in result.stdout.split()
                  if n.startswith(PREFIX))


@pytest.mark.parametrize("filters, shown", [
    ([], ["web"]),  # ps without -a: the running ones
    (["-a"], ["idle", "job", "web"]),
    (["-f", "label=tier"], ["web"]),
    (["-a", "-f", "label=tier=batch"], ["job"]),
    (["-f", "status=exited"], ["job"]),  # status= and exited= imply -a, as Docker's
    (["-f", "status=exited", "-f", "status=created"], ["idle", "job"]),
    (["-f", "exited=3"], ["job"]),
    (["-f", "exited=0"], []),
    (["-a", "-f", f"name={PREFIX}-(web|idle)"], ["idle", "web"]),
    (["-a", "-f", "ancestor=busybox"], ["idle", "job", "web"]),
    (["-a", "-f", "ancestor=busybox:latest", "-f", "label=tier"], ["job", "web"]),
    (["-a", "-f", f"since={PREFIX}-web"], ["idle", "job"]),
    (["-a", "-f", f"before={PREFIX}-idle", "-f", f"since={PREFIX}-web"], ["job"]),
    (["-a", "-f", f"network={PREFIX}-net"], ["web"]),
    (["-a", "-f", f"volume={PREFIX}-data"], ["web"]),
    (["-a", "-f", "volume=/data"], ["web"]),
    (["-a", "-f", "publish=80"], ["web"]),
    (["-a", "-f", "publish=8000-8100/tcp"], []),  # container ports: 8080 is the host's
    (["-a", "-f", "publish=70-90"], ["web"]),
    (["-a", "-f", "expose=53/udp"], ["job"]),
    (["-a", "-f", "expose=53"], []),  # tcp unless told
])
def test_ps_filters(scene, filters, shown):
    assert names("ps", *filters) == shown


def test_ps_filter_by_id_prefix(scene):
    cid = md("inspect", "-f", "{{.Id}}", f"{PREFIX}-job").stdout.strip()
    assert names("ps", "-a", "-f", f"id={cid[:8]}") == ["job"]


@pytest.mark.parametrize("args, words", [
    (["ps", "-f", "status=sleeping"], "status=sleeping"),
    (["ps", "-f", "exited=x"], "exited=x"),
    (["ps", "-f", "publish=http"], "publish=PORT[/PROTO]"),
    (["images", "-f", "status=running"], "for images"),
    (["volume", "ls", "-f", "dangling=perhaps"], "dangling=true or dangling=false"),
    (["network", "ls", "-f", "colour=red"], "for network ls"),
])
def test_listings_refuse_bad_filters(args, words):
    result = md(*args)
    assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr


def test_images_filters(scene):
    image = scene[:12] if not scene.startswith("sha256:") else scene[7:19]

    def ids(*filters: str) -> list[str]:
        return md("images", "-q", *filters).stdout.split()
    assert image in ids("-f", "dangling=true") and image not in ids("-f", "dangling=false")
    assert ids("-f", "label=stage=test") == [image]
    assert image not in ids("-f", "reference=busy*") and ids("-f", "reference=busy*")
    assert image in ids("-f", "since=busybox") and image not in ids("-f", "before=busybox")


def test_volume_ls_filters(scene):
    def volumes(*filters: str) -> list[str]:
        return [v for v in md("volume", "ls", "-q", *filters).stdout.split()
                if v.startswith(PREFIX)]
    assert volumes("-f", "dangling=true") == [f"{PREFIX}-spare"]
    assert volumes("-f", "dangling=false") == [f"{PREFIX}-data"]
    assert volumes("-f", "label=keep=yes") == [f"{PREFIX}-spare"]
    assert volumes("-f", f"name={PREFIX}-d", "-f", "driver=local") == [f"{PREFIX}-data"]


def test_network_ls_filters(scene):
    def networks(*filters: str) -> list[str]:
        return sorted(md("network", "ls", *filters, "--format", "{{.Name}}").stdout.split())
    assert networks("-f", "type=builtin") == ["bridge", "host", "none"]
    assert {f"{PREFIX}-net", f"{PREFIX}-empty"} <= set(networks("-f", "type=custom"))
    assert f"{PREFIX}-empty" in networks("-f", "dangling=true")
    assert f"{PREFIX}-net" not in networks("-f", "dangling=true")
    assert networks("-f", "label=team=a") == [f"{PREFIX}-net"]
    assert networks("-f", "driver=host") == ["host"]
    net_id = json.loads(md("network", "inspect", f"{PREFIX}-net").stdout)[0]["Id"]
    assert networks("-f", f"id={net_id[:10]}", "-f", "scope=local") == [f"{PREFIX}-net"]
    assert networks("-f", "name=^flt-e") == [f"{PREFIX}-empty"]


def test_images_reference_lists_only_the_names_that_match():
    """One image under two names: ``reference=`` shows the row of the name it matches, as
    Docker's ``images --filter reference=`` does, not every name of that image."""
    other = f"{PREFIX.lower()}-other/app:1"
    assert md("tag", "busybox", other).returncode == 0
    try:
        rows = md("images", "--filter", f"reference={PREFIX.lower()}-other/*",
                  "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        assert rows == [other]
        # docker images [REPOSITORY[:TAG]]: the same pattern, as an argument
        for pattern in (f"{PREFIX.lower()}-other/app", other, f"{PREFIX.lower()}-*/app:?"):
            assert md("images", pattern, "--format",
                      "{{.Repository}}:{{.Tag}}").stdout.split() == [other], pattern
        assert md("images", "-q", f"{PREFIX.lower()}-other/app:2").stdout == ""
        refused = md("images", "busybox", "other")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
    finally:
        md("rmi", other)
