"""The process defaults an image carries (config.md's ``config``), and Docker's ``--change``.

``commit -c 'CMD ["sh"]'`` and ``import -c 'ENV A=1'`` take Dockerfile-style instructions and
apply them to the image config: CMD and ENTRYPOINT (exec form as JSON, or the shell form, which
becomes ``["/bin/sh", "-c", "..."]``), ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL.
Spec: image-spec config.md (``config``: Cmd, Entrypoint, Env, WorkingDir, User, Labels,
ExposedPorts, StopSignal). Docker docs: ``docker commit --change``, ``docker import --change``.
Used by: notebook 05-images (``commit``).
"""

import json
import shlex

from minidocker.errors import MinidockerError

CHANGES = ("CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "LABEL", "EXPOSE", "STOPSIGNAL")


def apply_changes(config: dict, changes: list[str]) -> dict:
    """A copy of the ``config`` section with each change applied in order."""
    result = json.loads(json.dumps(config or {}))
    for change in changes:
        instruction, _, argument = change.strip().partition(" ")
        instruction, argument = instruction.upper(), argument.strip()
        if instruction not in CHANGES or not argument:
            raise MinidockerError(f"invalid change {change!r}: use one of "
                                  f"{', '.join(CHANGES)} followed by its value, e.g. "
                                  "'CMD [\"sh\"]'")
        if instruction in ("CMD", "ENTRYPOINT"):
            result["Cmd" if instruction == "CMD" else "Entrypoint"] = _command(argument)
        elif instruction == "ENV":
            for key, value in _pairs(argument):
                env = [e for e in result.get("Env", []) if e.split("=", 1)[0] != key]
                result["Env"] = [*env, f"{key}={value}"]
        elif instruction == "LABEL":
            result.setdefault("Labels", {}).update(_pairs(argument))
        elif instruction == "EXPOSE":
            for port in argument.split():
                port = port if "/" in port else f"{port}/tcp"
                result.setdefault("ExposedPorts", {})[port] = {}
        else:
            result[{"WORKDIR": "WorkingDir", "USER": "User",
                    "STOPSIGNAL": "StopSignal"}[instruction]] = argument
    return result


def _pairs(argument: str) -> list[tuple[str, str]]:
    """``A=1 B="two words"`` -> [(A, 1), (B, two words)]; the old form ``KEY rest of line``
    (no ``=`` in the first word) is one pair."""
    words = shlex.split(argument)
    if "=" not in words[0]:
        key, _, value = argument.partition(" ")
        return [(key, value.strip())]
    return [tuple(word.split("=", 1)) for word in words if "=" in word]


def _command(argument: str) -> list[str]:
    if argument.startswith("["):
        try:
            value = json.loads(argument)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", argument]  # the shell form
