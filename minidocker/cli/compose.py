"""``minidocker compose ...`` (stage 13): a project of services from a Compose file, run
through the same engine calls as ``run``, ``network create`` and ``volume create``."""

import sys

import click

from minidocker.cli import CONTEXT, Group, main, require_root


@main.group(cls=Group, context_settings=CONTEXT)
@click.option("-f", "--file", "files", multiple=True, metavar="FILE",
              help="Compose file (repeatable: later files override earlier ones).")
@click.option("-p", "--project-name", default="", help="Project name (default: the "
              "directory's name).")
@click.option("--project-directory", default="", metavar="DIR",
              help="Where relative paths start (default: the first file's directory).")
@click.option("--env-file", default="", metavar="FILE", help="The variables of the file "
              "(default: .env in the project directory).")
@click.option("--profile", "profiles", multiple=True, help="Activate a profile (repeatable).")
@click.pass_context
def compose(ctx, files, project_name, project_directory, env_file, profiles):
    """Define and run multi-container applications (a Compose file)."""
    from minidocker.compose.loader import Options

    ctx.obj = Options(list(files), project_name, project_directory, env_file, list(profiles))


def load(ctx, services=()):
    """The project, its warnings said once on stderr."""
    from minidocker.compose.loader import load as load_project

    project = load_project(ctx.obj, list(services))
    for warning in project.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    return project


@compose.command("config", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only check the file; print nothing.")
@click.option("--services", "list_services", is_flag=True, help="Print the service names.")
@click.option("--volumes", "list_volumes", is_flag=True, help="Print the volume names.")
@click.pass_context
def config(ctx, quiet, list_services, list_volumes):
    """Check the Compose file and print the resolved model as YAML."""
    import yaml

    project = load(ctx)
    if quiet:
        return
    if list_services or list_volumes:
        names = [*(project.services if list_services else []),
                 *(project.volumes if list_volumes else [])]
        click.echo("".join(f"{name}\n" for name in names), nl=False)
        return
    click.echo(yaml.safe_dump(project.model, sort_keys=True, default_flow_style=False),
               nl=False)


_ = (sys, require_root)
