"""Who the container's process runs as: ``-u``/``--user`` and the image's USER, resolved the way
Docker (runc, really) does it — through the container's *own* ``/etc/passwd`` and
``/etc/group``, never the host's. ``-u www-data`` means whatever uid the image calls www-data.

* ``NAME`` or ``UID``, optionally ``:GROUP`` or ``:GID``; empty means root;
* a name must exist in passwd (group) or the container does not start; a number need not
  (``-u 1000:1000`` works in an image that has never heard of 1000);
* the user's supplementary groups are the groups in ``/etc/group`` that list the user's name
  (plus ``--group-add``); whatever groups the caller had are cleared;
* HOME comes from the user's passwd entry.

The switch happens last, just before execve(2): setgroups(2), then setgid(2), then setuid(2) —
in that order, because after setuid a non-root process may no longer change its groups.

Man pages: passwd(5), group(5), setgroups(2), setresuid(2), credentials(7).
Docker docs: ``run --user``. Used by: notebook 09-security (``-u``).
"""

import os
from dataclasses import dataclass, field

from minidocker.errors import MinidockerError


@dataclass
class User:
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)  # supplementary groups
    home: str = "/root"
    name: str = "root"


def read_table(path: str) -> list[list[str]]:
    """The colon-separated entries of a passwd(5)/group(5) file; missing file: none."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return [line.split(":") for line in lines if line and not line.startswith("#")]


def resolve_user(spec: str | None, group_add: list[str] | None = None,
                 root: str = "/") -> User:
    """``-u`` as a User, looked up in the files under ``root`` (the container's /)."""
    name, _, group = (spec or "").partition(":")
    name = name or "0"
    passwd = [e for e in read_table(os.path.join(root, "etc/passwd")) if len(e) >= 7]
    groups = [e for e in read_table(os.path.join(root, "etc/group")) if len(e) >= 4]
    entry = _find(passwd, name)
    if entry is None and not name.isdigit():
        raise MinidockerError(f"unable to find user {name}: no matching entries in passwd file "
                              "(use a user the image knows, or a number: -u 1000:1000)")
    if entry:
        user = User(int(entry[2]), int(entry[3]), home=entry[5] or "/", name=entry[0])
    else:
        user = User(int(name), 0, home="/root" if name == "0" else "/", name=name)
    if group:
        user.gid = _group_id(groups, group)
    user.groups = sorted({int(e[2]) for e in groups if user.name in e[3].split(",")}
                         | {_group_id(groups, g) for g in group_add or []})
    return user


def _find(entries: list[list[str]], name_or_id: str) -> list[str] | None:
    """An entry by name, or (for a number) by id; a name wins, as in runc."""
    by_name = next((e for e in entries if e[0] == name_or_id), None)
    if by_name or not name_or_id.isdigit():
        return by_name
    return next((e for e in entries if e[2] == name_or_id), None)


def _group_id(groups: list[list[str]], name_or_id: str) -> int:
    entry = _find(groups, name_or_id)
    if entry:
        return int(entry[2])
    if name_or_id.isdigit():
        return int(name_or_id)
    raise MinidockerError(f"unable to find group {name_or_id}: no matching entries in group "
                          "file (use a group the image knows, or a number)")


def switch_user(user: User) -> None:
    """Become ``user``: supplementary groups, then the group, then the user id."""
    os.setgroups(user.groups)
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
