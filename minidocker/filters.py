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

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from minidocker.errors import MinidockerError

BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
BOOLEAN_FILTERS = ("dangling", "all")  # true or false wherever a listing or prune takes them
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
            if item == "":  # the docker CLI skips an empty --filter ""
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
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
            if key in BOOLEAN_FILTERS:  # also told now, as moby's GetBoolOrDefault up front
                boolean(key, value)
            values = args.setdefault(key, [])
            if value not in values:  # moby's filters.Args is a set of values for each key
                values.append(value)
        if len(args.get("until", [])) > 1:  # which would win? moby refuses to guess
            raise MinidockerError("more than one until filter specified: give one --filter "
                                  "until=TIME")
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
        """Every ``label=KEY`` or ``label=KEY=VALUE`` is among ``labels``, and not every
        ``label!=KEY`` or ``label!=KEY=VALUE`` is: as moby's ``matchLabels``, which keeps an
        object only when it has all the ``label!`` labels (``label!=a --filter label!=b``
        prunes what lacks a or lacks b)."""
        def has(wanted: str) -> bool:
            key, sep, value = wanted.partition("=")
            return key in labels and (not sep or labels[key] == value)
        unwanted = self.args.get("label!", [])
        return (all(has(wanted) for wanted in self.args.get("label", []))
                and not (unwanted and all(has(label) for label in unwanted)))

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
        return made is not None and made < parse_time(untils[0])  # parse allows only one

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
        return self.match_either(key, actual, not actual)

    def match_either(self, key: str, if_true: bool, if_false: bool) -> bool:
        """A boolean filter whose two questions are not each other's opposite: does the
        object match ``key=true`` (``if_true``), does it match ``key=false`` (``if_false``)."""
        return self.match(key, lambda value: if_true if boolean(key, value) else if_false)

    def match_created(self, created: str, created_of: Callable[[str], str]) -> bool:
        """``before=X`` / ``since=X``: made strictly before / after X, whose creation time
        ``created_of(X)`` gives (ISO 8601 strings compare in time order)."""
        return (all(created < created_of(value) for value in self.args.get("before", []))
                and all(created > created_of(value) for value in self.args.get("since", [])))


def boolean(key: str, value: str) -> bool:
    """A boolean filter's value: ``true``/``1`` or ``false``/``0``, else the error."""
    if value.lower() not in BOOLEANS:
        raise MinidockerError(f"invalid filter '{key}={value}': use {key}=true or {key}=false")
    return BOOLEANS[value.lower()]


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``, which Docker's ``reference=`` filters use: ``*`` is any run of
    characters but ``/``, ``?`` one character but ``/``, ``[a-z]`` and ``[^a-z]`` classes,
    ``\\`` quotes the next character. A malformed pattern is an error, as Go's
    ``ErrBadPattern`` ("syntax error in pattern")."""
    return re.fullmatch(_go_pattern(pattern), name, re.DOTALL) is not None


@functools.lru_cache(maxsize=64)  # a listing asks the same few patterns again and again
def _go_pattern(pattern: str) -> str:
    """``pattern`` as a regular expression, read as Go's ``path.Match`` reads it."""
    out, rest = [], pattern
    while rest:
        char, rest = rest[0], rest[1:]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            negated = rest.startswith("^")
            ranges, rest = _go_class(rest[1:] if negated else rest, pattern)
            out.append(("[^%s]" if negated else "[%s]") % ranges if ranges else
                       "[\\s\\S]" if negated else "(?!)")
        else:
            if char == "\\":  # the next character, whatever it is
                if not rest:
                    _bad(pattern)
                char, rest = rest[0], rest[1:]
            out.append(re.escape(char))
    return "".join(out)


def _go_class(rest: str, pattern: str) -> tuple[str, str]:
    """The ranges of a class up to its ``]`` (one at least), as a regex class's inside; the
    pattern after it. A range whose ends are backwards matches nothing, as in Go."""
    ranges = []
    while not (rest.startswith("]") and ranges):
        low, rest = _go_char(rest, pattern)
        high = low
        if rest.startswith("-"):
            high, rest = _go_char(rest[1:], pattern)
        ranges.append(f"{re.escape(low)}-{re.escape(high)}" if low <= high else "")
    return "".join(ranges), rest[1:]


def _go_char(rest: str, pattern: str) -> tuple[str, str]:
    """One character of a class (``\\`` quotes it), as Go's ``getEsc``: none, a bare ``-``
    or ``]``, or a pattern that ends there is malformed."""
    if rest.startswith("\\"):
        rest = rest[1:]
    elif rest.startswith(("-", "]")):
        rest = ""
    if len(rest) < 2:
        _bad(pattern)
    return rest[0], rest[1:]


def _bad(pattern: str) -> NoReturn:
    raise MinidockerError(f"invalid filter pattern {pattern!r}: syntax error in pattern (Go's "
                          "path.Match rules: *, ?, [a-z], [^a-z], \\ to quote)")
