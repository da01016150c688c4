"""The builder: a Dockerfile becomes an image, one small step at a time.

A build is a loop (kaniko's ``build.go`` and Docker's classic builder are the models). Each
stage starts from its FROM image; then, for each instruction:

1. expand its variables with the environment from *before* it (ENV and ARG so far);
2. look up the cache: the same step on the same parent already made an image? Use it;
3. otherwise do it: a RUN runs in a real container (stage 6: ``create``, ``start``, ``wait``),
   a COPY/ADD copies into a container's root (filecopy.py), and ``commit`` turns the
   container's upper dir — exactly what the step changed — into one layer; every other
   instruction only changes the image config (an ``empty_layer`` history entry);
4. the result is an image in the store, the parent of the next step, remembered in the cache.

The target stage's last image gets the ``-t`` names. Stages the target does not need are
skipped, as BuildKit skips them. A failed step leaves no tag moved and no container behind.

The builder never makes a namespace, mount or cgroup itself: it is a front end of the engine
API, like the CLI's ``run`` and ``commit``.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md; moby builder/dockerfile
(dispatchers.go: one function per instruction; internals.go: probe the cache, create, commit).
Used by: ``minidocker build``, notebook 10-builds, lab 10-build.
"""

import posixpath
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from minidocker import events
from minidocker.build import cache, imageconfig
from minidocker.build.commands import (
    Add,
    Arg,
    Cmd,
    Command,
    Copy,
    FileCopy,
    Onbuild,
    Run,
    Stage,
)
from minidocker.build.context import BuildContext
from minidocker.build.expansion import expand, variables_used
from minidocker.build.instructions import PREDEFINED_ARGS, meta_args, parse_trigger, stages
from minidocker.build.parser import Dockerfile, DockerfileError
from minidocker.build.progress import Plain, short
from minidocker.build.remote import download, is_url
from minidocker.errors import MinidockerError
from minidocker.image.reference import parse_reference
from minidocker.image.store import Image, ImageStore

if TYPE_CHECKING:
    from minidocker.build.filecopy import CopyPlan
    from minidocker.container.records import ContainerRecord

DEFAULT_SHELL = ["/bin/sh", "-c"]


class BuildError(MinidockerError):
    """A step failed: the message names the Dockerfile line, the step and why."""


@dataclass
class BuildOptions:
    """``minidocker build``'s flags."""

    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    network: str = "bridge"
    remove: bool = True  # --rm: remove the intermediate containers
    force_remove: bool = False  # --force-rm
    pull: bool = False  # --pull: fetch every FROM image anew, even one in the store


@dataclass
class StageState:
    """Where one stage is: its image so far, and the build args in scope (ARG)."""

    stage: Stage
    image: Image
    args: dict[str, str] = field(default_factory=dict)
    cmd_set: bool = False  # a CMD of this stage (an ENTRYPOINT then keeps it)

    @property
    def config(self) -> dict:
        return self.image.config.get("config") or {}

    def environment(self) -> dict[str, str]:
        """What ``$VAR`` means now: the build args, then the image's ENV (ENV wins)."""
        env = dict(item.partition("=")[::2] for item in self.config.get("Env") or [])
        return {**self.args, **env}


class Builder:
    """One build: the Dockerfile, the context, the options, and where it prints."""

    def __init__(self, dockerfile: Dockerfile, context: BuildContext, options: BuildOptions,
                 progress=None, fetch_image=None, keys: cache.KeyRules = cache.KeyRules()):
        self.dockerfile, self.context, self.options = dockerfile, context, options
        self.progress = progress or Plain()
        # fetch_image(name, policy): the registry client's pull ("missing" or "always"),
        # handed in by the CLI, since the registry is a later stage than the builder
        self.fetch_image = fetch_image
        self.store = ImageStore()
        self.cache = cache.BuildCache(self.store)
        self.keys = keys  # step_key and files_checksum: the cache's rules (lab 10: yours)
        self.escape = dockerfile.escape_token
        self.meta = self.meta_values()
        self.stages = stages(dockerfile)
        self.built: dict[int, Image] = {}
        self.used_args: set[str] = set(self.meta)
        self.number, self.total = 0, 0
        self.sources: dict[str, tuple[Path, list[str]]] = {}  # COPY/ADD -> what it reads
        self.downloads = tempfile.TemporaryDirectory(dir=context.root.parent)  # ADD <url>

    # --- the story -----------------------------------------------------------------------------

    def build(self) -> Image:
        """Build the target stage (the last, or ``--target``) and the stages it needs; tag it."""
        with self.downloads:
            return self.build_target()

    def build_target(self) -> Image:
        """The story: the stages needed, each built step by step, then the names."""
        for tag in self.options.tags:
            parse_reference(tag)  # a bad -t fails before any work
        target = self.target_stage()
        needed = self.needed_stages(target)
        for stage in self.stages:
            if stage.index not in needed:
                self.progress.say(f"Skipping stage {stage_label(stage)}: not needed for the "
                                  f"target {stage_label(target)}")
        if self.options.labels:  # --label: one more LABEL at the end, as Docker adds it
            target.commands.append(imageconfig.label_command(self.options.labels))
        self.total = len(meta_args(self.dockerfile)) + sum(
            1 + len(s.commands) for s in self.stages if s.index in needed)
        for arg in meta_args(self.dockerfile):
            self.announce(arg)
        for stage in self.stages:
            if stage.index in needed:
                self.built[stage.index] = self.build_stage(stage)
        self.warn_unused_args()
        image = self.built[target.index]
        self.progress.say(f"Successfully built {short(image.id)}")
        self.cache.mark_final(image)
        with self.store.transaction():
            for tag in self.options.tags:
                self.progress.say(f"Successfully tagged {self.store.tag(image, tag)}")
        return image

    def build_stage(self, stage: Stage) -> Image:
        """FROM, its base image's ONBUILD triggers, then each instruction of the stage."""
        state = self.from_step(stage)
        for command in stage.commands:
            self.announce(command)
            self.step(state, command)
        return state.image

    def step(self, state: StageState, command: Command) -> None:
        """One instruction; an error names its line and step."""
        try:
            self.do_step(state, command)
        except (BuildError, DockerfileError):
            raise
        except MinidockerError as err:
            raise BuildError(f"{self.where(command)}: {err}") from None

    def do_step(self, state: StageState, command: Command) -> None:
        """One instruction: expand, cache lookup, run it (snapshot, layer), remember it."""
        env = state.environment()  # the variables from *before* this instruction
        expanded = expand(command, env, self.escape)
        if isinstance(expanded, Arg):
            self.declare_args(state, expanded)
        key = self.keys.step_key(state.image.id, repr(expanded),
                                 self.args_used(state, expanded, env),
                                 self.files_checksum(state, expanded))
        cached = None if self.options.no_cache else self.cache.lookup(key)
        if cached is not None:
            self.progress.cached()
            state.image = cached
        else:
            state.image = self.dispatch(state, expanded)
            self.cache.record(key, state.image)
        self.progress.done(state.image.id)
        state.cmd_set = state.cmd_set or isinstance(expanded, Cmd)

    def dispatch(self, state: StageState, command: Command) -> Image:
        """Do one instruction on the image so far; the new image."""
        if isinstance(command, Run):
            return self.run(state, command)
        if isinstance(command, FileCopy):
            return self.copy(state, command)
        return imageconfig.config_step(self.store, state.image, command,
                                       self.shell_of(state), state.args, state.cmd_set)

    # --- FROM and ONBUILD ------------------------------------------------------------------------

    def from_step(self, stage: Stage) -> StageState:
        """The stage's base: an earlier stage, ``scratch`` or an image in the store; then the
        base's ONBUILD triggers, run as if they were written here."""
        self.announce(stage.from_)
        base_name = expand(stage.from_, self.meta, self.escape).image
        image = self.base_image(base_name, stage)
        self.progress.done(image.id)
        state = StageState(stage, image)
        triggers = state.config.get("OnBuild") or []
        if triggers:
            self.progress.say(f"# Executing {len(triggers)} build trigger"
                              f"{'s' if len(triggers) > 1 else ''}")
            with self.store.transaction():  # kept (and pruned) with the build's images
                state.image = imageconfig.without_triggers(self.store, image)
                self.cache.record(self.keys.step_key(image.id, "ONBUILD done", {}, ""),
                                  state.image)
            for text in triggers:
                trigger = parse_trigger(Onbuild(text, file=f"{base_name} (ONBUILD)",
                                                line=stage.from_.line))
                self.step(state, trigger)
        return state

    def base_image(self, name: str, stage: Stage) -> Image:
        earlier = {s.name: s.index for s in self.stages if s.name and s.index < stage.index}
        if name.lower() in earlier:
            return self.built[earlier[name.lower()]]
        if name == "scratch":
            with self.store.transaction():
                image = imageconfig.scratch_image(self.store)
                self.cache.record(self.keys.step_key("", "FROM scratch", {}, ""), image)
            return image
        try:
            if self.fetch_image is not None:
                self.fetch_image(name, "always" if self.options.pull else "missing")
            return self.store.get(name)
        except MinidockerError as err:
            raise BuildError(f"{stage.from_.file}:{stage.from_.line}: FROM {name}: {err}") \
                from None

    # --- RUN: a real container ---------------------------------------------------------------------

    def run(self, state: StageState, command: Run) -> Image:
        """Run the command in a container of the image so far; commit its changes."""
        # The engine is imported only when a step runs: a build of cache hits never needs it.
        from minidocker.build.runstep import run_command, stdin_of
        from minidocker.container import Config, HostConfig, NetworkMode
        from minidocker.container.commit import commit
        from minidocker.container.create import create
        from minidocker.container.start import start
        from minidocker.namespaces import Stdio

        if command.mounts or command.security:
            raise BuildError(f"{self.where(command)}: RUN --mount and --security are BuildKit "
                             "features that minidocker's builder does not have")
        argv, script = run_command(command, self.shell_of(state))
        config = Config(Image=state.image.id, Cmd=argv, Entrypoint=[],
                        Env=[f"{k}={v}" for k, v in self.run_args(state).items()])
        network = command.network or self.options.network or "bridge"  # RUN --network wins
        host = HostConfig(NetworkMode=NetworkMode.parse(network), AutoRemove=False)
        record = create(config, host)
        self.progress.say(f" ---> Running in {record.Id[:12]}")
        succeeded = False
        try:
            with stdin_of(script) as stdin:
                out = self.progress.run_output()
                code = start(record, Stdio(stdin, out, out)).wait()
            if code != 0:
                raise BuildError(f"{self.where(command)}: The command '{' '.join(argv)}' "
                                 f"returned a non-zero code: {code}")
            image = commit(record.Id)
            succeeded = True
        finally:
            self.remove_intermediate(record, succeeded)
        return image

    def remove_intermediate(self, record: "ContainerRecord", succeeded: bool) -> None:
        """``--rm`` (the default) removes the step's container; ``--rm=false`` keeps it, unless
        ``--force-rm``. The container was the monitor's: teardown is the one way it ends."""
        from minidocker.container import teardown

        if self.options.remove or self.options.force_remove:
            if succeeded:
                self.progress.say(f"Removing intermediate container {record.Id[:12]}")
            teardown.remove(record, volumes_too=True)

    def shell_of(self, state: StageState) -> list[str]:
        return list(state.config.get("Shell") or DEFAULT_SHELL)

    def run_args(self, state: StageState) -> dict[str, str]:
        """The build args a RUN sees in its environment: those in scope that no ENV hides,
        and the predefined proxy args given with --build-arg."""
        hidden = {item.partition("=")[0] for item in state.config.get("Env") or []}
        proxies = {k: v for k, v in self.options.build_args.items() if k in PREDEFINED_ARGS}
        return {k: v for k, v in {**proxies, **state.args}.items() if k not in hidden}

    # --- COPY and ADD: files from the context or another stage ---------------------------------

    def copy(self, state: StageState, command: FileCopy) -> Image:
        """Copy into a container's root (never started); commit its changes as the layer."""
        from minidocker.build.filecopy import copy_into
        from minidocker.container import Config, teardown
        from minidocker.container.commit import commit
        from minidocker.container.create import create
        from minidocker.unionfs import OverlayDirs

        plan = self.copy_plan(state, command)
        source_root, source_layers = "", []
        if isinstance(command, Copy) and command.from_:
            source_layers = list(self.copy_source(command).layer_dirs())
        else:
            source_root = str(self.sources_of(command)[0])
        note = f"#(nop) {command.keyword} {self.files_checksum(state, command)} in {plan.dest}"
        record = create(Config(Image=state.image.id, Cmd=[*DEFAULT_SHELL, note], Entrypoint=[]))
        try:
            copy_into(OverlayDirs.under(record.directory, tuple(record.Config.LowerDirs)),
                      source_root, source_layers, plan)
            return commit(record.Id)
        finally:
            teardown.remove(record, volumes_too=True)

    def copy_plan(self, state: StageState, command: FileCopy) -> "CopyPlan":
        """Docker's COPY rules: the sources (wildcards matched in the context), the
        destination (relative to WORKDIR), whether it is a directory."""
        from minidocker.build.filecopy import CopyPlan

        from_stage = isinstance(command, Copy) and bool(command.from_)
        sources = [s.lstrip("/") or "." for s in command.sources] if from_stage \
            else self.sources_of(command)[1]
        dest = posixpath.join(state.config.get("WorkingDir") or "/", command.dest)
        dest_is_dir = command.dest.endswith("/") or command.dest in (".", "..")
        if len(sources) + len(command.contents) > 1 and not dest_is_dir:
            raise BuildError(f"{self.where(command)}: When using {command.keyword} with more "
                             "than one source file, the destination must be a directory and "
                             "end with a /")
        chmod = None
        if command.chmod:
            try:
                chmod = int(command.chmod, 8)
            except ValueError:
                raise BuildError(f"{self.where(command)}: invalid --chmod={command.chmod}: "
                                 "give an octal mode such as 755") from None
        return CopyPlan(sources, dest, dest_is_dir, command.chown, chmod,
                        [(h.name, h.content) for h in command.contents],
                        unpack=isinstance(command, Add) and command.unpack is not False
                        and not any(is_url(s) for s in command.sources))

    def copy_source(self, command: Copy) -> Image:
        """``--from``: a stage by name or index, or else an image in the store."""
        names = {s.name: s.index for s in self.stages if s.name}
        index = names.get(command.from_.lower(),
                          int(command.from_) if command.from_.isdigit() else None)
        if index is not None and index in self.built:
            return self.built[index]
        if index is not None and command.from_.isdigit() and index >= len(self.stages):
            raise BuildError(f"{self.where(command)}: --from={command.from_}: there is no "
                             f"stage {index} (stages count from 0)")
        try:
            return self.store.get(command.from_)
        except MinidockerError as err:
            raise BuildError(f"{self.where(command)}: --from={command.from_}: {err}") from None

    # --- what goes into a step's cache key --------------------------------------------------------

    def args_used(self, state: StageState, command: Command, env: Mapping[str, str]) -> dict:
        """The build args whose values the step depends on: all of them for a RUN (they are
        in its environment), else those its expansion read."""
        if isinstance(command, Run):
            return self.run_args(state)
        used = variables_used(command, env, self.escape) & set(state.args)
        return {name: state.args[name] for name in used}

    def files_checksum(self, state: StageState, command: Command) -> str:
        """For COPY/ADD: the checksum of what it copies (another stage: that stage's image)."""
        if not isinstance(command, FileCopy):
            return ""
        if isinstance(command, Copy) and command.from_:
            return self.copy_source(command).id
        root, paths = self.sources_of(command)
        return self.keys.files_checksum(root, paths)

    def sources_of(self, command: FileCopy) -> tuple[Path, list[str]]:
        """Where a COPY/ADD reads, and which paths there: the context (wildcards matched),
        or for ``ADD <url>`` the files downloaded, once per step."""
        if repr(command) not in self.sources:
            if not any(is_url(s) for s in command.sources):
                found = (self.context.root, [p for s in command.sources
                                             for p in self.context.matches(s, command.keyword)])
            elif all(is_url(s) for s in command.sources):
                folder = Path(tempfile.mkdtemp(dir=self.downloads.name))
                found = (folder, [download(s, folder, getattr(command, "checksum", ""))
                                  for s in command.sources])
            else:
                raise BuildError(f"{self.where(command)}: ADD takes URLs or local files, "
                                 "not both: split it into two ADDs")
            self.sources[repr(command)] = found
        return self.sources[repr(command)]

    # --- ARG: build args in scope -------------------------------------------------------------------

    def meta_values(self) -> dict[str, str]:
        """The ARGs before the first FROM, with --build-arg's values: what FROM lines see."""
        values: dict[str, str] = {}
        for arg in meta_args(self.dockerfile):
            for name, default in expand(arg, values, self.escape).pairs:
                value = self.options.build_args.get(name, default)
                if value is not None:
                    values[name] = value
        return values

    def declare_args(self, state: StageState, arg: Arg) -> None:
        """``ARG name[=default]``: in scope from here to the stage's end; --build-arg wins,
        then the default, then a meta arg of the same name."""
        for name, default in arg.pairs:
            self.used_args.add(name)
            value = self.options.build_args.get(name, default)
            if value is None:
                value = self.meta.get(name)
            if value is not None:
                state.args[name] = value

    def warn_unused_args(self) -> None:
        unused = sorted(set(self.options.build_args) - self.used_args - set(PREDEFINED_ARGS))
        if unused:
            self.progress.say(f"[Warning] One or more build-args {unused} were not consumed")

    # --- stages ------------------------------------------------------------------------------------

    def target_stage(self) -> Stage:
        if not self.options.target:
            return self.stages[-1]
        for stage in self.stages:
            if stage.name == self.options.target.lower():
                return stage
        names = ", ".join(s.name for s in self.stages if s.name) or "none"
        raise BuildError(f"failed to reach build target {self.options.target} in Dockerfile "
                         f"(stage names: {names})")

    def needed_stages(self, target: Stage) -> set[int]:
        """The target and every stage it uses, through FROM or ``COPY --from``, recursively."""
        by_name = {s.name: s.index for s in self.stages if s.name}
        needed, todo = set(), [target.index]
        while todo:
            index = todo.pop()
            if index in needed:
                continue
            needed.add(index)
            stage = self.stages[index]
            uses = [expand(stage.from_, self.meta, self.escape).image.lower()]
            uses += [c.from_.lower() for c in stage.commands if isinstance(c, Copy) and c.from_]
            for use in uses:
                if use in by_name and by_name[use] < index:
                    todo.append(by_name[use])
                elif use.isdigit() and int(use) < index:
                    todo.append(int(use))
        return needed

    # --- output --------------------------------------------------------------------------------------

    def announce(self, command: Command) -> None:
        self.number += 1
        self.progress.step(self.number, self.total, " ".join(command.text.split("\n")[0].split()))

    def where(self, command: Command) -> str:
        return f"{command.file}:{command.line}: step {self.number}/{self.total} ({command.keyword})"


def stage_label(stage: Stage) -> str:
    return f"{stage.index} ({stage.name})" if stage.name else str(stage.index)


def build(dockerfile: Dockerfile, context: BuildContext, options: BuildOptions,
          progress=None, fetch_image=None, keys: cache.KeyRules = cache.KeyRules()) -> Image:
    """Build ``dockerfile`` with the files of ``context``; the final image, tagged."""
    image = Builder(dockerfile, context, options, progress, fetch_image, keys).build()
    events.emit("image", "build", image.id, {"name": image.tags[0] if image.tags else image.id})
    return image
