"""Instructions that change only the image config: ENV, CMD, WORKDIR, LABEL, USER, ...

Most of a Dockerfile never touches the filesystem. ``ENV PATH=...`` or ``CMD ["app"]`` change
the image config (config.md's ``config`` object: Env, Cmd, Entrypoint, WorkingDir, User,
ExposedPorts, Volumes, Labels, StopSignal, Healthcheck, OnBuild, Shell) and add a history
entry marked ``empty_layer``: the new image has the same layers as its parent. Docker's
history names such a step ``/bin/sh -c #(nop) ENV a=1`` ("no operation": nothing ran).

Docker's rules kept here: the shell forms of CMD and ENTRYPOINT become ``SHELL + [line]``;
ENTRYPOINT clears a CMD inherited from the base image; WORKDIR is relative to the previous
one; EXPOSE without a protocol means tcp; MAINTAINER sets the image's ``author``.

Spec: opencontainers/image-spec config.md; moby/buildkit frontend/dockerfile/docs/reference.md.
Used by: the builder, notebook 10-builds.
"""

import json
import posixpath
from collections.abc import Mapping

from minidocker.build.commands import (
    Arg,
    Cmd,
    Command,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from minidocker.image.store import Image, ImageStore, Layer, new_config
from minidocker.state import now

NOP = "/bin/sh -c #(nop) "
EPOCH = "1970-01-01T00:00:00Z"


def config_step(store: ImageStore, parent: Image, command: Command, shell: list[str],
                args: Mapping[str, str], cmd_set: bool) -> Image:
    """The parent image with ``command`` applied to its config and one ``empty_layer``
    history entry; same layers. ``cmd_set``: this stage has its own CMD already."""
    config = json.loads(json.dumps(parent.config))
    process = config.setdefault("config", {})
    apply(command, process, shell, cmd_set)
    if isinstance(command, Maintainer):
        config["author"] = command.maintainer
    entry = {"created": now(), "created_by": NOP + describe(command, args),
             "empty_layer": True}
    config["history"] = [*config.get("history", []), entry]
    config["created"] = entry["created"]
    return store.add_image(config, layers_of(parent), None)


def apply(command: Command, process: dict, shell: list[str], cmd_set: bool) -> None:
    """Change the ``config`` object as ``command`` says (ARG changes nothing here)."""
    if isinstance(command, Env):
        env = dict(item.partition("=")[::2] for item in process.get("Env") or [])
        env.update(command.pairs)
        process["Env"] = [f"{k}={v}" for k, v in env.items()]
    elif isinstance(command, Label):
        process["Labels"] = {**(process.get("Labels") or {}), **dict(command.pairs)}
    elif isinstance(command, Cmd):
        process["Cmd"] = command_of(command.command, command.shell_form, shell)
    elif isinstance(command, Entrypoint):
        process["Entrypoint"] = command_of(command.command, command.shell_form, shell)
        if not cmd_set:
            process["Cmd"] = None  # a CMD of the base image does not survive a new ENTRYPOINT
    elif isinstance(command, Workdir):
        process["WorkingDir"] = posixpath.normpath(
            posixpath.join(process.get("WorkingDir") or "/", command.path))
    elif isinstance(command, User):
        process["User"] = command.user
    elif isinstance(command, Expose):
        ports = process.get("ExposedPorts") or {}
        process["ExposedPorts"] = {**ports, **{p if "/" in p else f"{p}/tcp": {}
                                               for p in command.ports}}
    elif isinstance(command, Volume):
        process["Volumes"] = {**(process.get("Volumes") or {}), **{p: {} for p in command.paths}}
    elif isinstance(command, Stopsignal):
        process["StopSignal"] = command.signal
    elif isinstance(command, Shell):
        process["Shell"] = list(command.shell)
    elif isinstance(command, Onbuild):
        process["OnBuild"] = [*(process.get("OnBuild") or []), command.trigger]
    elif isinstance(command, Healthcheck):
        process["Healthcheck"] = healthcheck(command)


def command_of(command: tuple[str, ...], shell_form: bool, shell: list[str]) -> list[str]:
    return [*shell, *command] if shell_form else list(command)


def healthcheck(command: Healthcheck) -> dict:
    """HEALTHCHECK as the config holds it: the test, and only the durations given."""
    check = {"Test": list(command.test)}
    for name in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        value = getattr(command, {"StartPeriod": "start_period",
                                  "StartInterval": "start_interval"}.get(name, name.lower()))
        if value:
            check[name] = value
    return check


def describe(command: Command, args: Mapping[str, str]) -> str:
    """The history's words for a config step, with values after expansion."""
    if isinstance(command, Env | Label):
        return f"{command.keyword} " + " ".join(f"{k}={v}" for k, v in command.pairs)
    if isinstance(command, Arg):
        return "ARG " + " ".join(f"{k}={args[k]}" if k in args else k for k, _ in command.pairs)
    if isinstance(command, Cmd | Entrypoint):
        words = command.command if not command.shell_form else [" ".join(command.command)]
        return f"{command.keyword} {json.dumps(list(words))}"
    return " ".join(command.text.split())


def layers_of(image: Image) -> list[Layer]:
    return [Layer(d["digest"], diff_id, d["size"])
            for d, diff_id in zip(image.manifest["layers"], image.diff_ids, strict=True)]


def without_triggers(store: ImageStore, base: Image) -> Image:
    """The base image's config with its ONBUILD triggers gone: they run in this build, and
    its children do not inherit them (no history entry: nothing was built yet)."""
    config = json.loads(json.dumps(base.config))
    config.setdefault("config", {})["OnBuild"] = None
    return store.add_image(config, layers_of(base), None)


def scratch_image(store: ImageStore) -> Image:
    """``FROM scratch``: no layers, an empty config; always the same ID, so cache keys hold."""
    config = new_config([], {}, [])
    config["created"] = EPOCH
    return store.add_image(config, [], None)


def label_command(labels: Mapping[str, str]) -> Label:
    """``--label k=v``: Docker adds it as one more LABEL at the end of the target stage."""
    text = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return Label(tuple(sorted(labels.items())), file="--label", text=text)
