"""``minidocker daemon`` (stage 12): serve the Docker Engine API, so that the docker CLI,
docker-py and compose drive minidocker. Its settings come from ``/etc/minidocker/daemon.json``
and these flags, with dockerd's names (daemon/settings.py); ``daemon certs DIR`` makes the
kit's certificates for ``--tlsverify``."""

import click

from minidocker.cli import CONTEXT, main, require_root
from minidocker.cli.registry import cert_hosts, cert_hosts_option

# flag -> its daemon.json key (a key given both ways is refused, as dockerd does)
FLAG_KEYS = {"host": "hosts", "group": "group", "log_level": "log-level",
             "data_root": "data-root", "bip": "bip", "icc": "icc",
             "insecure_registry": "insecure-registries", "log_driver": "log-driver",
             "log_opt": "log-opts", "default_address_pool": "default-address-pools",
             "tlsverify": "tlsverify", "tlscacert": "tlscacert", "tlscert": "tlscert",
             "tlskey": "tlskey"}


@main.group(context_settings=CONTEXT, invoke_without_command=True)
@click.option("-H", "--host", multiple=True, metavar="unix://PATH|tcp://ADDR:PORT",
              help="Where to listen [default: unix:///run/minidocker.sock]; tcp:// needs "
              "--tlsverify (or --insecure-tcp).")
@click.option("-G", "--group", metavar="NAME", help="Group that may use the socket (mode "
              "0660), as dockerd's 'docker' group; without it only root may (0600).")
@click.option("--config-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Settings file [default: /etc/minidocker/daemon.json, if it exists].")
@click.option("--data-root", metavar="DIR", help="Root of the state (images, containers...).")
@click.option("--bip", metavar="CIDR", help="The default bridge's address, e.g. 10.66.0.1/24.")
@click.option("--icc", type=click.BOOL, metavar="BOOL",
              help="Containers on the default bridge may talk to each other (default true).")
@click.option("--default-address-pool", multiple=True, metavar="base=CIDR,size=N",
              help="Where new networks take their subnets, e.g. base=10.70.0.0/16,size=24.")
@click.option("--insecure-registry", multiple=True, metavar="HOST:PORT",
              help="A registry reached without verified TLS.")
@click.option("--log-driver", metavar="DRIVER", help="Default log driver of containers "
              "(json-file, local, none).")
@click.option("--log-opt", multiple=True, metavar="KEY=VALUE", help="Default log driver "
              "option, e.g. max-size=10m.")
@click.option("--tlsverify", is_flag=True, default=None, help="Use TLS and require client "
              "certificates signed by --tlscacert.")
@click.option("--tlscacert", metavar="FILE", help="Trust client certificates signed by this "
              "CA.")
@click.option("--tlscert", metavar="FILE", help="The daemon's certificate.")
@click.option("--tlskey", metavar="FILE", help="The daemon's key.")
@click.option("--insecure-tcp", is_flag=True, help="Allow a tcp:// host without TLS: "
              "anyone who can connect is root here. Never on a shared network.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log level [default: info].")
@click.pass_context
def daemon(ctx, config_file, insecure_tcp, **flags):
    """Serve the Engine API in the foreground until stopped (Ctrl-C, SIGTERM); containers
    keep running under the monitor host when it stops.

    Use it with the docker CLI: DOCKER_HOST=unix:///run/minidocker.sock docker ps"""
    if ctx.invoked_subcommand:
        return
    require_root("daemon")
    from pathlib import Path

    from minidocker.daemon.app import serve
    from minidocker.daemon.settings import load

    given = {FLAG_KEYS[name]: flag_value(name, value) for name, value in flags.items()}
    serve(load(Path(config_file) if config_file else None, given), insecure_tcp)


def flag_value(name: str, value):
    """A flag's value in daemon.json's shape (None: not given)."""
    if value in (None, ()):
        return None
    if name == "log_opt":
        return dict(item.partition("=")[::2] for item in value)
    if name == "default_address_pool":
        return [{k: int(v) if k == "size" and v.isdigit() else v
                 for k, _, v in (part.partition("=") for part in item.split(","))}
                for item in value]
    return list(value) if isinstance(value, tuple) else value


@daemon.command("certs", context_settings=CONTEXT)
@cert_hosts_option("daemon")
@click.argument("directory", type=click.Path(file_okay=False))
def daemon_certs(hosts, directory):
    """Make the kit's CA (once), the daemon's certificate and a client's, with openssl.

    DIR/client/ is what the docker CLI wants in DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem)."""
    import shutil
    from pathlib import Path

    from minidocker.registry.tls import make_certs, make_client_cert

    folder = Path(directory)
    crt, key = make_certs(folder, cert_hosts(hosts))
    client_crt, client_key = make_client_cert(folder)
    client = folder / "client"
    client.mkdir(exist_ok=True)
    for source, name in ((folder / "ca.crt", "ca.pem"), (client_crt, "cert.pem"),
                         (client_key, "key.pem")):
        shutil.copy(source, client / name)
    (client / "key.pem").chmod(0o600)
    click.echo(f"daemon:  minidocker daemon --tlsverify --tlscacert {folder / 'ca.crt'} "
               f"--tlscert {crt} --tlskey {key} -H tcp://127.0.0.1:2376")
    click.echo(f"client:  DOCKER_HOST=tcp://127.0.0.1:2376 DOCKER_TLS_VERIFY=1 "
               f"DOCKER_CERT_PATH={client} docker version")
