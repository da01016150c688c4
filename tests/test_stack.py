"""Stage 14's stacks without a lab: what ``stack deploy`` refuses or ignores in a Compose
file, said in one line before any node is asked (the deploys themselves are in
tests/test_cluster.py, on the module's lab)."""

import pytest

from minidocker.cluster import stack
from minidocker.errors import MinidockerError
from tests.conftest import minidocker


def plan(tmp_path, text: str) -> stack.Plan:
    (tmp_path / "compose.yml").write_text(text)
    return stack.plan([str(tmp_path / "compose.yml")], "demo")


def test_a_service_becomes_a_spec_in_the_stack_namespace(tmp_path):
    made = plan(tmp_path, """
services:
  web:
    image: busybox
    entrypoint: ["sh", "-c"]
    command: ["echo hi"]
    container_name: web
    environment: {A: "1", UNSET: null}
    ports: ["8080:80"]
    deploy:
      mode: global
      placement:
        constraints: ["node.labels.zone==east"]
        preferences: [{spread: node.labels.rack}]
        max_replicas_per_node: 2
      resources: {limits: {cpus: "0.5", pids: 10}, reservations: {cpus: "0.25", memory: 1g}}
      restart_policy: {condition: on-failure}
""")
    [spec] = made.specs
    assert spec["Name"] == "demo_web" and spec["Mode"] == {"Global": {}}
    assert spec["Labels"] == {"com.docker.stack.namespace": "demo",
                              "com.docker.stack.image": "busybox"}
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert (container["Command"], container["Args"], container["Env"]) == \
        (["sh", "-c"], ["echo hi"], ["A=1"])
    assert spec["TaskTemplate"]["Placement"] == {
        "Constraints": ["node.labels.zone==east"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.rack"}}]}
    assert spec["TaskTemplate"]["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000},
        "Reservations": {"MemoryBytes": 2**30, "NanoCPUs": 250_000_000}}
    assert spec["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 80,
                                              "PublishedPort": 8080, "PublishMode": "ingress"}]
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "demo_default", "Aliases": ["web"]}]
    assert made.networks == [stack.StackNetwork("demo_default")]
    assert made.ignored == ["deploy.placement.max_replicas_per_node",
                            "deploy.resources.limits.pids", "deploy.restart_policy"]
    assert made.deprecated == ["container_name: Setting the container name is not "
                               "supported."]


@pytest.mark.parametrize("text, error", [
    ("services: {web: {image: busybox, mem_limit: 64m}}",
     "Compose file contains unsupported options: mem_limit: Set resource limits using "
     "deploy.resources"),
    ("services: {web: {image: busybox, networks: [front]}}\nnetworks: {front: {driver: "
     "bridge}}", "network 'front': driver 'bridge' is not supported in a stack"),
    ("services: {web: {image: busybox, deploy: {labels: "
     "{com.minidocker.scheduler.strategy: tightest}}}}",
     "unknown scheduling strategy 'tightest': use spread, binpack or random"),
    ("services: {web: {image: busybox, deploy: {update_config: {failure_action: panic}}}}",
     "invalid update_config.failure_action 'panic': use pause, continue or rollback"),
    ("services: {web: {image: busybox, deploy: {placement: {constraint: [a]}}}}",
     "key 'deploy.placement.constraint': unknown key (did you mean 'constraints'?)"),
    ("services: {web: {image: busybox, deploy: {mode: global, replicas: 2}}}",
     "replicas can only be used with replicated mode"),
], ids=["forbidden", "network", "strategy", "failure-action", "typo", "global-replicas"])
def test_what_a_stack_refuses_is_one_line(tmp_path, text, error):
    (tmp_path / "compose.yml").write_text(text)
    result = minidocker("stack", "deploy", "-c", str(tmp_path / "compose.yml"), "demo")
    assert result.returncode == 1
    assert result.stderr.startswith("minidocker: ") and error in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_missing_stack_file_names_the_c_option(tmp_path):
    with pytest.raises(MinidockerError, match=r"no such file \(check the -c option\)"):
        stack.plan([str(tmp_path / "missing.yml")], "demo")


def test_networks_are_the_stacks_overlays_and_services_have_their_short_names(tmp_path):
    made = plan(tmp_path, """
services:
  web:
    image: busybox
    networks: {front: {aliases: [www]}, back: {}}
    ports: [{target: 80, published: 8080, mode: host}]
  db:
    image: busybox
    networks: [back, shared]
  lone:
    image: busybox
networks:
  front: {}
  back: {driver: overlay, ipam: {config: [{subnet: 10.0.42.0/24}]}}
  shared: {external: true}
  unused: {}
""")
    assert made.networks == [stack.StackNetwork("demo_back", subnet="10.0.42.0/24"),
                             stack.StackNetwork("demo_default"),
                             stack.StackNetwork("demo_front"),
                             stack.StackNetwork("shared", external=True)]
    specs = {spec["Name"]: spec for spec in made.specs}
    assert specs["demo_web"]["TaskTemplate"]["Networks"] == [
        {"Target": "demo_back", "Aliases": ["web"]},
        {"Target": "demo_front", "Aliases": ["web", "www"]}]
    assert specs["demo_lone"]["TaskTemplate"]["Networks"] == [
        {"Target": "demo_default", "Aliases": ["lone"]}]
    assert specs["demo_web"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
