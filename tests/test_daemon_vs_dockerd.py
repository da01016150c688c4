"""Stage 12, side by side with Docker itself: the same docker CLI commands against dockerd 20.10
and against minidocker's daemon, and the JSON they answer compared key by key.

Every key dockerd returns is present in minidocker's answer with the same JSON type (a
``null`` from dockerd — Go's nil slice or map — matches anything). Keys whose values are data
(labels, container ids, network names) are compared under a placeholder. What is left is listed
in ``KNOWN`` with its reason: a test that fails names a new difference, or one that is gone.
"""

import json
import re
import shutil
import subprocess

import httpx
import pytest

from tests.conftest import MINIDOCKER
from tests.daemon_helpers import DOCKER, running_daemon
from tests.dockerd_helpers import DOCKERD, running_dockerd

pytestmark = pytest.mark.skipif(not (shutil.which(DOCKER) and shutil.which(DOCKERD)),
                                reason="needs the docker CLI and dockerd")

PREFIX = "vsdockerd-"
NAME, VOLUME, NETWORK = f"{PREFIX}c", f"{PREFIX}vol", f"{PREFIX}net"
EXITED = f"{PREFIX}exited"
PORT = "18471"

# "command:path" (dots, [] for list items, * for a data key) -> (the difference, its reason).
# Empty: the keys and types dockerd 20.10 answers are all in minidocker's answers. Left are
# differences of value, which a client does not trip on and this test does not assert:
# * ps: Image is the normalised reference (busybox:latest; dockerd keeps what was typed),
#   Size has no "(virtual ...)" (the daemon does not compute SizeRootFs), Ports shows no
#   [::] binding (minidocker publishes on IPv4 only);
# * a container on a user network has no alias of its short id (dockerd adds one), and
#   Networks.*.EndpointID is "" (minidocker's endpoint is its veth, named in network
#   inspect); the legacy top-level IPAddress/Gateway are filled for user networks too;
# * Config.AttachStd* are false whatever was attached (the create request's values are
#   client-side and not kept); HostConfig carries minidocker's own Security, NetworkAliases,
#   UsernsMap and Config its LowerDirs (extra keys, which Docker's clients ignore);
# * image ContainerConfig is the image's Config (dockerd: the config of the container that
#   made the last layer); GraphDriver points at minidocker's unpacked layers.
KNOWN: dict[str, tuple[str, str]] = {}


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    """(dockerd, minidocker's daemon), each with the same busybox image (``minidocker save``
    into ``docker load``), user network, named volume, running and exited container."""
    with running_dockerd(tmp_path_factory.mktemp("dockerd")) as dockerd, \
            running_daemon(tmp_path_factory.mktemp("md"), PREFIX) as md:
        saved = subprocess.run([*MINIDOCKER, "save", "busybox"], capture_output=True,
                               check=True).stdout  # the engine's own CLI writes the tar
        ok(dockerd.docker("load", input=saved))
        for daemon in (dockerd, md):
            ok(daemon.docker("network", "create", "--label", "course=12", NETWORK))
            ok(daemon.docker("volume", "create", "--label", "course=12", VOLUME))
            ok(daemon.docker("run", "-d", "--name", NAME, "--label", "course=12",
                             "-e", "GREETING=hi", "-v", f"{VOLUME}:/data",
                             "--network", NETWORK, "-p", f"{PORT}:80", "busybox",
                             "sleep", "300"))
            assert daemon.docker("run", "--name", EXITED, "busybox", "sh", "-c",
                                 "exit 3").returncode == 3
        try:
            yield dockerd, md
        finally:
            md.docker("rm", "-f", NAME, EXITED)
            md.docker("network", "rm", NETWORK)
            md.docker("volume", "rm", VOLUME)


def ok(result):
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


def json_type(value) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "string", list: "list",
            dict: "object"}.get(type(value), "null")


def differences(theirs, ours, path: str = "", data_keys: tuple[str, ...] = ()) -> dict:
    """``{path: problem}`` for each key of dockerd's JSON missing in ours or of another type."""
    found = {}
    if theirs is None:
        return found
    if json_type(theirs) != json_type(ours):
        return {path: f"{json_type(ours)} instead of {json_type(theirs)}"}
    if isinstance(theirs, list):
        if theirs and ours:
            found.update(differences(theirs[0], ours[0], f"{path}[]", data_keys))
    elif isinstance(theirs, dict):
        if path.rsplit(".", 1)[-1] in data_keys or any(ID.match(k) for k in theirs):
            if theirs and ours:  # a map keyed by data: compare one value with one value
                found.update(differences(next(iter(theirs.values())),
                                         next(iter(ours.values())), f"{path}.*", data_keys))
            return found
        for key, value in theirs.items():
            where = f"{path}.{key}" if path else key
            if key not in ours:
                found[where] = "missing"
            else:
                found.update(differences(value, ours[key], where, data_keys))
    return found


DATA_KEYS = ("Labels", "Networks", "Ports", "PortBindings", "ExposedPorts", "Volumes",
             "Options", "Containers", "DriverOpts", "Status", "Data", "Runtimes",
             "IndexConfigs")


def compare(name: str, theirs, ours) -> dict:
    return {f"{name}:{path}": problem
            for path, problem in differences(theirs, ours, data_keys=DATA_KEYS).items()}


def inspect(daemon, *args: str):
    return json.loads(ok(daemon.docker(*args)))


def found_in(daemons, kind: str, *args: str) -> dict:
    """The differences of one command's JSON (the first object of a list, the one line of
    a ``--format '{{json .}}'``)."""
    answers = []
    for daemon in daemons:
        out = ok(daemon.docker(*args))
        answer = json.loads(out.splitlines()[0]) if "{{json ." in " ".join(args) \
            else json.loads(out)
        answers.append(answer[0] if isinstance(answer, list) else answer)
    return compare(kind, *answers)


def test_inspect_key_by_key(daemons):
    found = {}
    for kind, target in (("container", NAME), ("container", EXITED), ("image", "busybox"),
                         ("network", NETWORK), ("network", "bridge"), ("volume", VOLUME)):
        found.update(found_in(daemons, kind, kind, "inspect", target))
    assert found == known("container:", "image:", "network:", "volume:")


def test_ps_images_and_version_key_by_key(daemons):
    found = {**found_in(daemons, "ps", "ps", "--filter", f"name={NAME}", "--format",
                        "{{json .}}"),
             **found_in(daemons, "ps", "ps", "-a", "--filter", f"name={EXITED}", "--format",
                        "{{json .}}"),
             **found_in(daemons, "images", "images", "busybox", "--format", "{{json .}}"),
             **found_in(daemons, "version", "version", "--format", "{{json .Server}}")}
    assert found == known("ps:", "images:", "version:")


def test_the_same_values_where_both_engines_agree(daemons):
    """Not only the keys: what the image is (the same bytes loaded in both) and what was asked
    for the container."""
    ids = {json.loads(ok(d.docker("image", "inspect", "busybox")))[0]["Id"] for d in daemons}
    assert len(ids) == 1
    keys = ("{{.Config.Labels}} {{.Config.Env}} {{.HostConfig.PortBindings}} "
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}} "
            "{{.State.Status}} {{.Path}} {{.Args}}")
    shown = {ok(d.docker("inspect", "-f", keys, NAME)) for d in daemons}
    assert len(shown) == 1, shown


def test_the_api_lists_key_by_key(daemons):
    """What docker-py and docker-compose read without the CLI: the list endpoints' JSON."""
    name, network = json.dumps({"name": [NAME]}), json.dumps({"name": [NETWORK]})
    found = {}
    for kind, path in (("GET /containers/json", f"/containers/json?filters={name}"),
                       ("GET /images/json", "/images/json"),
                       ("GET /networks", f"/networks?filters={network}"),
                       ("GET /volumes", "/volumes"), ("GET /info", "/info")):
        answers = [api(daemon, path) for daemon in daemons]
        if kind == "GET /volumes":
            answers = [{**a, "Volumes": [v for v in a["Volumes"] if v["Name"] == VOLUME]}
                       for a in answers]
        found.update(compare(kind, *(a[0] if isinstance(a, list) else a for a in answers)))
    assert found == known("GET ")


def api(daemon, path: str):
    transport = httpx.HTTPTransport(uds=str(daemon.socket))
    with httpx.Client(transport=transport, base_url="http://docker", timeout=30) as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


MISTAKES = [  # what a user gets wrong: the same exit code from both, and a message
    ("inspect", "nosuch"), ("rm", "nosuch"), ("logs", "nosuch"), ("start", "nosuch"),
    ("image", "inspect", "nosuch"), ("rmi", "nosuch"), ("network", "inspect", "nosuch"),
    ("network", "rm", "nosuch"), ("volume", "inspect", "nosuch"), ("volume", "rm", "nosuch"),
    ("network", "create", NETWORK), ("volume", "rm", VOLUME), ("rm", NAME), ("rmi", "busybox"),
    ("run", "--name", NAME, "busybox", "true"), ("exec", EXITED, "true"), ("kill", EXITED),
    ("network", "rm", NETWORK), ("run", "--rm", "busybox", "nosuchcmd"),
    ("run", "--rm", "busybox", "/etc/passwd"), ("run", "--rm", "busybox", "sh", "-c", "exit 7"),
]


def test_the_same_exit_codes_for_the_same_mistakes(daemons):
    image = daemons[1].docker("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
    for args in MISTAKES:
        # rmi by ID: refused by both (used, or tagged more than once), whatever other tests
        # of this session tagged busybox as; rmi of a name would only untag it then
        args = ("rmi", image) if args == ("rmi", "busybox") else args
        theirs, ours = (daemon.docker(*args) for daemon in daemons)
        assert (ours.returncode, bool(ours.stderr)) == (theirs.returncode, bool(theirs.stderr)), \
            f"{args}: dockerd {theirs.returncode} {theirs.stderr!r}, " \
            f"minidocker {ours.returncode} {ours.stderr!r}"


def known(*prefixes: str) -> dict:
    return {path: problem for path, (problem, _why) in KNOWN.items()
            if path.startswith(prefixes)}




def test_a_tmpfs_volume_lives_while_its_containers_run(daemons):
    """The local driver's ``-o type=tmpfs`` volume: shared by the containers that run, empty
    again once the last one is gone, its Options shown as given; a bad ``o=`` refused by both
    when a container mounts it."""
    volume, keeper, bad = f"{PREFIX}tmpfs", f"{PREFIX}keeper", f"{PREFIX}badtmpfs"
    tmpfs = ("-o", "type=tmpfs", "-o", "device=tmpfs")
    seen = []
    for daemon in daemons:
        try:
            ok(daemon.docker("volume", "create", *tmpfs, "-o", "o=size=2m,uid=1000", volume))
            ok(daemon.docker("volume", "create", *tmpfs, "-o", "o=size=2m,bogus=1", bad))
            ok(daemon.docker("run", "-d", "--name", keeper, "-v", f"{volume}:/data", "busybox",
                             "sleep", "300"))
            ok(daemon.docker("exec", keeper, "sh", "-c", "echo kept > /data/f"))
            shared = ok(daemon.docker("run", "--rm", "-v", f"{volume}:/data", "busybox", "sh",
                                      "-c", "cat /data/f; stat -c %u /data"))
            ok(daemon.docker("rm", "-f", keeper))
            after = ok(daemon.docker("run", "--rm", "-v", f"{volume}:/data", "busybox", "ls",
                                     "-A", "/data"))
            options = json.loads(ok(daemon.docker("volume", "inspect", "-f",
                                                  "{{json .Options}}", volume)))
            refused = daemon.docker("run", "--rm", "-v", f"{bad}:/data", "busybox", "true")
            seen.append((shared, after, options, refused.returncode, bool(refused.stderr)))
        finally:
            daemon.docker("rm", "-f", keeper)
            daemon.docker("volume", "rm", volume, bad)
    assert seen[0] == seen[1] == ("kept\n1000\n", "", {"type": "tmpfs", "device": "tmpfs",
                                                       "o": "size=2m,uid=1000"}, 125, True)


def test_mount_volume_opt_makes_the_volume_it_names(daemons):
    """``--mount type=volume,...,volume-opt=`` (HostConfig.Mounts[].VolumeOptions.DriverConfig
    and .Labels) makes the missing volume with those options; a value with commas is quoted
    whole, as the docker CLI's CSV wants. A tmpfs mount's TmpfsOptions (size, mode) hold too,
    and inspect shows each Mount as it was sent."""
    volume, name = f"{PREFIX}optvol", f"{PREFIX}opt"
    spec = (f"type=volume,source={volume},target=/x,volume-driver=local,volume-opt=type=tmpfs,"
            'volume-opt=device=tmpfs,"volume-opt=o=size=1m,uid=1000",volume-label=tier=cache')
    seen = []
    for daemon in daemons:
        try:
            ok(daemon.docker("create", "--name", name, "--mount", spec, "--mount",
                             "type=tmpfs,target=/t,tmpfs-size=64k,tmpfs-mode=1770", "busybox",
                             "sh", "-c", "stat -c %u /x; grep -c ' /x tmpfs .*size=1024k' "
                             "/proc/mounts; grep -c ' /t tmpfs .*size=64k,mode=1770' "
                             "/proc/mounts"))
            out = ok(daemon.docker("start", "-a", name))
            mounts = json.loads(ok(daemon.docker("inspect", "-f", "{{json .HostConfig.Mounts}}",
                                                 name)))
            shown = json.loads(ok(daemon.docker("volume", "inspect", volume)))[0]
            seen.append((out, mounts, shown["Options"], shown["Labels"]))
        finally:
            daemon.docker("rm", "-f", name)
            daemon.docker("volume", "rm", volume)
    assert seen[0] == seen[1]
    assert seen[0][0] == "1000\n1\n1\n" and seen[0][3] == {"tier": "cache"}


def test_a_restart_starts_its_tmpfs_volume_anew(daemons):
    """``restart`` stops the tmpfs volume's only user, so its data goes, on both daemons."""
    volume, name = f"{PREFIX}restartvol", f"{PREFIX}restart"
    seen = []
    for daemon in daemons:
        try:
            ok(daemon.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs",
                             volume))
            ok(daemon.docker("run", "-d", "--name", name, "-v", f"{volume}:/data", "busybox",
                             "sleep", "300"))
            ok(daemon.docker("exec", name, "touch", "/data/f"))
            ok(daemon.docker("restart", "-t", "0", name))
            seen.append(ok(daemon.docker("exec", name, "ls", "-A", "/data")))
        finally:
            daemon.docker("rm", "-f", name)
            daemon.docker("volume", "rm", volume)
    assert seen == ["", ""]


def test_prune_filters_read_alike(daemons):
    """moby's prune filters on both daemons: several ``label!=`` keep only what has them all,
    a second ``until=`` is refused, a negative Go duration is a time ahead of now."""
    scope = ("--filter", "label=course=prunefilters")
    seen = []
    for daemon in daemons:
        for suffix, labels in (("none", ()), ("a", ("a=1",)), ("ab", ("a=1", "b=2"))):
            ok(daemon.docker("create", "--name", f"{PREFIX}pf-{suffix}", "--label",
                             "course=prunefilters", *(f"--label={label}" for label in labels),
                             "busybox", "true"))
        try:
            twice = daemon.docker("container", "prune", "-f", *scope, "--filter", "until=1h",
                                  "--filter", "until=2h")
            ok(daemon.docker("container", "prune", "-f", *scope, "--filter", "label!=a",
                             "--filter", "label!=b", "--filter", "until=-10m"))
            left = ok(daemon.docker("ps", "-a", *scope, "--format", "{{.Names}}")).split()
            seen.append((twice.returncode, "more than one until filter" in twice.stderr, left))
        finally:
            daemon.docker("rm", "-f", *(f"{PREFIX}pf-{s}" for s in ("none", "a", "ab")))
    assert seen[0] == seen[1] == (1, True, [f"{PREFIX}pf-ab"])
