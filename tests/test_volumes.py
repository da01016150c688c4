"""Stage 7: volumes — the flags parsed like Docker's, the volume store and its commands, and
mounts made for real inside private mount namespaces of forked children."""

import errno
import json
import os
import shutil
import traceback
import uuid
from pathlib import Path

import pytest

from minidocker import kernel, volumes
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.volumes import Mount, MountRequest


@pytest.fixture(autouse=True)
def state(monkeypatch):
    """A state root of each test's own, on the session's tmpfs: its volumes, no containers."""
    root = Path(os.environ["MINIDOCKER_ROOT"]) / f"volume-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MINIDOCKER_ROOT", str(root))
    yield root
    shutil.rmtree(root, ignore_errors=True)


# --- parsing the flags ------------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("/data", MountRequest("volume", "", "/data")),
    ("/srv:/data", MountRequest("bind", "/srv", "/data", create_source=True)),
    ("/srv:/data:ro", MountRequest("bind", "/srv", "/data", readonly=True, mode="ro",
                                   create_source=True)),
    ("/srv/:/data/:rw", MountRequest("bind", "/srv", "/data", mode="rw", create_source=True)),
    ("db:/var/lib/db", MountRequest("volume", "db", "/var/lib/db", mode="z")),
    ("db:/var/lib/db:ro", MountRequest("volume", "db", "/var/lib/db", readonly=True,
                                       mode="ro")),
    ("db:/x:ro,nocopy", MountRequest("volume", "db", "/x", readonly=True, mode="ro,nocopy",
                                     nocopy=True)),
])
def test_volume_flag(spec, expected):
    assert volumes.parse_volume(spec) == expected


def test_mount_flag(tmp_path):
    assert volumes.parse_mount(f"type=bind,src={tmp_path},dst=/x,readonly") == \
        MountRequest("bind", str(tmp_path), "/x", readonly=True)
    assert volumes.parse_mount(f"type=bind,source={tmp_path},target=/x,ro=false") == \
        MountRequest("bind", str(tmp_path), "/x")
    assert volumes.parse_mount("type=volume,source=db,destination=/db,volume-nocopy") == \
        MountRequest("volume", "db", "/db", mode="z", nocopy=True)
    assert volumes.parse_mount("target=/anon") == MountRequest("volume", "", "/anon", mode="z")
    # read as CSV, as the docker CLI reads it: a quoted field keeps its commas
    opts = ('dst=/c,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs,'
            '"volume-opt=o=size=1m,uid=1000",volume-label=tier=cache')
    assert volumes.parse_mount(opts) == MountRequest(
        "volume", "", "/c", mode="z", labels={"tier": "cache"},
        driver_options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"})
    fields = ["type=volume", "volume-opt=o=size=1m,uid=1000", 'a"b']
    assert volumes.mount_fields(volumes.mount_text(fields)) == fields
    assert volumes.parse_mount("type=tmpfs,dst=/run,tmpfs-size=1m,tmpfs-mode=1770") == \
        MountRequest("tmpfs", "", "/run", tmpfs_options="size=1048576,mode=1770")
    assert volumes.parse_tmpfs("/run:size=64k,mode=700,ro") == \
        MountRequest("tmpfs", "", "/run", readonly=True, tmpfs_options="size=65536,mode=700")


# Each flag's parser, and what it says of bad values: (the value, a piece of its one-line error).
BAD_FLAGS = {
    volumes.parse_volume: [
        ("./data:/x", '"./data" includes invalid characters for a local volume name, only '
                      '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                      "directory, use absolute path"),
        ("data", "the path inside the container must be absolute"),
        ("/srv:data", "the path inside the container must be absolute"),
        ("/srv:/", "cannot replace the container's root"),
        ("/srv:/x:rx", "invalid mode: 'rx'"),
        ("/srv:/x:ro,rw", "invalid mode: 'ro,rw'"),
        ("/srv:/x:nocopy", "invalid mode: 'nocopy'"),
        ("/a:/b:ro:extra", "invalid volume specification"),
        (":/x", "invalid volume specification"),
    ],
    volumes.parse_mount: [
        ("type=bind,source=/no/such/dir,target=/x", "bind source path does not exist: "
                                                    "/no/such/dir"),
        ("type=bind,source=rel,target=/x", "must be an absolute host path"),
        ("type=nfs,target=/x", "invalid mount type 'nfs'"),
        ("type=volume,source=db", "target is required"),
        ("type=volume,target=/x,color=red", "unexpected key 'color'"),
        ("type=volume,target=/x,readonly=maybe", "invalid value for readonly: 'maybe'"),
        ("type=volume,source=./db,target=/x", "invalid characters for a local volume name"),
        ("type=tmpfs,source=x,target=/x", "a tmpfs has no source"),
        ("type=volume,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-size' with mount type "
                                                "'volume'"),
        ("type=tmpfs,target=/x,tmpfs-size=lots", "invalid value 'lots' for tmpfs-size"),
        ("type=tmpfs,target=/x,tmpfs-mode=rwx", "invalid tmpfs mode 'rwx'"),
        ("type=bind,source=/,target=/x,bind-propagation=shared", "keeps every mount private"),
        ("target=/x,volume-driver=nfs", "unknown volume driver 'nfs'"),
        ('target=/x,"volume-opt=o=a,b"c', "quote a field that holds commas whole"),
        ("type=bind,source=/,target=/x,volume-opt=type=tmpfs", "cannot mix 'volume-opt'"),
    ],
    volumes.parse_tmpfs: [
        ("/run:exec", "unknown tmpfs option 'exec'"),
    ],
}


@pytest.mark.parametrize("parse, spec, message", [
    pytest.param(parse, spec, message, id=f"{parse.__name__}-{spec}")
    for parse, bad in BAD_FLAGS.items() for spec, message in bad])
def test_bad_flag(parse, spec, message):
    """Each bad -v, --mount or --tmpfs value gets one line that says what is wrong."""
    with pytest.raises(MinidockerError) as caught:
        parse(spec)
    assert message in str(caught.value)


def test_volumes_from():
    theirs = [Mount("volume", "/v/_data", "/data", Name="v", Driver="local", Mode="z"),
              Mount("bind", "/srv", "/srv", Propagation="rprivate").to_dict(),
              Mount("tmpfs", "", "/run")]
    assert volumes.parse_volumes_from("web:ro") == ("web", "ro")
    assert volumes.parse_volumes_from("web") == ("web", "")
    with pytest.raises(MinidockerError, match="invalid --volumes-from"):
        volumes.parse_volumes_from("web:z")
    copied = volumes.volumes_from(theirs, "")
    assert [(m.Destination, m.RW) for m in copied] == [("/data", True), ("/srv", True)]
    assert [(m.RW, m.Mode) for m in volumes.volumes_from(theirs, "ro")] == [(False, "ro")] * 2


def test_a_mount_round_trips_through_json():
    mount = Mount("tmpfs", "", "/run", RW=False, Options="size=1024")
    assert Mount.from_dict(json.loads(json.dumps(mount.to_dict()))) == mount
    assert Mount.from_dict({**mount.to_dict(), "Future": 1}) == mount  # newer records


# --- resolve: requests become mounts ----------------------------------------------------------

def test_resolve_makes_volumes_and_covers_the_image_volumes(tmp_path):
    host = tmp_path / "made-by-run"
    requests = [volumes.parse_volume(s) for s in ("db:/db/inner", f"{host}:/srv:ro", "/anon")]
    requests.append(volumes.parse_mount("type=tmpfs,target=/run"))
    mounts = volumes.resolve(requests, image_volumes=["/db", "/srv", "/cache/"])
    by_path = {m.Destination: m for m in mounts}
    assert sorted(by_path) == ["/anon", "/cache", "/db", "/db/inner", "/run", "/srv"]
    assert mounts.index(by_path["/db"]) < mounts.index(by_path["/db/inner"])  # parent first
    assert host.is_dir()  # -v creates a missing host directory, as Docker does
    assert by_path["/srv"] == Mount("bind", str(host), "/srv", Mode="ro", RW=False,
                                    Propagation="rprivate")
    named = by_path["/db/inner"]
    assert (named.Type, named.Name, named.Anonymous) == ("volume", "db", False)
    assert named.Source == volumes.get_volume("db").Mountpoint
    for path in ("/anon", "/cache", "/db"):
        assert by_path[path].Anonymous and len(by_path[path].Name) == 64
        assert volumes.get_volume(by_path[path].Name).Anonymous
    assert by_path["/run"].Type == "tmpfs"


def test_resolve_refuses_a_duplicate_and_replaces_inherited():
    with pytest.raises(MinidockerError, match="Duplicate mount point: /x"):
        volumes.resolve([volumes.parse_volume("a1:/x"), volumes.parse_volume("/x/")])
    assert volumes.list_volumes() == []  # refused before anything was made
    inherited = [Mount("volume", "/v", "/x", Name="old"), Mount("volume", "/w", "/y", Name="w")]
    mounts = volumes.resolve([volumes.parse_volume("new:/x")], inherited=inherited)
    assert [(m.Destination, m.Name) for m in mounts] == [("/x", "new"), ("/y", "w")]


# --- the volume store -------------------------------------------------------------------------

def test_create_is_idempotent_and_names_are_checked(state):
    first = volumes.create_volume("data.1", labels={"k": "v"})
    assert volumes.create_volume("data.1") == first
    assert Path(first.Mountpoint) == state / "volumes" / "data.1" / "_data"
    on_disk = json.loads((state / "volumes" / "data.1" / "volume.json").read_text())
    assert on_disk["Anonymous"] is False and on_disk["Labels"] == {"k": "v"}
    for bad in ("x", "-x", "a/b", "../etc"):
        with pytest.raises(MinidockerError, match="invalid characters"):
            volumes.create_volume(bad)
    with pytest.raises(NotFound, match="No such volume: nope"):
        volumes.get_volume("nope")


@pytest.mark.parametrize("options, message", [
    ({"size": "10m"}, 'invalid option: "size"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"device": "/srv"}, 'missing required option: "type"'),
    ({"o": "bind"}, 'missing required option: "type"'),
    ({"type": "none", "o": "bind", "device": "srv"}, "give an absolute path"),
], ids=["unknown-key", "type-alone", "device-alone", "o-alone", "relative-device"])
def test_local_driver_options_are_checked_as_moby_does(options, message):
    with pytest.raises(MinidockerError, match=message):
        volumes.create_volume("opts", options=options)


def test_local_driver_options_are_kept_and_shown(state):
    options = {"type": "tmpfs", "device": "tmpfs", "o": "size=10m"}
    volume = volumes.create_volume("opts", options=options)
    assert volumes.get_volume("opts").inspect()["Options"] == options
    assert volumes.create_volume("plain").inspect()["Options"] is None  # as Docker: null
    assert volume.data == volume.Mountpoint  # not a bind: the tmpfs is mounted on its _data
    assert volume.driver_mounted and not volumes.create_volume("plain").driver_mounted
    assert volumes.resolve([MountRequest("volume", "opts", "/data")])[0].Source == volume.data
    bound = volumes.create_volume("bound", options={"type": "none", "o": "bind",
                                                    "device": str(state)})
    assert volumes.resolve([MountRequest("volume", "bound", "/data")])[0].Source == bound.data


def test_in_use_volumes_are_not_removed_or_pruned():
    named = volumes.create_volume("keep")
    anon = volumes.create_volume(anonymous=True)
    loose = volumes.create_volume(anonymous=True)
    users = volumes.volume_users([("web", [Mount("volume", named.Mountpoint, "/d",
                                           Name="keep").to_dict()]),
                            ("db", [Mount("volume", anon.Mountpoint, "/d", Name=anon.Name,
                                          Anonymous=True)])])
    assert users == {"keep": ["web"], anon.Name: ["db"]}
    with pytest.raises(Conflict, match="volume keep is in use by container web"):
        volumes.remove_volume("keep", users)
    with pytest.raises(Conflict):
        volumes.remove_volume("keep", users, force=True)
    assert volumes.prune_volumes(users) == ([loose.Name], 0)
    assert volumes.prune_volumes(users, everything=True) == ([], 0)
    assert volumes.prune_volumes({}, everything=True)[0] == sorted(["keep", anon.Name])


def test_prune_finishes_a_removal_that_was_cut_short(state):
    cut_short = state / "volumes" / ".removing-999999999-old"  # no such PID: its rm died
    running = state / "volumes" / f".removing-{os.getpid()}-busy"  # an rm still at work
    for path in (cut_short, running):
        (path / "_data").mkdir(parents=True)
    volumes.prune_volumes({})
    assert not cut_short.exists() and running.exists()


def test_rm_v_removes_only_anonymous_volumes_no_one_else_uses():
    named, mine, shared = (volumes.create_volume("named"), volumes.create_volume(anonymous=True),
                           volumes.create_volume(anonymous=True))
    mounts = [Mount("volume", v.Mountpoint, f"/{i}", Name=v.Name, Anonymous=v.Anonymous)
              for i, v in enumerate((named, mine, shared))]
    removed = volumes.remove_anonymous([m.to_dict() for m in mounts],
                                       {shared.Name: ["other"]})
    assert removed == [mine.Name]
    assert {v.Name for v in volumes.list_volumes()} == {"named", shared.Name}


# --- the commands -----------------------------------------------------------------------------

def test_volume_commands(md):
    assert md("volume", "create", "web-data", "--label", "tier=web").stdout == "web-data\n"
    anonymous = md("volume", "create").stdout.strip()
    assert len(anonymous) == 64
    listing = md("volume", "ls").stdout.splitlines()
    assert listing[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert sorted(line.split()[1] for line in listing[1:]) == sorted([anonymous, "web-data"])
    assert sorted(md("volume", "ls", "-q").stdout.split()) == sorted([anonymous, "web-data"])
    [shown] = json.loads(md("volume", "inspect", "web-data").stdout)
    assert shown["Labels"] == {"tier": "web"} and shown["Driver"] == "local"
    assert shown["Mountpoint"].endswith("/volumes/web-data/_data")
    assert set(shown) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                          "Scope"}
    Path(shown["Mountpoint"], "file").write_bytes(b"x" * 1500)

    bad = md("volume", "create", "./data")
    assert bad.returncode == 1 and "invalid characters" in bad.stderr
    missing = md("volume", "rm", "nope", "web-data")
    assert missing.returncode == 1 and "No such volume: nope" in missing.stderr
    assert missing.stdout == "web-data\n"  # the others are still removed
    assert md("volume", "rm", "-f", "nope").returncode == 0
    assert md("volume", "inspect", "web-data").returncode != 0


def test_volume_prune_command(md):
    volumes.create_volume("named")
    anonymous = volumes.create_volume(anonymous=True)
    Path(anonymous.Mountpoint, "f").write_bytes(b"x" * 2500)
    pruned = md("volume", "prune", "-f")
    assert pruned.stdout == f"Deleted Volumes:\n{anonymous.Name}\n\nTotal reclaimed space: " \
                            "2.5kB\n"
    assert md("volume", "prune", "-f").stdout == "Total reclaimed space: 0B\n"
    assert md("volume", "prune", input="n\n").stdout.startswith("WARNING!")
    assert md("volume", "ls", "-q").stdout == "named\n"
    assert md("volume", "prune", "-a", "-f").stdout.startswith("Deleted Volumes:\nnamed\n")


def test_volume_rm_refuses_a_volume_a_container_uses(md):
    from minidocker.container import records

    if "Mounts" not in records.ContainerRecord.__dataclass_fields__:
        pytest.skip("container records have no Mounts yet")
    volume = volumes.create_volume("busy")
    record = records.ContainerRecord(Id="f" * 64, Name="user", Image="sha256:0", Config={},
                                     HostConfig={})
    record.Mounts = [Mount("volume", volume.Mountpoint, "/d", Name="busy").to_dict()]
    record.save()
    refused = md("volume", "rm", "busy")
    assert refused.returncode == 1
    assert "volume busy is in use by container user" in refused.stderr
    assert md("volume", "prune", "-a", "-f").stdout == "Total reclaimed space: 0B\n"


# --- mounting, for real, in a child's private mount namespace ---------------------------------

def in_child(work) -> dict:
    """Run ``work()`` in a forked child with a mount namespace of its own; its answer (a dict,
    or the error it raised) comes back as JSON. The child's mounts go when it exits."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            kernel.unshare(kernel.CLONE_NEWNS)
            kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
            answer = work()
        except BaseException as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()}
        os.write(write_fd, json.dumps(answer).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        answer = json.loads(f.read())
    os.waitpid(pid, 0)
    return answer


def image_root(path: Path, greeting: str) -> str:
    """A tmpfs with a little image in it (mounted by the child, gone with it)."""
    path.mkdir(parents=True, exist_ok=True)
    kernel.mount("tmpfs", str(path), "tmpfs", 0, "mode=755")
    os.makedirs(path / "etc/app/conf.d")
    (path / "etc/app/app.conf").write_text(greeting)
    os.chown(path / "etc/app/app.conf", 1000, 1001)
    os.chmod(path / "etc/app/app.conf", 0o640)
    os.chmod(path / "etc/app", 0o750)
    os.symlink("app.conf", path / "etc/app/current")
    os.mkfifo(path / "etc/app/pipe")
    os.makedirs(path / "run")
    os.makedirs(path / "var")
    os.symlink("/run", path / "var/run")  # absolute: means the container's /run
    os.symlink("../../..", path / "escape")
    return str(path)


def writable(path: str) -> str:
    try:
        with open(path, "w") as f:
            f.write("x")
        return "yes"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def test_mount_all_binds_seeds_and_mounts_tmpfs(state, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "hello").write_text("from the host")
    (tmp_path / "hostfile").write_text("one file")
    requests = [volumes.parse_volume(f"{host}:/mnt/rw"),
                volumes.parse_volume(f"{host}:/mnt/ro:ro"),
                volumes.parse_volume(f"{tmp_path / 'hostfile'}:/etc/hostfile:ro"),
                volumes.parse_volume("config:/etc/app"),
                volumes.parse_tmpfs("/var/run/cache:size=1m,mode=1777")]
    mounts = volumes.resolve(requests)

    def first_container():
        root = image_root(state / "root1", "image one")
        volumes.mount_all(mounts, root)
        st = os.stat(f"{root}/run/cache")
        return {"rw": Path(root, "mnt/rw/hello").read_text(),
                "rw-write": writable(f"{root}/mnt/rw/new"),
                "ro-write": writable(f"{root}/mnt/ro/new"),
                "file": Path(root, "etc/hostfile").read_text(),
                "file-write": writable(f"{root}/etc/hostfile"),
                "tmpfs": (oct(st.st_mode & 0o7777), os.statvfs(f"{root}/run/cache").f_blocks),
                "seeded": Path(root, "etc/app/app.conf").read_text()}

    seen = in_child(first_container)
    assert "error" not in seen, seen.get("traceback")
    assert seen["rw"] == "from the host" and seen["rw-write"] == "yes"
    assert (host / "new").read_text() == "x"  # the write reached the host's directory
    assert seen["ro-write"] == "EROFS" and seen["file-write"] == "EROFS"
    assert seen["file"] == "one file"
    assert seen["tmpfs"] == ["0o1777", 256]  # 1m in 4k pages, at /run via the /var/run link
    assert seen["seeded"] == "image one"

    data = Path(volumes.get_volume("config").Mountpoint)
    conf = os.lstat(data / "app.conf")
    assert (conf.st_uid, conf.st_gid, oct(conf.st_mode & 0o777)) == (1000, 1001, "0o640")
    assert os.readlink(data / "current") == "app.conf"
    assert os.path.exists(data / "pipe") and (data / "conf.d").is_dir()
    assert oct(data.stat().st_mode & 0o777) == "0o750"  # the volume takes the dir's mode
    assert volumes.get_volume("config").Seeded

    def second_container():  # another image, the same volume: no second seeding
        root = image_root(state / "root2", "image two")
        volumes.mount_all(mounts, root)
        return {"seen": Path(root, "etc/app/app.conf").read_text()}

    assert in_child(second_container) == {"seen": "image one"}
    assert [p for p in os.listdir(state / "root1")] == []  # nothing left in the parent


def test_nocopy_volume_is_not_seeded(state):
    mounts = volumes.resolve([volumes.parse_mount("source=bare,target=/etc/app,"
                                                  "volume-nocopy")])

    def look():
        root = image_root(state / "root", "x")
        volumes.mount_all(mounts, root)
        return {"ls": os.listdir(f"{root}/etc/app")}

    assert in_child(look) == {"ls": []}
    assert not volumes.get_volume("bare").Seeded


@pytest.mark.parametrize("destination", ["/escape/etc", "/escape"])
def test_a_symlink_cannot_lead_a_mount_out_of_the_root(state, tmp_path, destination):
    mounts = volumes.resolve([volumes.parse_volume(f"{tmp_path}:{destination}")])

    def mount_through_the_link():
        volumes.mount_all(mounts, image_root(state / "root", "x"))
        return {}

    answer = in_child(mount_through_the_link)
    assert answer.get("error", "").startswith("MinidockerError: cannot mount at "
                                              f"{destination}: it leads out of the container")


def test_mount_point_kinds_must_match(state, tmp_path):
    (tmp_path / "file").write_text("")

    def dir_onto_file():
        root = image_root(state / "root", "x")
        volumes.mount_all(volumes.resolve([volumes.parse_volume(f"{tmp_path}:/etc/app/"
                                                                "app.conf")]), root)
        return {}

    assert "cannot mount a directory at /etc/app/app.conf: the image has a file" in \
        in_child(dir_onto_file)["error"]


def test_volume_inspect_format(md):
    volumes.create_volume("fmt-vol", labels={"tier": "db"})
    try:
        shown = md("volume", "inspect", "-f", "{{.Name}} {{json .Labels}}", "fmt-vol")
        assert shown.stdout == 'fmt-vol {"tier":"db"}\n'
        assert md("volume", "inspect", "--format", "{{.Name", "fmt-vol").returncode == 64
    finally:
        volumes.remove_volume("fmt-vol", {})
