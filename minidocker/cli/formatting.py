"""How listings look: Docker's tables, its words for time and state, and ``--format``.

Each listing (``ps``, ``images``, ``network ls``, ``volume ls``, ``history``) turns its objects
into *rows*: dicts keyed by Docker's field names (``.ID``, ``.Names``, ``.Status``...), every
value already a string as Docker prints it. ``format_rows`` then prints them in one of three
ways, as docker/cli's formatter does:

* ``table TEMPLATE`` (the default is Docker's own): a header row made from the field names
  (``{{.ID}}`` -> ``CONTAINER ID``), then one row per object; ``\\t`` separates aligned columns;
* ``json``: each row as one line of JSON, the same as ``{{json .}}``;
* any other Go template (templates.py): one line per object, no header.

Model: docker/cli ``cli/command/formatter/`` (``container.go``, ``image.go``...) and the docs
page "Format command and log output". Used by notebooks 05-08 (their ``ps``/``images`` cells).
"""

from minidocker.cli.templates import parse
from minidocker.humanize import ago, created_at, ports_of, status

# The column header Docker prints for each field, per listing.
CONTAINER_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
    "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
}
IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
}
NETWORK_HEADERS = {
    "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
    "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}
VOLUME_HEADERS = {
    "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
}
HISTORY_HEADERS = {
    "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY", "Size": "SIZE",
    "Comment": "COMMENT",
}

# Docker's default formats (docker/cli's defaultContainerTableFormat and friends).
PS_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
            "{{.Ports}}\t{{.Names}}")
IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_DIGESTS_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                        "{{.CreatedSince}}\t{{.Size}}")
NETWORKS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
VOLUMES_TABLE = "table {{.Driver}}\t{{.Name}}"
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def format_rows(rows: list[dict], fmt: str | None, default: str, headers: dict) -> str:
    """The rows printed with ``fmt`` (``table ...``, ``json`` or a template), or ``default``."""
    fmt = (fmt or default).replace("\\t", "\t").replace("\\n", "\n")
    if fmt == "json":
        fmt = "{{json .}}"
    if fmt == "table":
        fmt = default
    if not fmt.startswith("table"):
        template = parse(fmt)
        return "".join(template.execute(row) + "\n" for row in rows)
    template = parse(fmt[len("table"):].strip())
    lines = [template.execute(headers), *(template.execute(row) for row in rows)]
    return format_table([line.split("\t") for line in lines])


def format_table(rows: list) -> str:
    """Columns padded to their widest cell, three spaces apart, as Docker's tabwriter."""
    width = max(len(row) for row in rows)
    rows = [list(row) + [""] * (width - len(row)) for row in rows]
    widths = [max(len(str(row[i])) for row in rows) for i in range(width)]
    return "".join("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                   + "\n" for row in rows)


# --- the rows of each listing ------------------------------------------------------------------

def container_row(record, no_trunc: bool = False) -> dict:
    """One line of ``ps``: Docker's ContainerContext fields, as strings."""
    command = " ".join(record.command)
    if not no_trunc and len(command) > 20:
        command = f"{command[:19]}…"
    labels = record.Config.Labels
    mounts = getattr(record, "Mounts", None) or []
    networks = (record.NetworkSettings.get("Networks") or {}).keys()
    return {
        "Command": f'"{command}"', "CreatedAt": created_at(record.Created),
        "ID": record.Id if no_trunc else record.Id[:12], "Image": record.Config.Image,
        "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Type") == "volume")),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in mounts),
        "Names": record.Name, "Networks": ",".join(networks), "Ports": ports_of(record),
        "RunningFor": f"{ago(record.Created)} ago", "State": record.State["Status"],
        "Status": status(record),
    }


def image_rows(image, digests: bool = False) -> list[dict]:
    """The lines of ``images`` for one image: one per tag (with ``digests``, one per tag and
    repo digest of its repository), ``<none>`` for a repository named only by digest, and
    ``<none>`` ``<none>`` for an image with no name at all (docker/cli's formatter rules)."""
    from minidocker.image.store import human_size

    created = image.config.get("created", "")
    common = {"CreatedAt": created_at(created), "CreatedSince": f"{ago(created)} ago",
              "ID": image.short_id, "Size": human_size(image.size)}
    by_repository: dict[str, tuple[list[str], list[str]]] = {}
    for tag in image.tags:
        by_repository.setdefault(tag.rpartition(":")[0], ([], []))[0].append(
            tag.rpartition(":")[2])
    for name in image.digests:
        repository, _, digest = name.partition("@")
        by_repository.setdefault(repository, ([], []))[1].append(digest)
    rows = []
    for repository, (tags, repo_digests) in by_repository.items() or [("<none>", ([], []))]:
        shown = (repo_digests or ["<none>"]) if digests else (repo_digests or ["<none>"])[:1]
        rows += [{**common, "Repository": repository, "Tag": tag, "Digest": digest}
                 for tag in tags or ["<none>"] for digest in shown]
    return rows


def network_row(network, no_trunc: bool = False) -> dict:
    return {"CreatedAt": created_at(network.created), "Driver": network.driver,
            "ID": network.id if no_trunc else network.id[:12],
            "Internal": "true" if network.internal else "false",
            "Labels": ",".join(f"{k}={v}" for k, v in network.labels.items()),
            "Name": network.name, "Scope": "local"}


def volume_row(volume) -> dict:
    return {"Driver": volume.Driver,
            "Labels": ",".join(f"{k}={v}" for k, v in volume.Labels.items()),
            "Mountpoint": volume.Mountpoint, "Name": volume.Name, "Scope": volume.Scope}


def history_row(entry: dict, image_id: str, size: str) -> dict:
    return {"Comment": entry.get("comment", ""), "CreatedBy": entry.get("created_by", "")[:45],
            "CreatedSince": f"{ago(entry.get('created', ''))} ago", "ID": image_id,
            "Size": size}
