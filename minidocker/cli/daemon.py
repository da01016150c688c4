"""``minidocker daemon`` (stage 12): serve the Docker Engine API, so that the docker CLI,
docker-py and compose drive minidocker."""

import click

from minidocker.cli import CONTEXT, main, require_root


@main.command(context_settings=CONTEXT)
@click.option("-H", "--host", default="unix:///run/minidocker.sock", show_default=True,
              metavar="unix://PATH", help="Where to listen (a unix socket; tcp://ADDR:PORT "
              "only with --insecure-tcp).")
@click.option("-G", "--group", metavar="NAME", help="Group that may use the socket (mode "
              "0660), as dockerd's 'docker' group; without it only root may (0600).")
@click.option("--insecure-tcp", is_flag=True, help="Allow a tcp:// host without TLS: "
              "anyone who can connect is root here. Never on a shared network.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def daemon(host, group, insecure_tcp, log_level):
    """Serve the Engine API in the foreground until stopped (Ctrl-C, SIGTERM); containers
    keep running under their monitors when it stops.

    Use it with the docker CLI: DOCKER_HOST=unix:///run/minidocker.sock docker ps"""
    require_root("daemon")
    from minidocker.daemon.app import serve

    serve(host, group, insecure_tcp, log_level)
