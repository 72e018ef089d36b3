"""``anomon replay``: the engine over a file, with rejects, counts and event-time order."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from anomon.cli.main import main
from anomon.core.alerts import Alert
from anomon.lab.synthetic import SyntheticConfig, write_dataset

BAD_LINES = [
    b"not json at all",
    b"[1, 2, 3]",
    b'{"event_id": "b1", "customer_id": "c-bad", "type": "teleport",'
    b' "ts": "2025-03-01T00:00:00Z"}',
    b'{"event_id": "b2", "customer_id": "c-bad", "type": "purchase",'
    b' "ts": "2025-03-01T00:00:00Z"}',
    b'{"event_id": "b3", "customer_id": "c-bad", "type": "purchase",'
    b' "ts": "1970-01-01T00:00:00Z", "amount": 5}',
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[bytes]]:
    """A small synthetic history with injected changes, plus bad lines, shuffled in places."""
    root = tmp_path_factory.mktemp("replay")
    events, truth = root / "events.jsonl.gz", root / "truth.jsonl"
    write_dataset(SyntheticConfig(customers=300, days=240, seed=7), events, truth)
    with gzip.open(events, "rb") as fh:
        lines = [line.rstrip(b"\n") for line in fh if line.strip()]
    return events, truth, lines


def _replay(tmp_path: Path, lines: list[bytes], name: str, *extra: str) -> tuple[int, list[dict],
                                                                               list[dict], dict]:
    src = tmp_path / f"{name}.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out, dlq, summary = (tmp_path / f"{name}-{kind}.json" for kind in ("alerts", "dlq", "sum"))
    rc = main(["replay", str(src), "--out", str(out), "--dlq", str(dlq),
               "--summary", str(summary), *extra])
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    rejects = [json.loads(line) for line in dlq.read_text().splitlines()]
    return rc, alerts, rejects, json.loads(summary.read_text())


def test_every_line_is_processed_or_rejected_with_a_reason(
    tmp_path: Path, dataset: tuple[Path, Path, list[bytes]]
) -> None:
    _, _, lines = dataset
    mixed = lines[:2000] + BAD_LINES + lines[2000:4000]
    rc, _, rejects, summary = _replay(tmp_path, mixed, "mixed")
    assert rc == 0
    assert summary["events_in"] == len(mixed)
    assert summary["processed"] + summary["duplicate"] + summary["late"] + sum(
        summary["rejected"].values()) == len(mixed)
    assert len(rejects) == len(BAD_LINES) == sum(summary["rejected"].values())
    reasons = {r["reason"] for r in rejects}
    assert {"invalid_json", "not_an_object", "unknown_type", "schema_error",
            "timestamp_out_of_range"} <= reasons, reasons
    raws = {r["raw"] for r in rejects}
    assert "not json at all" in raws


def test_injected_changes_raise_valid_alerts(
    tmp_path: Path, dataset: tuple[Path, Path, list[bytes]]
) -> None:
    _, truth_path, lines = dataset
    rc, alerts, rejects, summary = _replay(tmp_path, lines, "all")
    assert rc == 0 and not rejects and summary["processed"] == len(lines)
    for alert in alerts:
        Alert.model_validate(alert)
    firing = {(a["customer_id"], a["kind"]) for a in alerts if a["status"] == "firing"}
    truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
    instant = [t for t in truth if t["kind"] in ("complaint_spike", "spend_anomaly")]
    assert instant, "the generator injected no complaint burst or outsized order"
    caught = [t for t in instant if (t["customer_id"], t["kind"]) in firing]
    assert len(caught) >= 0.9 * len(instant)
    ids = [a["alert_id"] for a in alerts]
    assert len(ids) == len(set(ids)), "an alert id repeats within one replay"


def test_replay_is_deterministic_and_independent_of_file_order(
    tmp_path: Path, dataset: tuple[Path, Path, list[bytes]]
) -> None:
    _, _, lines = dataset
    _, first, _, _ = _replay(tmp_path, lines, "a")
    _, again, _, _ = _replay(tmp_path, lines, "b")
    shuffled = list(lines)
    random.Random(3).shuffle(shuffled)
    _, from_shuffled, _, _ = _replay(tmp_path, shuffled, "c")
    assert first == again
    assert [a["alert_id"] for a in from_shuffled] == [a["alert_id"] for a in first]
    assert len(first) > 0
