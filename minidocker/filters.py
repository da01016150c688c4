"""Docker's ``--filter KEY=VALUE``: which objects a listing shows (``ps``, ``images``, ``volume
ls``, ``network ls``), the same rules for each kind of object.

A filter is a set of ``KEY=VALUE`` pairs, Docker's ``filters.Args``. Different keys must all
match; the same key given twice matches either value (``status=exited --filter
status=created``) — except ``label``, where every label asked for must be there
(``label=tier`` has the key, ``label=tier=web`` has it with that value). An unknown key is
refused, naming the keys that kind of object has. A prune takes ``until=TIME`` (made before
TIME, as ``events --until`` reads it), ``label=`` and ``label!=`` (has not that label). This module holds the rules; which keys a
kind has and what they look at lives with that kind (container/filters.py, image/filters.py,
volumes.py, network/networks.py), so the CLI and the Engine API (``GET /containers/json?
filters=...``) filter the same way.

Docker: "Filtering" in the reference of ``docker ps``, ``docker images``, ``docker volume ls``,
``docker network ls``; moby's ``api/types/filters``. Used by: the CLI's listings.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from minidocker.errors import MinidockerError

BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
PRUNE_FILTERS = ("label", "label!", "until")  # moby's prune filters, for every kind of object


@dataclass
class Filters:
    """The filters of one listing: ``{key: [values]}``."""

    args: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, items, accepted: tuple[str, ...], command: str) -> "Filters":
        """``--filter KEY=VALUE`` items as typed; a key ``command`` does not know is an
        error."""
        args: dict[str, list[str]] = {}
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise MinidockerError(f"invalid filter '{item}': use --filter KEY=VALUE, e.g. "
                                      "label=tier=web")
            if key not in accepted:
                raise MinidockerError(f"invalid filter '{key}' for {command}: use one of "
                                      f"{', '.join(accepted)}")
            if key == "until":  # a bad time is told now, even when nothing is to prune
                from minidocker.events import parse_time

                try:
                    parse_time(value)
                except MinidockerError as exc:
                    raise MinidockerError(f"invalid filter 'until={value}': {exc}") from None
            args.setdefault(key, []).append(value)
        return cls(args)

    def __contains__(self, key: str) -> bool:
        return key in self.args

    def __bool__(self) -> bool:
        return bool(self.args)

    def match(self, key: str, test: Callable[[str], bool]) -> bool:
        """True if ``key`` was not asked for, or ``test`` holds for one of its values."""
        values = self.args.get(key)
        return not values or any(test(value) for value in values)

    def match_labels(self, labels: dict) -> bool:
        """Every ``label=KEY`` or ``label=KEY=VALUE`` is among ``labels``, and no
        ``label!=KEY`` or ``label!=KEY=VALUE`` is."""
        def has(wanted: str) -> bool:
            key, sep, value = wanted.partition("=")
            return key in labels and (not sep or labels[key] == value)
        return (all(has(wanted) for wanted in self.args.get("label", []))
                and not any(has(unwanted) for unwanted in self.args.get("label!", [])))

    def match_until(self, created: str) -> bool:
        """``until=TIME`` (a prune's): made before TIME — a Unix time, an RFC 3339 date or a
        duration back from now (``24h``), as ``docker events --until`` reads it. An object
        whose own date is no time (an image's config is foreign input) is not matched: a
        prune takes only what its filters name."""
        from minidocker.events import parse_time

        untils = self.args.get("until", [])
        if not untils:
            return True
        try:
            made = parse_time(created) if isinstance(created, str) else None
        except MinidockerError:
            made = None
        return made is not None and all(made < parse_time(value) for value in untils)

    def match_prune(self, labels: dict, created: str) -> bool:
        """A prune's filters (``PRUNE_FILTERS``): the labels and the creation time match."""
        return self.match_labels(labels) and self.match_until(created)

    def match_name(self, name: str) -> bool:
        """``name=PATTERN``: a regular expression found in the name, as Docker matches."""
        def found(pattern: str) -> bool:
            try:
                return re.search(pattern, name) is not None
            except re.error as exc:
                raise MinidockerError(f"invalid filter 'name={pattern}': {exc} (it is a "
                                      "regular expression)") from None
        return self.match("name", found)

    def match_bool(self, key: str, actual: bool) -> bool:
        """``dangling=true``: the object's answer is the one asked for."""
        for value in self.args.get(key, []):
            if value.lower() not in BOOLEANS:
                raise MinidockerError(f"invalid filter '{key}={value}': use {key}=true or "
                                      f"{key}=false")
        return self.match(key, lambda value: BOOLEANS[value.lower()] == actual)

    def match_created(self, created: str, created_of: Callable[[str], str]) -> bool:
        """``before=X`` / ``since=X``: made strictly before / after X, whose creation time
        ``created_of(X)`` gives (ISO 8601 strings compare in time order)."""
        return (all(created < created_of(value) for value in self.args.get("before", []))
                and all(created > created_of(value) for value in self.args.get("since", [])))
