"""Stage 13 — several ``-f`` files merged into one model, as Compose merges them.

``compose -f base.yml -f override.yml`` reads both files and lays the second over the first,
key by key, by the Compose Specification's rules:

* a mapping merges: missing entries are added, shared ones merged (``environment``,
  ``labels``, ``depends_on``, ``networks``, ``build.args``...);
* a sequence appends the later file's items (``cap_add``, ``dns``, ``expose``...) — a
  string list keeps each item once;
* ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced, not appended;
* ``ports`` and ``volumes`` are lists of unique resources: an item with the same unique key
  (a volume's target; a port's ip, target, published and protocol) replaces the earlier one;
* ``!reset`` removes what the earlier files said, ``!override`` replaces it whole.

Both files are in the canonical form first (schema.py), so a list ``environment`` merges with
a mapping one. Spec: the Compose Specification, "Merge and override" (13-merge.md).
"""

from minidocker.compose.schema import Override, Reset, Tagged

REPLACED = {"command", "entrypoint", "test"}
UNIQUE = {"volumes": lambda v: v["target"],
          "ports": lambda p: (p["host_ip"], p["target"], str(p["published"]), p["protocol"])}


def merge(base: dict, override: dict) -> dict:
    """``override`` laid over ``base`` (both canonical mappings); neither is changed."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            result.pop(key, None)
        elif isinstance(value, Override):
            result[key] = untag(value.value)
        elif key not in result or key in REPLACED:
            result[key] = untag(value)
        else:
            result[key] = merge_value(key, result[key], value)
    return result


def merge_value(key: str, old, new):
    if isinstance(old, dict) and isinstance(new, dict):
        return merge(old, new)
    if isinstance(old, list) and isinstance(new, list):
        return merge_list(key, old, new)
    return untag(new)


def merge_list(key: str, old: list, new: list) -> list:
    if key in UNIQUE:
        unique = UNIQUE[key]
        merged = {unique(item): item for item in old}
        for item in new:
            merged[unique(item)] = {**merged.get(unique(item), {}), **item}
        return list(merged.values())
    if all(isinstance(item, str) for item in old + new):
        return list(dict.fromkeys(old + new))
    return old + new


def untag(value):
    """A value with no ``!reset``/``!override`` left in it (the first file's own tags mean
    nothing: there is nothing before it to reset)."""
    if isinstance(value, Reset):
        return None
    if isinstance(value, Tagged):
        return untag(value.value)
    if isinstance(value, dict):
        return {k: untag(v) for k, v in value.items() if not isinstance(v, Reset)}
    return value
