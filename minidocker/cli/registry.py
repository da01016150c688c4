"""Stage 11 commands: ``registry ...`` (serve one, its certificates and users, its garbage),
and the client's ``login``, ``logout``, ``push``, ``pull`` — plus ``ensure_image``, the pull
that ``run`` and ``create`` do when the image is missing."""

import sys

import click

from minidocker.cli import CONTEXT, Group, main, require_root

INSECURE = click.option(
    "--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]|CIDR",
    help="Reach this registry without verified TLS (HTTPS unchecked, then plain HTTP), like "
         "dockerd's --insecure-registry; loopback always is. Also "
         "$MINIDOCKER_INSECURE_REGISTRIES (comma-separated).")


def _default_root() -> str:
    from minidocker.state import state_root

    return str(state_root() / "registry")


def _default_certs() -> str:
    from minidocker.state import state_root

    return str(state_root() / "registry-certs")


@main.group(cls=Group, context_settings=CONTEXT)
def registry():
    """Run an OCI registry (distribution's API and on-disk layout)."""


@registry.command("serve", context_settings=CONTEXT)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="distribution's config.yml (storage.filesystem.rootdirectory, http.addr, "
                   "http.tls, auth.htpasswd, auth.token); the flags below override it.")
@click.option("--addr", metavar="HOST:PORT", help="Address to listen on [default: "
              "127.0.0.1:5000].")
@click.option("--root", type=click.Path(file_okay=False), metavar="DIR",
              help="Storage directory (distribution's rootdirectory) "
                   "[default: <state root>/registry].")
@click.option("--auth", metavar="htpasswd:FILE|token:FILE",
              help="Require users from an htpasswd file (bcrypt): by HTTP Basic, or by Bearer "
                   "tokens from this server's /token endpoint.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with the kit's certificate (made in "
              "--certs on first use, for HOST of --addr).")
@click.option("--certs", type=click.Path(file_okay=False), metavar="DIR",
              help="Where ca.crt, server.crt and server.key live "
                   "[default: <state root>/registry-certs].")
def registry_serve(config_file, addr, root, auth, tls, certs):
    """Serve the registry in the foreground until interrupted (Ctrl-C)."""
    from pathlib import Path

    from minidocker.registry.app import parse_addr, serve
    from minidocker.registry.auth import make_policy
    from minidocker.registry.config import Settings, load_config

    settings = load_config(Path(config_file)) if config_file else Settings()
    addr = addr or settings.addr or "127.0.0.1:5000"
    policy = make_policy(auth) if auth else settings.auth
    keypair = settings.tls
    if tls:
        folder = Path(certs or _default_certs())
        keypair = folder / "server.crt", folder / "server.key"
        if not keypair[0].exists():
            from minidocker.registry.tls import make_certs

            keypair = make_certs(folder, cert_hosts([parse_addr(addr)[0]]))
        click.echo(f"TLS: clients trust {folder / 'ca.crt'} when it is copied to "
                   f"/etc/minidocker/certs.d/{addr}/ca.crt", err=True)
    serve(addr, root or settings.root or _default_root(), auth=policy, tls=keypair)


def cert_hosts(hosts) -> list[str]:
    return list(dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))


@registry.command("image", context_settings=CONTEXT)
@click.option("-t", "--tag", default="registry", show_default=True, metavar="NAME[:TAG]",
              help="Name of the image.")
@click.option("--binary", default="/usr/bin/docker-registry", show_default=True,
              type=click.Path(dir_okay=False),
              help="distribution's registry program (Debian's docker-registry).")
def registry_image(tag, binary):
    """Build the 'registry' image (Docker Hub's, offline): distribution's program, its
    libraries and a config.yml, with minidocker's own builder. Then:
    minidocker run -d -p 5000:5000 registry"""
    require_root("registry image")
    from pathlib import Path

    from minidocker.errors import MinidockerError
    from minidocker.image.store import ImageStore

    if not Path(binary).is_file():
        raise MinidockerError(f"{binary} is not there: install distribution's registry "
                              "('apt-get install docker-registry') or name it with --binary")
    from minidocker.registry.image import build_registry_image

    with ImageStore().scratch() as scratch:
        build_registry_image(Path(binary), Path(scratch), tag)


def cert_hosts_option(who: str):
    """``--host NAME|IP``: the names a certificate is for (its subjectAltName)."""
    return click.option("--host", "hosts", multiple=True, metavar="NAME|IP",
                        help=f"A name the {who} is reached by (repeatable) [default: "
                             "localhost, 127.0.0.1].")


@registry.command("certs", context_settings=CONTEXT)
@cert_hosts_option("server")
@click.argument("directory", type=click.Path(file_okay=False))
def registry_certs(hosts, directory):
    """Make the kit's CA (once) and a server certificate for HOSTs, with openssl."""
    from pathlib import Path

    from minidocker.registry.tls import make_certs

    crt, key = make_certs(Path(directory), cert_hosts(hosts))
    click.echo(f"CA:          {Path(directory) / 'ca.crt'}")
    click.echo(f"certificate: {crt}")
    click.echo(f"key:         {key}")
    click.echo("Trust it on a client: copy ca.crt to /etc/minidocker/certs.d/HOST:PORT/ca.crt")


@registry.command("htpasswd", context_settings=CONTEXT)
@click.option("-p", "--password", help="The password (else read from stdin).")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("user")
def registry_htpasswd(password, file, user):
    """Add or replace USER in an htpasswd FILE (bcrypt, as 'htpasswd -B')."""
    from pathlib import Path

    from minidocker.registry.auth import htpasswd_line

    if password is None:
        password = sys.stdin.readline().rstrip("\n")
    path = Path(file)
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [line for line in lines if line.partition(":")[0] != user]
    path.write_text("\n".join([*lines, htpasswd_line(user, password)]) + "\n")
    path.chmod(0o600)


@registry.command("garbage-collect", context_settings=CONTEXT)
@click.option("--dry-run", "-d", is_flag=True, help="Only say what would be deleted.")
@click.option("--root", type=click.Path(file_okay=False), metavar="DIR",
              help="Storage directory [default: <state root>/registry].")
def registry_garbage_collect(dry_run, root):
    """Delete blobs no manifest references (stop the server first, as with distribution)."""
    from minidocker.registry.gc import garbage_collect

    for line in garbage_collect(root or _default_root(), dry_run=dry_run):
        click.echo(line)


# --- the client ---------------------------------------------------------------------------------

@main.command(context_settings=CONTEXT)
@click.option("-u", "--username", help="Username.")
@click.option("-p", "--password", help="Password (visible to other users: prefer "
              "--password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
@INSECURE
@click.argument("server", required=False)
def login(username, password, password_stdin, insecure, server):
    """Log in to a registry (Docker Hub without SERVER); the credentials go to config.json."""
    from minidocker.errors import MinidockerError
    from minidocker.registry import client, credentials

    if password and password_stdin:
        raise MinidockerError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise MinidockerError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
                   err=True)
    host = server.removeprefix("https://").removeprefix("http://").rstrip("/") \
        if server else client.DOCKER_HUB
    username = username or click.prompt("Username")
    password = password if password is not None else click.prompt("Password", hide_input=True)
    client.login(host, username, password, insecure)
    path = credentials.store(host, username, password)
    click.echo(f"WARNING! Your password will be stored unencrypted in {path}.", err=True)
    click.echo("Login Succeeded")


@main.command(context_settings=CONTEXT)
@click.argument("server", required=False)
def logout(server):
    """Forget the credentials of a registry (Docker Hub without SERVER)."""
    from minidocker.registry import client, credentials

    host = server or client.DOCKER_HUB
    if credentials.erase(host):
        click.echo(f"Removing login credentials for {host}")
    else:
        click.echo(f"Not logged in to {host}")


@main.command(context_settings=CONTEXT)
@INSECURE
@click.argument("name")
def push(insecure, name):
    """Push an image to the registry its name names (127.0.0.1:5000/app:1)."""
    require_root("push")
    from minidocker.registry import progress
    from minidocker.registry.push import push as push_image

    report = progress.for_stream()
    try:
        push_image(name, report, insecure)
    finally:
        report.close()


@main.command(context_settings=CONTEXT)
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="The platform to pick from a multi-platform image [default: this "
                   "machine's].")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image's name.")
@INSECURE
@click.argument("name")
def pull(platform, quiet, insecure, name):
    """Pull an image from a registry (NAME[:TAG] or NAME@sha256:...)."""
    require_root("pull")
    import io

    from minidocker.registry import progress
    from minidocker.registry.client import locate
    from minidocker.registry.pull import pull as pull_image

    report = progress.Report(io.StringIO()) if quiet else progress.for_stream()
    try:
        pull_image(name, report, platform, insecure)
    finally:
        report.close()
    target = locate(name)
    click.echo(f"{target.host}/{target.repository}" +
               (f"@{target.digest}" if target.digest else f":{target.tag}"))


def ensure_image(name: str, policy: str = "missing", out=None) -> None:
    """Docker's ``--pull`` for ``run``, ``create`` and ``build``'s FROM: ``missing`` (the
    default) pulls an image not in the store, ``always`` pulls it anyway, ``never`` only looks
    here; the progress goes to ``out`` (stderr unless told: before the container is made)."""
    from minidocker.errors import MinidockerError, NotFound
    from minidocker.image.reference import parse_reference
    from minidocker.image.store import ImageStore

    missing = None
    try:
        ImageStore().get(name)
        if policy != "always":
            return
    except NotFound as error:
        if policy == "never":
            raise
        missing = error
    from minidocker.registry import progress
    from minidocker.registry.pull import pull as pull_image

    out = out or sys.stderr
    if missing:
        click.echo(f"Unable to find image '{parse_reference(name)}' locally", file=out)
    report = progress.for_stream(out)
    try:
        pull_image(name, report)
    except MinidockerError as failed:
        raise NotFound(f"{missing or ''} Pulling it failed: {failed}".strip()) from None
    finally:
        report.close()
