"""Stage 13 — from Compose files on disk to a checked project model.

What ``minidocker compose`` does before any container exists, in order:

1. find the files: each ``-f``, or ``compose.yaml`` (``compose.yml``, ``docker-compose.yml``,
   ``docker-compose.yaml``) in this directory or the nearest parent, plus its
   ``*.override.*`` file when there is one; the first file's directory is the project's;
2. read the environment: the shell's, over the project's ``.env`` (or ``--env-file``);
3. per file: parse the YAML (``!reset``/``!override`` tags known), replace the variables
   (interpolation.py), check every key and write it in the canonical form (schema.py);
4. merge the files in order (merge.py);
5. name the project: ``-p``, ``$COMPOSE_PROJECT_NAME``, the file's ``name:``, or the
   directory's name — lower case, only ``a-z 0-9 _ -``, as Compose normalises it;
6. complete the model: the ``default`` network of services that name none, the host names of
   networks and volumes (``<project>_<name>``), the services of the active profiles only;
7. check what refers to what: each ``depends_on``, ``links``, network and volume exists, every
   build context is a directory, and ``depends_on`` has no cycle (order.py).

Spec: the Compose Specification, 03-compose-file.md (file names), 04-version-and-name.md,
12-interpolation.md, 13-merge.md, 15-profiles.md.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from minidocker.compose import interpolation, merge, model, order, schema
from minidocker.compose.schema import ComposeFileError, Override, Reset, Where

FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass
class Options:
    """The global flags of ``minidocker compose``."""

    files: list[str] = field(default_factory=list)  # -f
    project_name: str = ""  # -p
    project_directory: str = ""  # --project-directory
    env_file: str = ""  # --env-file
    profiles: list[str] = field(default_factory=list)  # --profile
    environ: dict[str, str] | None = None  # the shell's (default: os.environ)
    cwd: str = ""
    builds: bool = True  # check each build context (``stack deploy`` ignores ``build:``)
    files_flag: str = "-f"  # the option that names the files (``stack deploy``'s is -c)


def load(options: Options, services: list[str] = ()) -> model.Project:
    """The project of ``options``; ``services`` named on the command line are enabled even
    if their profile is not active (as Compose does)."""
    environ = dict(os.environ if options.environ is None else options.environ)
    files = find_files(options, environ)
    directory = Path(options.project_directory or files[0].parent).resolve()
    env = {**dotenv(options, directory), **environ}
    warnings: list[str] = []
    tree = {}
    origins: dict[str, str] = {}  # service -> the last file that defined it
    for path in files:
        where = Where(path.name, project_dir=directory, env=tuple(env.items()))
        canonical = read_file(path, env, where, warnings)
        origins.update(dict.fromkeys(canonical.get("services", {}), path.name))
        tree = merge.merge(tree, canonical)
    name = project_name(options, environ, tree, directory)
    profiles = options.profiles or [p for p in environ.get("COMPOSE_PROFILES", "").split(",")
                                    if p]
    tree = complete(tree, name, profiles, services, origins)
    check_references(tree, origins, options.builds)
    return make_project(tree, name, directory, files, warnings)


# --- 1. the files -------------------------------------------------------------------------------

def find_files(options: Options, environ: dict) -> list[Path]:
    cwd = Path(options.cwd or os.getcwd())
    named = options.files or [f for f in environ.get("COMPOSE_FILE", "").split(os.pathsep)
                              if f]
    if named:
        paths = [cwd / f for f in named]
        for path in paths:
            if path.is_dir():
                raise ComposeFileError(f"{path} is a directory: give {options.files_flag} the "
                                       "compose file in it (e.g. compose.yaml)")
            if not path.is_file():
                raise ComposeFileError(f"{path}: no such file (check the {options.files_flag} "
                                       "option)")
        return paths
    for directory in [cwd, *cwd.parents]:
        for name in FILE_NAMES:
            if (directory / name).is_file():
                stem, suffix = name.rsplit(".", 1)
                override = directory / f"{stem}.override.{suffix}"
                return [directory / name, *([override] if override.is_file() else [])]
    raise ComposeFileError(f"no Compose file here: none of {', '.join(FILE_NAMES)} is in "
                           f"{cwd} or a parent directory (name one with -f)")


# --- 2. the environment -------------------------------------------------------------------------

def dotenv(options: Options, directory: Path) -> dict[str, str]:
    path = Path(options.env_file) if options.env_file else directory / ".env"
    if options.env_file and not path.is_file():
        raise ComposeFileError(f"--env-file {path}: no such file")
    return interpolation.read_env_file(path) if path.is_file() else {}


# --- 3. one file ------------------------------------------------------------------------------

class ComposeYAMLLoader(yaml.SafeLoader):
    """YAML as Compose reads it: the override tags ``!reset`` and ``!override`` known."""


def _tag(kind):
    def construct(loader, node):
        if isinstance(node, yaml.MappingNode):
            return kind(loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return kind(loader.construct_sequence(node, deep=True))
        return kind(loader.construct_scalar(node) or None)
    return construct


ComposeYAMLLoader.add_constructor("!reset", _tag(Reset))
ComposeYAMLLoader.add_constructor("!override", _tag(Override))


def read_file(path: Path, env: dict, where: Where, warnings: list) -> dict:
    try:
        text = path.read_text()
    except OSError as err:
        raise ComposeFileError(f"{path}: cannot read it: {err.strerror}") from None
    try:
        tree = yaml.load(text, Loader=ComposeYAMLLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ComposeFileError(f"{path.name}: not valid YAML{at}: {problem}") from None
    tree = interpolation.interpolate_tree(tree, env, path.name,
                                          lambda w: warnings.append(w) if w not in warnings
                                          else None)
    return schema.normalise_file(tree, where)


# --- 5. the project's name ----------------------------------------------------------------------

def project_name(options: Options, environ: dict, tree: dict, directory: Path) -> str:
    given = options.project_name or environ.get("COMPOSE_PROJECT_NAME") or tree.get("name")
    name = normalise_name(given or directory.name)
    if not PROJECT_NAME.fullmatch(name):
        raise ComposeFileError(f"invalid project name {given or directory.name!r}: it must "
                               "contain only a-z, 0-9, _ and -, and start with a letter or a "
                               "digit (give one with -p)")
    return name


def normalise_name(name: str) -> str:
    """Compose's ``NormalizeProjectName``: lower case, then only ``a-z 0-9 _ -`` kept."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


# --- 6. the model completed ---------------------------------------------------------------------

def complete(tree: dict, name: str, profiles: list[str], wanted, origins: dict) -> dict:
    services = {key: service for key, service in tree.get("services", {}).items()
                if enabled(service, profiles, key in wanted)}
    for service in services.values():
        if "network_mode" not in service and not service.get("networks"):
            service["networks"] = {"default": None}
    used = {net for s in services.values() for net in s.get("networks", {})}
    networks = dict(tree.get("networks", {}))
    if "default" in used:
        networks.setdefault("default", {})
    volumes = dict(tree.get("volumes", {}))
    result = {"name": name, "services": services,
              "networks": {key: host_name(name, key, spec) for key, spec in networks.items()},
              "volumes": {key: host_name(name, key, spec) for key, spec in volumes.items()}}
    hidden = {key: s.get("profiles", []) for key, s in tree.get("services", {}).items()
              if key not in services}
    for key, service in services.items():
        for dependency in service.get("depends_on", {}):
            if dependency in hidden:
                raise ComposeFileError(
                    f"{origins[key]}: service {key!r}: key 'depends_on': service "
                    f"{dependency!r} is in profile {', '.join(hidden[dependency])}, which is "
                    f"not active (add --profile {hidden[dependency][0]})")
    return result


def enabled(service: dict, profiles: list[str], named: bool) -> bool:
    """A service without ``profiles`` always runs; one with them only when one is active (or
    the service is named on the command line); ``*`` activates every profile."""
    own = service.get("profiles")
    return not own or named or "*" in profiles or any(p in profiles for p in own)


def host_name(project: str, key: str, spec: dict) -> dict:
    """``<project>_<key>``, unless ``name:`` says otherwise; an external one is its name."""
    default = key if spec.get("external") else f"{project}_{key}"
    return {**spec, "name": spec.get("name") or default}


# --- 7. what refers to what ---------------------------------------------------------------------

def check_references(tree: dict, origins: dict, builds: bool = True) -> None:
    services = tree["services"]
    for key, service in services.items():
        where = Where(origins[key], "service", key)
        for dependency in [*service.get("depends_on", {}), *links(service)]:
            if dependency not in services:
                raise where.fail("depends_on" if dependency in service.get("depends_on", {})
                                 else "links", f"no service named {dependency!r} (the "
                                 f"services are {', '.join(services)})")
        for net in service.get("networks", {}):
            if net not in tree["networks"]:
                raise where.fail("networks", f"network {net!r} is not declared in the "
                                 "top-level networks")
        for volume in service.get("volumes", []):
            check_volume(volume, tree, where)
        check_image_or_build(service, where, builds)
        mode = service.get("network_mode", "")
        if mode.startswith("service:") and mode[8:] not in services:
            raise where.fail("network_mode", f"no service named {mode[8:]!r}")
    order.start_order({key: [*s.get("depends_on", {}), *links(s)]
                       for key, s in services.items()})


def links(service: dict) -> list[str]:
    """The services a service needs first besides ``depends_on``: ``links`` and
    ``volumes_from: [service]`` (not ``container:NAME``)."""
    named = [link.partition(":")[0] for link in service.get("links", [])]
    return named + [v.partition(":")[0] for v in service.get("volumes_from", [])
                    if not v.startswith("container:")]


def check_volume(volume: dict, tree: dict, where: Where) -> None:
    if volume["type"] == "volume" and volume.get("source") and \
            volume["source"] not in tree["volumes"]:
        raise where.fail("volumes", f"named volume {volume['source']!r} is not declared in "
                         "the top-level volumes (add it there, or write a path: ./"
                         f"{volume['source']})")
    if volume["type"] == "bind" and not volume.get("source"):
        raise where.fail("volumes", f"the bind mount of {volume['target']} needs a source")


def check_image_or_build(service: dict, where: Where, builds: bool = True) -> None:
    build = service.get("build")
    if not build and not service.get("image"):
        raise where.fail("image", "a service needs an image or a build")
    if build and builds:
        context = Path(build["context"])
        if not context.is_dir():
            raise where.fail("build.context", f"the build context {context} is not a "
                                              "directory (paths are relative to the project "
                                              "directory)")
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        if not dockerfile.is_file():
            raise where.fail("build.dockerfile", f"{dockerfile} does not exist")


def make_project(tree: dict, name: str, directory: Path, files: list[Path],
                 warnings: list[str]) -> model.Project:
    return model.Project(
        name=name, directory=directory, files=[str(f) for f in files],
        services={key: model.service_of(key, s, name) for key, s in tree["services"].items()},
        networks={key: model.network_of(key, n) for key, n in tree["networks"].items()},
        volumes={key: model.volume_of(key, v) for key, v in tree["volumes"].items()},
        model=tree, warnings=warnings)
