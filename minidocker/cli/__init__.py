"""``minidocker`` — docker-style commands over the engine's stages.

This module only parses the command line and prints; the engine lives in the stage modules,
imported inside each command so that ``minidocker --help`` starts fast. How listings look
(tables, ``--format`` templates) lives in formatting.py and templates.py.

A ``MinidockerError`` becomes one line on stderr and Docker's CLI exit code, never a
traceback. As docker/cli (``cmd/docker/docker.go``, ``cli/required.go``) decides them:

* 125: a bad flag (unknown, or a bad value) of any command; and any error of ``run`` or
  ``create`` (an ``EngineCommand``): there the error keeps its own code, 125 when the engine
  failed, 126 when the command cannot be run, 127 when it was not found;
* the container's own exit code: ``run``, ``start -a``, ``attach``, ``exec``; 126 or 127 when
  ``exec`` cannot run its command (a step failed, or it was not found);
* 1: every other failed command (``inspect`` of a missing container, ``rm`` of a running
  one...), a wrong number of arguments and an unknown command.
"""

import contextlib
import os
import sys

import click

from minidocker.cli.flags import filter_option, prune_filter_option

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}
click.UsageError.exit_code = 125  # ``minidocker --nope``: Docker's code for a bad flag


class EngineCommand(click.Command):
    """``run`` and ``create``: an error keeps its own exit code (125, 126 or 127), and the
    process ends without the interpreter's teardown (``Main.main``)."""

    def invoke(self, ctx):
        ctx.find_root().command.ends_now = True
        return super().invoke(ctx)


def usage_exit_code(error: click.UsageError) -> int:
    """Docker's code for a usage error: 125 for a bad flag, 1 for a wrong argument count or
    an unknown command (cobra's flag errors vs ``cli.RequiresMinArgs`` and friends)."""
    if isinstance(error, click.NoSuchOption | click.BadOptionUsage):
        return 125
    if isinstance(error, click.BadParameter) and isinstance(error.param, click.Option):
        # a value that does not parse is a bad flag; a file that is not there (load -i) is
        # the command failing, as Docker finds out only when it opens the file
        return 1 if isinstance(error.param.type, click.Path) else 125
    return 1


class Group(click.Group):
    """Commands listed in the order they are defined, errors printed as one line."""

    def list_commands(self, ctx):
        """In the order the module defines them (click would sort them)."""
        return list(self.commands)

    def invoke(self, ctx):
        from minidocker.errors import MinidockerError

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = usage_exit_code(exc)
            raise
        except MinidockerError as exc:
            click.echo(f"minidocker: {exc}", err=True)
            ctx.exit(self.exit_code(ctx, exc.exit_code))
        except PermissionError as exc:
            click.echo(f"minidocker: permission denied: {exc.filename or exc}. minidocker's "
                       "state belongs to root: run it with sudo.", err=True)
            ctx.exit(self.exit_code(ctx, 125))

    def exit_code(self, ctx, engine_code: int) -> int:
        """The command decides: ``run``/``create`` keep the engine's code, the others 1 —
        except a command that could not be run in the container (``exec``): 126 or 127."""
        command = self.get_command(ctx, ctx.invoked_subcommand or "")
        return engine_code if isinstance(command, EngineCommand) or engine_code in (126, 127) \
            else 1


class Main(Group):
    """``minidocker`` itself: a command's module is imported when the command is used.

    The later stages' commands live in modules of their own (``COMMAND_MODULES``) that add
    themselves to ``main`` when imported. ``minidocker run`` imports lifecycle.py (and what
    it imports) but never compose's, the swarm's or the daemon's commands; ``--help``, the
    list of commands, imports them all."""

    ends_now = False  # set by an EngineCommand

    def main(self, args=None, **kwargs):
        """Run the command line. As the program itself (``args`` None: the process's own
        arguments), ``run`` and ``create`` then leave with exit(2) at once (``end_now``)."""
        try:
            return super().main(args, **kwargs)
        except SystemExit as done:
            if args is None and self.ends_now:
                end_now(done.code)
            raise

    def get_command(self, ctx, name):
        load_commands(name)
        return super().get_command(ctx, name)

    def list_commands(self, ctx):
        """Every command, alphabetical as cobra lists them: never in the order their modules
        happened to be imported."""
        load_commands()
        return sorted(self.commands)

    def format_commands(self, ctx, formatter):
        """``--help`` lists the commands in docker --help's sections: its common commands in
        Docker's order, then the others alphabetical (``help_section``), in one column."""
        shown = {name: command for name in self.list_commands(ctx)
                 if (command := self.get_command(ctx, name)) is not None and not command.hidden}
        sections = {"Common Commands": [name for name in COMMON_COMMANDS if name in shown],
                    "Management Commands": [], "Swarm Commands": [], "Commands": []}
        for name, command in shown.items():
            if name not in COMMON_COMMANDS:
                sections[help_section(name, command)].append(name)
        width = max(map(len, shown))  # the names padded alike: one column, as docker's
        limit = formatter.width - 6 - width
        for title, names in sections.items():
            if names:
                with formatter.section(title):
                    formatter.write_dl([(name.ljust(width), shown[name].get_short_help_str(limit))
                                        for name in names])


# docker --help's sections (docker/cli, cli/cobra.go): the commands annotated "category-top"
# in their order (minidocker has no search or version), then the commands with subcommands —
# the swarm's apart — then the others.
COMMON_COMMANDS = ("run", "exec", "ps", "build", "pull", "push", "images", "login", "logout",
                   "info")
SWARM_COMMANDS = ("node", "service", "stack", "swarm")


def help_section(name: str, command: click.Command) -> str:
    """Where ``minidocker --help`` lists a command that is not a common one."""
    from minidocker.cli.system import OUT_OF_SCOPE  # one-line stand-ins for Docker's groups

    if name in SWARM_COMMANDS:
        return "Swarm Commands"
    if isinstance(command, click.Group) or name in OUT_OF_SCOPE:
        return "Management Commands"
    return "Commands"


def end_now(code: int | str | None) -> None:
    """Leave without the interpreter's teardown: flush what we printed, run the atexit
    handlers, then os._exit(2) — the kernel frees the memory at once, where the interpreter
    would first free the ~230 modules ``run`` imported, one object at a time (~5-10 ms of a
    ~150 ms command). Only once everything is written and closed, and no other thread runs
    (it would be cut off): otherwise the usual way, SystemExit."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    import atexit

    atexit._run_exitfuncs()
    if isinstance(code, str):
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a pipe nobody reads
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def require_root(command: str) -> None:
    if os.geteuid() != 0:
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"'{command}' needs root: namespaces, mounts and cgroups are "
                              f"root's tools. Run it with sudo: sudo minidocker {command} ...")


@click.group(cls=Main, context_settings=CONTEXT)
@click.version_option(package_name="minidocker", message="minidocker %(version)s")
def main():
    """minidocker — a container engine you can read, built on the real Linux kernel.

    Start with:  minidocker run --rm -it busybox sh

    Every command works like Docker's. Run 'minidocker doctor' if something does not work.
    """


@main.command(context_settings=CONTEXT)
@click.argument("container")
def diff(container):
    """Show what a container changed: A added, C changed, D deleted."""
    from minidocker.container.commit import diff as changes

    for change in changes(container):
        click.echo(f"{change.kind} {change.path}")


@main.command(context_settings=CONTEXT)
@click.option("-a", "--author", default="", help="Author (e.g. \"Ada <ada@example.com>\").")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION",
              help="Apply a Dockerfile instruction to the config (CMD, ENV, WORKDIR, ...).")
@click.argument("container")
@click.argument("repository", required=False)
def commit(author, message, changes, container, repository):
    """Create a new image from a container's changes."""
    require_root("commit")
    from minidocker.container.commit import commit as make_image

    click.echo(make_image(container, repository, author, message, list(changes)).id)


@main.command(context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all images (also the "
              "intermediate images of build steps).")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show the digests registries know them by.")
@click.option("--format", "fmt", metavar="FORMAT", help="'table TEMPLATE', 'json' or a Go "
              "template, e.g. '{{.Repository}}:{{.Tag}}' (fields: .ID .Repository .Tag "
              ".Digest .CreatedSince .CreatedAt .Size).")
@filter_option
@click.argument("repository", required=False, metavar="[REPOSITORY[:TAG]]")
def images(show_all, quiet, digests, fmt, filters, repository):
    """List images (those of REPOSITORY[:TAG] only, a pattern as --filter reference= takes)."""
    from minidocker.cli.formatting import (
        IMAGE_HEADERS,
        IMAGES_DIGESTS_TABLE,
        IMAGES_TABLE,
        format_rows,
        image_rows,
    )
    from minidocker.image import filters as by
    from minidocker.image.store import ImageStore

    store = ImageStore()
    images = store.images()
    if not show_all:  # build steps' images are intermediate, as Docker's: shown with -a
        from minidocker.build.cache import BuildCache

        steps = BuildCache(store).intermediate_ids()
        images = [image for image in images
                  if image.tags or image.digests or image.id not in steps]
    for broken in (image for image in images if image.damage):
        name = broken.tags[0] if broken.tags else broken.short_id
        click.echo(f"minidocker: image {name} is damaged: {broken.damage}; remove it with "
                   f"'minidocker rmi -f {name}' or run 'minidocker image prune'", err=True)
    if repository:  # what docker's CLI does with it: one more reference= pattern
        filters = (*filters, f"reference={repository}")
    chosen = by.select(images, by.parse(filters), store)
    rows = [row for image in chosen for row in image_rows(image, digests)]
    if quiet:
        click.echo("".join(dict.fromkeys(f"{row['ID']}\n" for row in rows)), nl=False)
        return
    table = IMAGES_DIGESTS_TABLE if digests else IMAGES_TABLE
    click.echo(format_rows(rows, fmt, table, IMAGE_HEADERS), nl=False)


@main.command(context_settings=CONTEXT)
@click.argument("source")
@click.argument("target")
def tag(source, target):
    """Create a tag TARGET that refers to SOURCE."""
    require_root("tag")
    from minidocker.image.store import ImageStore

    store = ImageStore()
    with store.transaction():  # the image cannot go between finding it and naming it
        store.tag(store.get(source), target)


@main.command(context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Untag even if a container uses it.")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents.")
@click.argument("images", nargs=-1, required=True)
def rmi(force, no_prune, images):
    """Remove one or more images (a name untags; the last name deletes)."""
    require_root("rmi")
    from minidocker.image.verbs import remove_image

    with image_users() as users:
        for name in images:
            click.echo("\n".join(remove_image(name, force, users, prune_parents=not no_prune)))


@contextlib.contextmanager
def image_users():
    """Which containers use which image (image ID -> container IDs), kept true while the caller
    removes images: the containers lock holds every create back until the caller is done. The
    engine's lock order: the containers lock, then the store lock, then one container's."""
    from minidocker.container import records

    with records.all_locked():
        yield records.images_in_use()


@main.command(context_settings=CONTEXT)
@click.argument("image")
@click.option("--format", "fmt", metavar="FORMAT", help="'table TEMPLATE', 'json' or a Go "
              "template (fields: .ID .CreatedSince .CreatedBy .Size .Comment).")
def history(image, fmt):
    """Show the history of an image, newest first."""
    from minidocker.cli.formatting import HISTORY_HEADERS, HISTORY_TABLE, format_rows, history_row
    from minidocker.image.store import human_size
    from minidocker.image.verbs import history as entries

    rows = [history_row(entry, image_id, human_size(size))
            for image_id, entry, size in entries(image)]
    click.echo(format_rows(rows, fmt, HISTORY_TABLE, HISTORY_HEADERS), nl=False)


@main.group(cls=Group, context_settings=CONTEXT)
def image():
    """Manage images."""


@image.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "template", help="Format with a Go template, "
              "e.g. '{{.Id}}' or '{{json .RepoDigests}}'.")
@click.argument("names", nargs=-1, required=True)
def image_inspect(template, names):
    """Show low-level information on images (by name, name@sha256:..., or ID), as JSON."""
    from minidocker.cli.lifecycle import print_inspected
    from minidocker.image.verbs import inspect_image

    print_inspected(template, names, inspect_image)


@image.command("prune", context_settings=CONTEXT)
@click.option("-a", "--all", "everything", is_flag=True, help="Remove every unused image, "
              "not just untagged ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@prune_filter_option
def image_prune(everything, force, filters):
    """Remove unused images (--filter until=24h, label=KEY[=VALUE], label!=KEY[=VALUE])."""
    require_root("image prune")
    from minidocker.cli.flags import confirm_prune, echo_pruned
    from minidocker.cli.lifecycle import image_lines
    from minidocker.filters import PRUNE_FILTERS, Filters
    from minidocker.image.verbs import prune_images

    chosen = Filters.parse(filters, ("dangling", *PRUNE_FILTERS), "image prune")
    everything = everything or not chosen.match_bool("dangling", True)  # dangling=false: -a
    confirm_prune(force, "WARNING! This will remove all "
                  + ("images without at least one container associated to them" if everything
                     else "dangling images") + ".\nAre you sure you want to continue?")
    with image_users() as users:
        removed, reclaimed = prune_images(everything, users, chosen)
    echo_pruned({"Images": image_lines(removed)}, reclaimed)


@main.command(context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file "
              "instead of stdout.")
@click.option("--compress", type=click.Choice(["gzip", "zstd"]), default="gzip",
              show_default=True, help="How the layers are compressed (zstd: OCI's tar+zstd, "
              "needs the zstandard package).")
@click.argument("images", nargs=-1, required=True)
def save(output, compress, images):
    """Save images to a tar archive (OCI layout + docker manifest.json)."""
    from minidocker.image.archive import save as write
    from minidocker.image.store import ImageStore

    store = ImageStore()
    chosen = [(store.get(name), _tag_or_none(store, name)) for name in images]
    with _output(output) as out:
        write(chosen, out, compress)


@main.command(context_settings=CONTEXT)
@click.option("-i", "--input", "source", type=click.Path(exists=True, dir_okay=False),
              help="The archive to read (from save, podman save, ...); stdin without it.")
def load(source):
    """Load images from a tar archive (OCI archive or docker-archive), or from stdin."""
    require_root("load")
    from pathlib import Path

    from minidocker.image.archive import load as read

    if source:
        names = read(Path(source))
    else:
        names = _load_stdin(read)
    for name in names:
        click.echo(f"Loaded image: {name}")


def _load_stdin(read):
    """``docker load < img.tar``: the archive is read with random access (an OCI layout's
    index comes first, its blobs anywhere), so stdin is first spooled into the store's
    scratch directory. A terminal on stdin is Docker's "requested load from stdin" error."""
    import shutil
    from pathlib import Path

    from minidocker.errors import MinidockerError
    from minidocker.image.store import ImageStore

    if sys.stdin.isatty():
        raise MinidockerError("requested load from stdin, but stdin is empty: give -i FILE "
                              "or redirect an archive into stdin")
    with ImageStore().scratch() as scratch:
        path = Path(scratch) / "stdin.tar"
        with path.open("wb") as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        try:
            return read(path)
        except MinidockerError as exc:  # its message names our scratch file: name stdin
            raise MinidockerError(str(exc).replace(str(path), "stdin"), exc.exit_code) from None


@main.command("export", context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file "
              "instead of stdout.")
@click.argument("container")
def export_(output, container):
    """Export a container's filesystem as a tar archive."""
    require_root("export")
    from minidocker.container.commit import export as write

    with _output(output) as out:
        write(container, out)


@main.command("import", context_settings=CONTEXT)
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION",
              help="Apply a Dockerfile instruction to the config (CMD, ENV, ...).")
@click.option("-m", "--message", default="", help="Commit message for the image.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("reference", required=False)
def import_(changes, message, file, reference):
    """Create an image from a root filesystem tarball."""
    require_root("import")
    from pathlib import Path

    from minidocker.image.archive import import_tarball
    from minidocker.image.config import apply_changes

    image = import_tarball(Path(file), reference, apply_changes({}, list(changes)), message)
    click.echo(image.id)


def _tag_or_none(store, name):
    from minidocker.image.store import tag_named

    return tag_named(name, store.get(name))


@contextlib.contextmanager
def _output(path):
    """A file, or stdout when no file is given (and stdout is not a terminal). The file is
    written under a temporary name next to it and renamed at the end, as Docker's ``save -o``
    does: a killed or failed ``save`` leaves no half archive under the name asked for."""
    from minidocker.errors import MinidockerError

    if not path:
        if sys.stdout.isatty():
            raise MinidockerError("cowardly refusing to write a tar to the terminal: use -o "
                                  "FILE or redirect stdout")
        yield sys.stdout.buffer
        return
    from minidocker.state import atomic_file

    with contextlib.ExitStack() as stack:
        try:
            file = stack.enter_context(atomic_file(path, mode=0o666 & ~_umask()))
        except OSError as exc:
            raise MinidockerError(f"cannot write {path}: {exc.strerror}") from exc
        yield file


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


@main.command(context_settings=CONTEXT)
def doctor():
    """Check that this machine can run containers, and say how to fix what is missing."""
    from minidocker.doctor import report

    sys.exit(report())


@main.command(context_settings=CONTEXT)
def setup():
    """Create the state root and the offline busybox base image (no network needed)."""
    require_root("setup")
    from minidocker.image.busybox import create_busybox_image
    from minidocker.state import state_root

    state_root().chmod(0o700)  # also for a state root made by an older version
    click.echo(f"busybox:latest is ready: {create_busybox_image().id}")


@main.group(cls=Group, context_settings=CONTEXT)
def lab():
    """The course's labs: check your solution against the real kernel."""


@lab.command("check", context_settings=CONTEXT)
@click.argument("number")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def lab_check(number, path):
    """Check lab NUMBER (e.g. 01); PATH is your file (default: your copy, labs/NN-topic/mine.py,
    made by 'lab reset'; the starter while there is none)."""
    require_root("lab check")
    from minidocker.labs import check

    sys.exit(check(number, path))


@lab.command("list", context_settings=CONTEXT)
def lab_list():
    """List the labs, with the verdict of each one's last check."""
    from minidocker.labs import list_labs

    click.echo(list_labs(), nl=False)


@lab.command("hint", context_settings=CONTEXT)
@click.argument("number")
@click.option("--next", "more", is_flag=True, help="Open one more hint.")
@click.option("--step", type=int, help="The step (default: where your last check stopped).")
def lab_hint(number, more, step):
    """Show the hints of lab NUMBER opened so far, from its README; --next opens one more."""
    from minidocker.labs import hint

    click.echo(hint(number, step, more).text(), nl=False)


@lab.command("reset", context_settings=CONTEXT)
@click.argument("number")
def lab_reset(number):
    """Start lab NUMBER afresh: copy its starter to your file, labs/NN-topic/mine.py (an
    existing one is kept as mine.py.bak)."""
    from minidocker.labs import reset

    done = reset(number)
    if done.backup:
        click.echo(f"your previous file is now {done.backup}")
    click.echo(f"{done.copy} is a fresh copy of the starter: write your code there, then "
               f"sudo minidocker lab check {number}")


# The later stages' commands live in their own modules, minidocker/cli/NAME.py, and add
# themselves to ``main`` when imported: which module defines (or adds to) which command.
# ``tests/test_cli_lazy.py`` checks the table against what the modules really register.
COMMAND_MODULES = {
    "build": ("build", "builder"),
    "cluster": ("cluster",),
    "compose": ("compose",),
    "containerops": ("cp", "stats", "update"),
    "daemon": ("daemon",),
    "lifecycle": ("run", "create", "start", "ps", "logs", "attach", "exec", "top", "wait",
                  "inspect", "rename", "stop", "kill", "restart", "pause", "unpause", "rm",
                  "export-bundle", "container", "system"),
    "network": ("network", "port"),
    "pod": ("pod",),
    "registry": ("pull", "push", "login", "logout", "registry"),
    "stacks": ("stack",),
    "swarm": ("swarm", "node", "service"),
    "system": ("info", "events", "checkpoint", "plugin", "container", "image", "system"),
    "volume": ("volume",),
}


def load_commands(name: str | None = None) -> None:
    """Import the modules that define or extend command NAME (all of them without a NAME)."""
    import importlib

    for module, commands in COMMAND_MODULES.items():
        if name is None or name in commands:
            importlib.import_module(f"minidocker.cli.{module}")
