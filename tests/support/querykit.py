"""What the Grafana dashboard and the Prometheus rules ask of ``/metrics``, and whether it answers.

Each PromQL expression is parsed (``promql-parser``); every selector names a
metric and label matchers, and every ``by``/``without``/``on``/``ignoring``
clause names labels that the metrics beneath it must carry. :func:`problems`
checks those needs against a scrape: a metric nobody exports, a label it does
not carry, or an equality matcher whose value never occurs is a problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as pp
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "anomon.json"
RULES = ROOT / "config" / "prometheus" / "rules.yml"
#: Series Prometheus makes itself for every target, not the worker.
PROMETHEUS_SERIES = {"up": {"job", "instance"}}
#: Labels Prometheus gives every scraped series (the dashboard's variables select on them).
TARGET_LABELS = {"job", "instance"}


@dataclass
class Need:
    """One selector: a metric, the labels it must carry, the values it must show."""

    metric: str
    labels: set[str] = field(default_factory=set)
    equal: dict[str, str] = field(default_factory=dict)
    regex: dict[str, str] = field(default_factory=dict)


def _grouping(node: Any) -> list[str]:
    modifier = getattr(node, "modifier", None)
    if modifier is None:
        return []
    labels = list(getattr(modifier, "labels", None) or [])
    matching = getattr(modifier, "matching", None)
    if matching is not None:
        labels += list(getattr(matching, "labels", None) or [])
    labels += list(getattr(modifier, "group_labels", None) or [])
    return labels


def needs(expr: str) -> list[Need]:
    """Every selector of ``expr`` with the labels and values it needs."""
    tree = pp.parse(expr)
    out: list[Need] = []
    stack: list[list[Need]] = []

    def pre(node: Any) -> None:
        stack.append([])
        if isinstance(node, pp.VectorSelector) and node.name:
            need = Need(str(node.name))
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    continue
                need.labels.add(m.name)
                if m.op == pp.MatchOp.Equal and m.value:
                    need.equal[m.name] = m.value
                elif m.op == pp.MatchOp.Re:
                    need.regex[m.name] = m.value
            stack[-1].append(need)
            out.append(need)

    def post(node: Any) -> None:
        below = stack.pop()
        for label in _grouping(node):
            for need in below:
                need.labels.add(label)
        if stack:
            stack[-1].extend(below)

    pp.walk(tree, pre_visit=pre, post_visit=post)
    return out


def scrape_series(text: str) -> dict[str, list[dict[str, str]]]:
    """Sample name -> label sets, from Prometheus text."""
    series: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(dict(sample.labels))
    return series


def problems(expr: str, series: dict[str, list[dict[str, str]]]) -> list[str]:
    """What ``expr`` needs that the scrape ``series`` does not have (empty: all there)."""
    found: list[str] = []
    for need in needs(expr):
        if need.metric in PROMETHEUS_SERIES:
            extra = need.labels - PROMETHEUS_SERIES[need.metric]
            if extra:
                found.append(f"{need.metric}: labels {sorted(extra)} are not Prometheus's")
            continue
        samples = series.get(need.metric)
        if not samples:
            found.append(f"{need.metric}: not exported")
            continue
        have = set().union(*(s.keys() for s in samples)) | TARGET_LABELS
        missing = need.labels - have
        if missing:
            found.append(f"{need.metric}: no label {sorted(missing)} (has {sorted(have)})")
            continue
        for label, value in need.equal.items():
            if not any(s.get(label) == value for s in samples):
                found.append(f'{need.metric}: no series with {label}="{value}"')
        for label, pattern in need.regex.items():
            if label in TARGET_LABELS:
                continue
            if not any(re.fullmatch(pattern, s.get(label, "")) for s in samples):
                found.append(f'{need.metric}: no series with {label}=~"{pattern}"')
    return found


def dashboard_queries(path: Path = DASHBOARD) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every target of every panel, rows included."""
    board = json.loads(path.read_text())

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(board["panels"]):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield str(panel.get("title", "")), str(target["expr"])


def rule_queries(path: Path = RULES) -> Iterator[tuple[str, str]]:
    """(alert or record name, expression) of every rule."""
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            yield str(rule.get("alert") or rule.get("record")), str(rule["expr"])
