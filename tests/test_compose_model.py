"""The Compose file model (minidocker/compose/): interpolation, merging, names, profiles,
and one clear line for each kind of bad file."""

import pytest

from minidocker.compose import loader
from minidocker.compose.interpolation import interpolate, read_env_file
from minidocker.compose.order import DependencyCycle, start_order
from minidocker.errors import MinidockerError

ENV = {"SET": "yes", "EMPTY": ""}


@pytest.mark.parametrize("text,expected", [
    ("$SET ${SET}", "yes yes"), ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""), ("${UNSET-dflt}", "dflt"), ("${SET:+alt}", "alt"),
    ("${UNSET:+alt}", ""), ("$$SET costs $$5", "$SET costs $5"), ("${UNSET:-${SET}}", "yes"),
    ("${UNSET}", ""), ("${SET:?must}", "yes")])
def test_interpolation(text, expected):
    assert interpolate(text, ENV, "f") == expected


@pytest.mark.parametrize("text,message", [
    ("${UNSET:?give a tag}", "variable UNSET is not set: give a tag"),
    ("${EMPTY:?no}", "variable EMPTY is empty: no"), ("${UNSET?}", "UNSET is not set"),
    ("${SET", "never closed"), ("a $ b", "write $$ for a '$'"), ("${1x}", "variable name")])
def test_interpolation_errors(text, message):
    with pytest.raises(MinidockerError, match=message.replace("$", r"\$")):
        interpolate(text, ENV, "compose.yaml.services.web.image")


def test_env_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# c\n\nA=1\nexport B='two words'\nC=\"x\\ny\"\nD=plain # note\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "x\ny", "D": "plain"}
    path.write_text("A=1\nnot a pair\n")
    with pytest.raises(MinidockerError, match=r".env:2: 'not a pair' is not KEY=VALUE"):
        read_env_file(path)


def load(tmp_path, text, *more, environ=None, **options):
    (tmp_path / "compose.yaml").write_text(text)
    files = ["compose.yaml"]
    for index, extra in enumerate(more):
        (tmp_path / f"more{index}.yaml").write_text(extra)
        files.append(f"more{index}.yaml")
    return loader.load(loader.Options(files=files, cwd=str(tmp_path), environ=environ or {},
                                      **options))


@pytest.mark.parametrize("text,message", [
    ("services:\n  web:\n    imagee: busybox\n",
     "compose.yaml: service 'web': key 'imagee': unknown key (did you mean 'image'?)"),
    ("services:\n  web:\n    image: busybox\n    healthcheck: {intervall: 1s}\n",
     "service 'web': key 'healthcheck.intervall': unknown key (did you mean 'interval'?)"),
    ("servicess: {}\n", "compose.yaml: key 'servicess': unknown key (did you mean 'services'?)"),
    ("services:\n  web:\n    image: busybox\n    ports: 80\n",
     "service 'web': key 'ports': must be a list, not a number (80)"),
    ("services:\n  web:\n    image: busybox\n    privileged: 'yes'\n",
     "key 'privileged': must be true or false, not a string"),
    ("services:\n  web:\n    image: busybox\n    stop_grace_period: soon\n",
     "key 'stop_grace_period': invalid duration 'soon'"),
    ("services:\n  web:\n    image: busybox\n    ports: ['80:80:80:80']\n",
     "key 'ports': invalid port '80:80:80:80'"),
    ("services:\n  web:\n    image: ${TAG:?set TAG to the release}\n",
     "compose.yaml.services.web.image: variable TAG is not set: set TAG to the release"),
    ("services:\n  a: {image: busybox, depends_on: [b]}\n  b: {image: busybox, depends_on: [c]}"
     "\n  c: {image: busybox, depends_on: [a]}\n",
     "depends_on has a cycle: a -> b -> c -> a"),
    ("services:\n  web:\n    build: ./nowhere\n",
     "service 'web': key 'build.context': the build context"),
    ("services:\n  web: {image: busybox, depends_on: [db]}\n",
     "service 'web': key 'depends_on': no service named 'db'"),
    ("services:\n  web: {image: busybox, volumes: ['data:/data']}\n",
     "key 'volumes': named volume 'data' is not declared"),
    ("services:\n  web: {image: busybox, networks: [front]}\n",
     "key 'networks': network 'front' is not declared"),
    ("services:\n  web: {image: busybox, secrets: [s]}\n",
     "key 'secrets': is part of the Compose Specification but not of minidocker compose"),
    ("services:\n  web:\n    command: [\n", "compose.yaml: not valid YAML (line"),
    ("services:\n  web: {}\n", "key 'image': a service needs an image or a build"),
])
def test_bad_files_get_one_line(tmp_path, text, message):
    with pytest.raises(MinidockerError) as error:
        load(tmp_path, text)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_error_names_the_file_that_has_it(tmp_path):
    with pytest.raises(MinidockerError, match=r"^more0.yaml: service 'web': key 'comand'"):
        load(tmp_path, "services:\n  web: {image: busybox}\n",
             "services:\n  web: {comand: [true]}\n")


def test_project_name(tmp_path):
    text = "services:\n  web: {image: busybox}\n"
    directory = tmp_path / "My.Shop App"
    directory.mkdir()
    assert load(directory, text).name == "myshopapp"  # as Compose normalises it
    assert load(directory, "name: Named\n" + text).name == "named"
    assert load(directory, text, environ={"COMPOSE_PROJECT_NAME": "fromenv"}).name == "fromenv"
    assert load(directory, text, project_name="given").name == "given"
    with pytest.raises(MinidockerError, match="invalid project name '_x'"):
        load(directory, text, project_name="_x")


def test_names_on_this_host(tmp_path):
    project = load(tmp_path, "services:\n  web: {image: busybox, volumes: ['d:/d', 'e:/e']}\n"
                   "volumes:\n  d:\n  e: {external: true}\n", project_name="shop")
    assert project.networks["default"].name == "shop_default"
    assert project.services["web"].networks == {"default": project.services["web"].networks[
        "default"]}
    assert (project.volumes["d"].name, project.volumes["e"].name) == ("shop_d", "e")


def test_profiles(tmp_path):
    text = ("services:\n  web: {image: busybox}\n  debug: {image: busybox, profiles: [dev]}\n"
            "  tool: {image: busybox, profiles: [ops]}\n")
    assert list(load(tmp_path, text).services) == ["web"]
    assert list(load(tmp_path, text, profiles=["dev"]).services) == ["web", "debug"]
    assert list(load(tmp_path, text, environ={"COMPOSE_PROFILES": "dev,ops"}).services) == \
        ["web", "debug", "tool"]
    assert list(loader.load(loader.Options(files=["compose.yaml"], cwd=str(tmp_path),
                                           environ={}), ["tool"]).services) == ["web", "tool"]


def test_reset_and_override(tmp_path):
    project = load(tmp_path, "services:\n  web:\n    image: busybox\n    ports: ['80:80']\n"
                   "    environment: {A: '1'}\n    dns: [1.1.1.1]\n",
                   "services:\n  web:\n    ports: !reset []\n    dns: !override [8.8.8.8]\n")
    web = project.model["services"]["web"]
    assert "ports" not in web and web["dns"] == ["8.8.8.8"] and web["environment"] == {"A": "1"}


def test_scale_and_limits(tmp_path):
    web = load(tmp_path, "services:\n  web:\n    image: busybox\n    deploy:\n      replicas: 3"
               "\n      resources: {limits: {cpus: '0.5', memory: 64m, pids: 20}}\n").services[
        "web"]
    assert (web.replicas, web.cpus, web.mem_limit, web.pids_limit) == (3, "0.5", "64m", 20)


def test_start_order():
    assert start_order({"web": ["app"], "app": ["db"], "db": [], "cache": []}) == \
        ["db", "app", "web", "cache"]
    with pytest.raises(DependencyCycle, match="a -> a"):
        start_order({"a": ["a"]})


def test_a_service_becomes_the_engines_config(tmp_path):
    from minidocker.compose.convert import container_request

    project = load(tmp_path, """
services:
  db: {image: busybox}
  app:
    image: busybox
    entrypoint: [/bin/sh, -c]
    command: echo hi
    environment: [A=1, UNSET_HERE]
    user: "1000"
    working_dir: /srv
    hostname: apphost
    labels: {tier: back}
    expose: ["9000", 53/udp]
    ports: ["127.0.0.1:8080:80"]
    volumes: ["./src:/src:ro", "data:/data", "/cache", {type: tmpfs, target: /scratch}]
    tmpfs: /run
    volumes_from: [db]
    links: ["db:database"]
    networks:
      back: {aliases: [api], ipv4_address: 10.9.0.9}
    restart: on-failure:3
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    read_only: true
    init: true
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 50
  side: {image: busybox, network_mode: "service:app"}
volumes:
  data:
networks:
  back:
""", project_name="p")
    config, host = container_request(project, project.services["app"], 2)
    assert (config.Entrypoint, config.Cmd) == (["/bin/sh", "-c"], ["echo", "hi"])
    assert config.Env == ["A=1"]  # a bare name not set in the environment is left out
    assert (config.User, config.WorkingDir, config.Hostname) == ("1000", "/srv", "apphost")
    assert (config.StopSignal, config.StopTimeout) == ("SIGINT", 90)
    assert set(config.ExposedPorts) == {"9000/tcp", "53/udp", "80/tcp"}
    assert config.Labels["tier"] == "back"
    assert config.Labels["com.docker.compose.container-number"] == "2"
    assert host.Binds == [f"{tmp_path}/src:/src:ro", "p_data:/data", "/cache"]
    assert host.Tmpfs == ["/run", "/scratch"]
    assert host.VolumesFrom == ["p-db-1"] and host.Links == ["p-db-1:database"]
    assert str(host.NetworkMode) == "p_back" and host.NetworkAliases == ["app", "api"]
    assert host.IPAMConfig == {"IPv4Address": "10.9.0.9"}
    assert [(b.host_ip, b.host_port, b.container_port) for b in host.PortBindings] == \
        [("127.0.0.1", 8080, 80)]
    assert (host.RestartPolicy.Name, host.RestartPolicy.MaximumRetryCount) == ("on-failure", 3)
    assert (host.CapAdd, host.CapDrop, host.ReadonlyRootfs, host.Init) == \
        (["NET_ADMIN"], ["MKNOD"], True, True)
    assert (host.Resources.memory, host.Resources.pids_limit) == (64 * 2**20, 50)
    assert host.Resources.cpu_quota == host.Resources.cpu_period // 2
    _, side = container_request(project, project.services["side"], 1)
    assert str(side.NetworkMode) == "container:p-app-1"


def test_a_service_on_several_networks_joins_them_all_by_priority(tmp_path):
    """The highest priority first, then by name: the first is --network (eth0), the others
    MoreNetworks with their aliases and fixed addresses, all joined before the start."""
    from minidocker.compose.convert import container_request

    project = load(tmp_path, """
services:
  app:
    image: busybox
    networks:
      zeta: {priority: 100}
      beta: {aliases: [api], ipv4_address: 10.9.0.9}
      alpha:
networks: {zeta: {}, beta: {}, alpha: {}}
""", project_name="p")
    assert project.services["app"].networks_by_priority() == ["zeta", "alpha", "beta"]
    _, host = container_request(project, project.services["app"], 1)
    assert (str(host.NetworkMode), host.NetworkAliases, host.IPAMConfig) == ("p_zeta", ["app"],
                                                                               {})
    assert list(host.MoreNetworks.items()) == [("p_alpha", ["app"]), ("p_beta", ["app", "api"])]
    assert host.MoreIPAMConfig == {"p_beta": {"IPv4Address": "10.9.0.9"}}


def test_config_hash_follows_the_configuration_not_the_scale(tmp_path):
    base = "services:\n  web:\n    image: busybox\n"
    first = load(tmp_path, base).services["web"].config_hash()
    assert load(tmp_path, base + "    scale: 3\n").services["web"].config_hash() == first
    assert load(tmp_path, base + "    user: nobody\n").services["web"].config_hash() != first
