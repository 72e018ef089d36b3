"""The Kubernetes manifests (``deploy/kubernetes``): valid, and consistent with each other.

Built-in kinds are validated strictly against the Kubernetes OpenAPI schemas
that ``kubernetes-validate`` ships (unknown fields are errors); the Prometheus
Operator's PodMonitor and PrometheusRule against JSON Schemas transcribed from
its CRDs (``tests/schemas``). Then what a schema cannot see: the StatefulSet's
headless Service, its store volume, its probes on the worker's /livez and
/readyz, the PodMonitor's port, settings that exist, and rules equal to
``config/prometheus/rules.yml`` (which promtool tests).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from anomon.settings import Settings

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="the manifest checks need the dev extra")
yaml = pytest.importorskip("yaml", reason="the manifest checks need the dev extra")
Draft202012Validator = pytest.importorskip(
    "jsonschema", reason="the manifest checks need the dev extra").Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
SCHEMAS = ROOT / "tests" / "schemas"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes release still in wide support
CRD_SCHEMAS = {"PodMonitor": "podmonitor", "PrometheusRule": "prometheusrule"}


def documents() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            if doc:
                out.append((name, doc))
    return out


def by_kind() -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for _, doc in documents():
        assert doc["kind"] not in kinds, f"two {doc['kind']}s: the checks below expect one"
        kinds[doc["kind"]] = doc
    return kinds


def test_every_manifest_file_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize(("name", "doc"), documents(), ids=lambda v: v if isinstance(v, str)
                         else v.get("kind", "?") if isinstance(v, dict) else "?")
def test_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    if doc["kind"] in CRD_SCHEMAS:
        schema = json.loads((SCHEMAS / f"{CRD_SCHEMAS[doc['kind']]}.schema.json").read_text())
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in Draft202012Validator(schema).iter_errors(doc)]
        assert errors == [], f"{name}: {errors}"
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validators_reject_a_broken_manifest() -> None:
    kinds = by_kind()
    broken = json.loads(json.dumps(kinds["StatefulSet"]))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    monitor = json.loads(json.dumps(kinds["PodMonitor"]))
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "30 seconds"
    schema = json.loads((SCHEMAS / "podmonitor.schema.json").read_text())
    assert list(Draft202012Validator(schema).iter_errors(monitor))


def _pod(kinds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(kinds["StatefulSet"]["spec"]["template"])


def _container(kinds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [container] = _pod(kinds)["spec"]["containers"]
    return dict(container)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_statefulset_has_its_headless_service_and_a_store_volume() -> None:
    kinds = by_kind()
    sts, service = kinds["StatefulSet"], kinds["Service"]
    pod_labels = _pod(kinds)["metadata"]["labels"]
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert _selects({"matchLabels": service["spec"]["selector"]}, pod_labels)
    assert _selects(sts["spec"]["selector"], pod_labels)
    container = _container(kinds)
    env = {e["name"]: e.get("value") for e in container["env"]}
    config = kinds["ConfigMap"]["data"]
    assert f".{service['metadata']['name']}." in env["ANOMON_WEB_ADVERTISED_HOST"]
    assert config["ANOMON_STORE"] == "rocksdb://"
    [claim] = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert config["ANOMON_DATA_DIR"].startswith(mounts[claim["metadata"]["name"]] + "/")
    assert config["ANOMON_TOPICS"] == "check"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert str(ports["web"]) == env["ANOMON_WEB_PORT"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)


def test_probes_use_the_workers_health_endpoints() -> None:
    container = _container(by_kind())
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "web"


def test_pods_run_unprivileged() -> None:
    kinds = by_kind()
    pod, container = _pod(kinds)["spec"], _container(kinds)
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert not pod["automountServiceAccountToken"]


def test_settings_named_are_anomons() -> None:
    kinds = by_kind()
    names = set(kinds["ConfigMap"]["data"]) | {e["name"] for e in _container(kinds)["env"]}
    known = {f"ANOMON_{field.upper()}" for field in Settings.model_fields}
    unknown = {n for n in names if n.startswith("ANOMON_")} - known
    assert unknown == set()
    assert not any(re.search(r"PASSWORD|KEY$", n) for n in kinds["ConfigMap"]["data"])


def test_podmonitor_scrapes_the_pods_web_port_as_job_anomon() -> None:
    kinds = by_kind()
    monitor = kinds["PodMonitor"]["spec"]
    pod_labels = _pod(kinds)["metadata"]["labels"]
    assert _selects(monitor["selector"], pod_labels)
    assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["web"]
    assert monitor["podMetricsEndpoints"][0]["path"] == "/metrics"
    # the job label the rules and the dashboard select on, as in prometheus.yml
    assert pod_labels[monitor["jobLabel"]] == "anomon"
    prom = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["job_name"] == "anomon"


def test_prometheusrule_carries_the_tested_rules() -> None:
    rules = yaml.safe_load((ROOT / "config" / "prometheus" / "rules.yml").read_text())
    assert by_kind()["PrometheusRule"]["spec"]["groups"] == rules["groups"]


def test_disruptions_take_one_worker_at_a_time() -> None:
    kinds = by_kind()
    pdb = kinds["PodDisruptionBudget"]["spec"]
    assert pdb["maxUnavailable"] == 1
    assert _selects(pdb["selector"], _pod(kinds)["metadata"]["labels"])
