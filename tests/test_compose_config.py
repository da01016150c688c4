"""``minidocker compose config`` held to ``docker-compose config`` (1.29.2, the real peer).

For each project of tests/compose/ both print the resolved model. docker-compose 1.29 keeps
some short forms in its output (``command: sh -c ...``, ``- dbdata:/data:rw``) where
minidocker prints the long, canonical form; so its output is read back through minidocker's
own loader (a file that is already resolved resolves to itself) and the two models are
compared whole. What may still differ, and why, is listed in ``KNOWN``; nothing else may.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from minidocker.compose import loader

CASES = Path(__file__).parent / "compose"
DOCKER_COMPOSE = shutil.which("docker-compose")
ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "FROM_SHELL": "from-the-shell"}

# Differences between the two outputs, with their reason (none today: the models agree).
KNOWN: dict[str, str] = {}

PROJECTS = [("webapp", []), ("scaled", []), ("twonets", []), ("envfile", []),
            ("healthy", []), ("merge", ["compose.yaml", "override.yaml"])]


def ours(case: str, files: list[str]) -> dict:
    options = loader.Options(files=files, environ=ENV, cwd=str(CASES / case))
    return loader.load(options).model


def theirs(case: str, files: list[str], tmp_path: Path) -> dict:
    """docker-compose's output, loaded as a file of the same project."""
    args = [arg for name in files for arg in ("-f", name)]
    result = subprocess.run([DOCKER_COMPOSE, *args, "config"], cwd=CASES / case, env=ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (tmp_path / "resolved.yml").write_text(result.stdout)
    options = loader.Options(files=["resolved.yml"], project_name=case, environ={},
                             project_directory=str(CASES / case), cwd=str(tmp_path))
    return loader.load(options).model


@pytest.mark.skipif(not DOCKER_COMPOSE, reason="docker-compose 1.29 is not installed")
@pytest.mark.parametrize("case,files", PROJECTS, ids=[case for case, _ in PROJECTS])
def test_config_agrees_with_docker_compose(case, files, tmp_path):
    mine, reference = ours(case, files), theirs(case, files, tmp_path)
    differences = [f"{section}.{name}.{key}: minidocker {mine[section][name].get(key)!r}, "
                   f"docker-compose {reference[section][name].get(key)!r}"
                   for section in ("services", "networks", "volumes")
                   for name in set(mine[section]) | set(reference[section])
                   for key in set(mine[section].get(name, {})) |
                   set(reference[section].get(name, {}))
                   if mine[section].get(name, {}).get(key) !=
                   reference[section].get(name, {}).get(key)
                   and f"{case}:{section}.{key}" not in KNOWN]
    assert not differences, "\n".join(differences)


def test_config_prints_the_resolved_model(md):
    result = md("compose", "--project-directory", str(CASES / "envfile"), "-f",
           str(CASES / "envfile" / "compose.yaml"), "config", env={"FROM_SHELL": "x"})
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)
    app = model["services"]["app"]
    assert model["name"] == "envfile"
    assert app["image"] == "busybox:latest"  # ${TAG:-latest}
    assert app["command"] == ["sh", "-c", "echo $GREETING ${NAME}; sleep 3600"]  # $$ is $
    assert app["environment"] == {"GREETING": "hello", "NAME": "world", "LEVEL": "",
                                  "FROM_SHELL": "x"}  # env_file under environment; the shell
    assert app["labels"] == {"tier": "backend"}  # from .env
    assert app["ports"][0]["published"] == "8081" and app["ports"][0]["target"] == 80
    assert "TIER" not in result.stderr


def test_config_services_and_merge(md):
    case = CASES / "merge"
    result = md("compose", "-f", str(case / "compose.yaml"), "-f", str(case / "override.yaml"),
                "config")
    app = yaml.safe_load(result.stdout)["services"]["app"]
    assert app["command"] == ["echo", "override"]  # replaced, not appended
    assert app["environment"] == {"A": "1", "B": "two", "C": "3"}  # list merged with map
    assert [v["source"] for v in app["volumes"]] == ["other", str(case / "logs")]  # by target
    assert [(p["published"], p["target"]) for p in app["ports"]] == \
        [("8000", 80), ("9000", 90), ("9443", 443)]
    assert app["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    services = md("compose", "-f", str(CASES / "healthy" / "compose.yaml"), "config",
                  "--services")
    assert services.stdout.split() == ["db", "migrate", "app"]


def test_bad_input_is_one_line_with_dockers_exit_codes(md, tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n"
                                           "    restart: sometimes\n")
    bad_file = md("compose", "-f", str(tmp_path / "compose.yaml"), "config")
    assert bad_file.returncode == 1
    assert bad_file.stderr == ("minidocker: compose.yaml: service 'web': key 'restart': invalid "
                               "restart policy 'sometimes': use no, always, on-failure, "
                               "on-failure:N or unless-stopped\n")
    bad_flag = md("compose", "-f", str(CASES / "scaled" / "compose.yaml"), "up", "--scale",
                  "worker")
    assert bad_flag.returncode == 125 and "use SERVICE=NUMBER" in bad_flag.stderr
    no_file = md("compose", "-f", str(tmp_path / "nothere.yaml"), "ps")
    assert no_file.returncode == 1 and "no such file" in no_file.stderr
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n"
                                           "    mem_limit: 12x\n")
    bad_size = md("compose", "-f", str(tmp_path / "compose.yaml"), "config")
    assert bad_size.returncode == 1 and "key 'mem_limit': invalid size '12x'" in bad_size.stderr
    a_directory = md("compose", "-f", str(tmp_path), "config")
    assert a_directory.returncode == 1 and "is a directory: give -f" in a_directory.stderr
    no_service = md("compose", "-f", str(CASES / "scaled" / "compose.yaml"), "logs", "ghost")
    assert no_service.returncode == 1, no_service.stderr
    assert no_service.stderr.startswith("minidocker: no such service: ghost (the services are ")
