"""The synthetic generator: deterministic, ordered, on contract, changes visible in the data."""

from __future__ import annotations

import gzip
import itertools
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from anomon.lab.synthetic import (
    CHANGE_KINDS,
    SyntheticConfig,
    generate,
    ground_truth,
    write_dataset,
)
from anomon.lab.synthetic.generator import LEAD, Plan, make_plan
from anomon.lab.synthetic.population import model_epoch

DAY = 86400.0
CONFIG = SyntheticConfig(customers=600, days=365, seed=11)
QUOTA = round(0.03 * 600)

Event = dict[str, Any]


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


@pytest.fixture(scope="module")
def plan() -> Plan:
    return make_plan(CONFIG)


@pytest.fixture(scope="module")
def events(plan: Plan) -> list[Event]:
    return list(generate(CONFIG, plan))


@pytest.fixture(scope="module")
def truth(plan: Plan) -> list[Event]:
    return plan.truth()


@pytest.fixture(scope="module")
def by_customer(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        out[e["customer_id"]].append(e)
    return out


def changes_of(truth: list[Event], kind: str) -> list[Event]:
    rows = [r for r in truth if r["kind"] == kind]
    assert rows, f"no {kind} in the truth"
    return rows


def of_type(events: list[Event], type_: str) -> list[Event]:
    return [e for e in events if e["type"] == type_]


# -- determinism, order, contract ---------------------------------------------------------


def test_same_seed_same_events_and_truth() -> None:
    cfg = SyntheticConfig(customers=120, days=200, seed=5)
    first = list(generate(cfg))
    assert first == list(generate(cfg))
    assert ground_truth(cfg) == ground_truth(SyntheticConfig(customers=120, days=200, seed=5))
    other = list(generate(SyntheticConfig(customers=120, days=200, seed=6)))
    assert other != first


def test_a_customer_does_not_depend_on_population_size() -> None:
    small = SyntheticConfig(customers=30, days=120, seed=4, change_fraction=0.0)
    large = SyntheticConfig(customers=60, days=120, seed=4, change_fraction=0.0)

    def strip(events: list[Event]) -> list[tuple[str, str]]:
        return [(e["type"], e["ts"]) for e in events if e["customer_id"] == "c000007"]

    assert strip(list(generate(small))) == strip(list(generate(large)))


def test_events_in_event_time_order_with_unique_ids(events: list[Event]) -> None:
    times = [epoch(e["ts"]) for e in events]
    assert times == sorted(times)
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert times[0] >= epoch("2025-01-01T00:00:00+00:00")
    assert times[-1] < epoch("2025-01-01T00:00:00+00:00") + 365 * DAY


def check_contract(e: Event) -> None:
    allowed = {"event_id", "customer_id", "type", "ts", "channel"}
    assert isinstance(e["event_id"], str) and e["event_id"]
    assert isinstance(e["customer_id"], str) and e["customer_id"].strip()
    ts = datetime.fromisoformat(e["ts"])
    assert ts.utcoffset() is not None and e["ts"].endswith("+00:00")
    if "channel" in e:
        assert isinstance(e["channel"], str) and e["channel"]
    t = e["type"]
    if t in ("purchase", "refund", "payment"):
        allowed |= {"amount", "currency"}
        assert isinstance(e["amount"], float) and e["amount"] >= 0.0
        assert isinstance(e.get("currency", "EUR"), str) and len(e.get("currency", "EUR")) == 3
    if t == "payment":
        allowed |= {"status", "days_overdue", "invoice_id"}
        assert e["status"] in ("paid", "overdue", "failed")
        if "days_overdue" in e:
            assert isinstance(e["days_overdue"], int) and e["days_overdue"] >= 0
    elif t == "complaint":
        allowed |= {"category", "severity"}
        assert isinstance(e.get("category", "x"), str)
        assert isinstance(e["severity"], int) and 1 <= e["severity"] <= 5
    elif t == "survey":
        allowed |= {"score"}
        assert isinstance(e["score"], int) and 0 <= e["score"] <= 10
    elif t == "interaction":
        allowed |= {"kind"}
        assert e.get("kind") in ("visit", "login", "email_open", "call", "chat")
    else:
        assert t in ("purchase", "refund"), t
    assert set(e) <= allowed, set(e) - allowed


def test_every_event_on_contract_and_json_safe(events: list[Event]) -> None:
    for e in events:
        check_contract(e)
    assert orjson.loads(orjson.dumps(events[:100])) == events[:100]
    assert set(Counter(e["type"] for e in events)) == {
        "purchase", "interaction", "complaint", "refund", "payment", "survey"}


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        SyntheticConfig(customers=0)
    with pytest.raises(ValidationError):
        SyntheticConfig(change_fraction=0.5)
    with pytest.raises(ValidationError):
        SyntheticConfig(colour="blue")  # type: ignore[call-arg]


# -- the population behaves naturally --------------------------------------------------------


def test_natural_rhythms(events: list[Event], truth: list[Event],
                         by_customer: dict[str, list[Event]]) -> None:
    changed = {r["customer_id"] for r in truth}
    calm = [e for c, es in by_customer.items() if c not in changed for e in es]
    counts = Counter(e["type"] for e in calm)
    assert 0.02 <= counts["refund"] / counts["purchase"] <= 0.04
    assert 2.0 <= counts["interaction"] / counts["purchase"] <= 6.0
    payments = Counter(e["status"] for e in of_type(calm, "payment"))
    assert payments["failed"] == 0 and payments["paid"] / payments.total() >= 0.9
    assert payments["overdue"] > 0  # now and then a late one
    scores = [e["score"] for e in of_type(calm, "survey")]
    assert sum(s >= 7 for s in scores) / len(scores) >= 0.95
    assert 0.2 <= sum(s in (7, 8) for s in scores) / len(scores) <= 0.5  # some passives
    complaints = of_type(calm, "complaint")
    assert len(complaints) / len(by_customer) <= 1.0
    assert all(c["severity"] <= 3 for c in complaints)


def test_customers_differ_and_some_are_new(by_customer: dict[str, list[Event]]) -> None:
    start = epoch("2025-01-01T00:00:00+00:00")
    mean_gaps = []
    spend = []
    late_joiners = 0
    for es in by_customer.values():
        buys = of_type(es, "purchase")
        if len(buys) >= 4:
            t = [epoch(b["ts"]) for b in buys]
            mean_gaps.append((t[-1] - t[0]) / (len(t) - 1) / DAY)
            spend.append(sum(b["amount"] for b in buys))
        late_joiners += epoch(es[0]["ts"]) > start + 60 * DAY
    assert min(mean_gaps) < 7.0 and max(mean_gaps) > 45.0
    spend.sort()
    top_decile = spend[int(0.9 * len(spend)):]
    assert sum(top_decile) / sum(spend) > 0.3  # a few high-value customers
    assert late_joiners >= 0.1 * len(by_customer)


def test_holidays_are_long_quiet_gaps(plan: Plan, truth: list[Event],
                                      by_customer: dict[str, list[Event]]) -> None:
    changed = {r["customer_id"] for r in truth}
    start = CONFIG.start_epoch
    spanned = long = 0
    for p in plan.profiles:
        if p.holiday is None or p.customer_id in changed:
            continue
        h0, h1 = (model_epoch(h, start) for h in p.holiday)
        quiet_end = model_epoch(p.holiday[1] - LEAD, start)  # a visit just before coming back
        es = by_customer[p.customer_id]
        away = [e for e in es if h0 <= epoch(e["ts"]) < quiet_end]
        assert all(e["type"] in ("payment", "refund", "survey") for e in away)
        t = [epoch(e["ts"]) for e in of_type(es, "purchase")]
        gaps = [(a, b - a) for a, b in itertools.pairwise(t)]
        across = [g for a, g in gaps if a < h0 and a + g >= h1]
        if len(gaps) >= 6 and across:
            spanned += 1
            long += across[0] >= 2.0 * statistics.median(g for _, g in gaps)
    assert spanned >= 50 and long >= 0.7 * spanned


def test_refunds_never_exceed_a_purchase(by_customer: dict[str, list[Event]]) -> None:
    for es in by_customer.values():
        biggest = 0.0
        for e in es:
            if e["type"] == "purchase":
                biggest = max(biggest, e["amount"])
            elif e["type"] == "refund":
                assert 0 < e["amount"] <= biggest


# -- the truth and the injected changes ------------------------------------------------------


def test_truth_rows(truth: list[Event]) -> None:
    kinds = Counter(r["kind"] for r in truth)
    assert {k: kinds[k] for k in CHANGE_KINDS} == dict.fromkeys(CHANGE_KINDS, QUOTA)
    stops = [r for r in truth if r["kind"] == "drop_off" and r["mode"] == "stop"]
    churn = changes_of(truth, "churn_risk")
    assert {(r["customer_id"], r["onset"]) for r in stops} == {
        (r["customer_id"], r["onset"]) for r in churn}
    assert {r["mode"] for r in changes_of(truth, "drop_off")} == {"stop", "decline"}
    half = epoch("2025-01-01T00:00:00+00:00") + 182.5 * DAY
    changed = Counter(r["customer_id"] for r in truth if r["kind"] != "churn_risk")
    assert max(changed.values()) == 1
    for r in truth:
        assert set(r) <= {"customer_id", "kind", "onset", "mode", "detail", "gap_days"}
        assert ("gap_days" in r) == (r["kind"] == "drop_off")
        assert epoch(r["onset"]) >= half and r["detail"]
    assert any(r["detail"].startswith("high-value") for r in changes_of(truth, "drop_off"))


def test_truth_file_matches_ground_truth_function(truth: list[Event]) -> None:
    assert ground_truth(CONFIG) == truth


def before_after(es: list[Event], onset: str, type_: str) -> tuple[list[Event], list[Event]]:
    t0 = epoch(onset)
    rows = of_type(es, type_)
    return [e for e in rows if epoch(e["ts"]) < t0], [e for e in rows if epoch(e["ts"]) > t0]


def test_stop_customers_go_silent(truth: list[Event], by_customer: dict[str, list[Event]]) -> None:
    for r in changes_of(truth, "drop_off"):
        if r["mode"] != "stop":
            continue
        es = by_customer[r["customer_id"]]
        before, _ = before_after(es, r["onset"], "purchase")
        assert len(before) >= 6
        assert [e for e in es if epoch(e["ts"]) > epoch(r["onset"])] == []


def test_decliners_buy_a_fifth_as_often(truth: list[Event],
                                        by_customer: dict[str, list[Event]]) -> None:
    end = epoch("2026-01-01T00:00:00+00:00")
    expected = observed = 0.0
    for r in changes_of(truth, "drop_off"):
        if r["mode"] != "decline":
            continue
        before, after = before_after(by_customer[r["customer_id"]], r["onset"], "purchase")
        assert len(before) >= 6
        t = [epoch(e["ts"]) for e in before]
        gap = (t[-1] - t[0]) / (len(t) - 1)
        expected += (end - epoch(r["onset"])) / gap
        observed += len(after)
    assert observed <= 0.35 * expected


def test_spend_anomaly_is_a_big_order(truth: list[Event],
                                      by_customer: dict[str, list[Event]]) -> None:
    for r in changes_of(truth, "spend_anomaly"):
        es = by_customer[r["customer_id"]]
        before, _ = before_after(es, r["onset"], "purchase")
        assert len(before) >= 6
        usual = statistics.median(e["amount"] for e in before)
        (big,) = [e for e in of_type(es, "purchase") if e["ts"] == r["onset"]]
        assert 8.0 * usual <= big["amount"] <= 20.01 * usual


def test_complaint_spike_is_visible(truth: list[Event],
                                    by_customer: dict[str, list[Event]]) -> None:
    for r in changes_of(truth, "complaint_spike"):
        es = by_customer[r["customer_id"]]
        t0 = epoch(r["onset"])
        burst = [e for e in of_type(es, "complaint") if t0 <= epoch(e["ts"]) <= t0 + 5 * DAY]
        assert 3 <= len(burst) <= 5
        assert all(e["severity"] >= 3 for e in burst)
        assert epoch(burst[0]["ts"]) == t0
        surveys = [e for e in of_type(es, "survey") if t0 <= epoch(e["ts"]) <= t0 + 6 * DAY]
        assert any(e["score"] <= 6 for e in surveys)


def test_refund_abuse_is_visible(truth: list[Event], by_customer: dict[str, list[Event]]) -> None:
    for r in changes_of(truth, "refund_abuse"):
        es = by_customer[r["customer_id"]]
        t0 = epoch(r["onset"])
        before = [e for e in of_type(es, "purchase") if epoch(e["ts"]) < t0]
        bought = [e for e in of_type(es, "purchase") if epoch(e["ts"]) >= t0]
        refunds = [e for e in of_type(es, "refund") if epoch(e["ts"]) > t0]
        assert len(before) >= 6
        assert len(refunds) >= 4
        assert sum(e["amount"] for e in refunds) >= 0.6 * sum(e["amount"] for e in bought)


def test_payment_arrears_is_visible(truth: list[Event],
                                    by_customer: dict[str, list[Event]]) -> None:
    for r in changes_of(truth, "payment_arrears"):
        es = by_customer[r["customer_id"]]
        before, _ = before_after(es, r["onset"], "payment")
        assert sum(e["status"] == "paid" for e in before) >= 3
        after = [e for e in of_type(es, "payment") if epoch(e["ts"]) >= epoch(r["onset"])]
        assert len(after) >= 3 and after[0]["ts"] == r["onset"]
        assert all(e["status"] in ("overdue", "failed") for e in after)
        overdue = [e["days_overdue"] for e in after]
        assert overdue == sorted(overdue) and overdue[-1] > overdue[0]


# -- files -----------------------------------------------------------------------------------


def test_write_dataset_round_trip(tmp_path: Path) -> None:
    cfg = SyntheticConfig(customers=200, days=365, seed=3)
    events_path, truth_path = tmp_path / "events.jsonl.gz", tmp_path / "out" / "truth.jsonl"
    summary = write_dataset(cfg, events_path, truth_path)
    with gzip.open(events_path, "rb") as fh:
        written = [orjson.loads(line) for line in fh]
    assert written == list(generate(cfg))
    rows = [orjson.loads(line) for line in truth_path.read_bytes().splitlines()]
    assert rows == ground_truth(cfg)
    assert summary.events == len(written) == sum(summary.by_type.values())
    assert summary.by_type["purchase"] == sum(e["type"] == "purchase" for e in written)
    assert summary.changes == dict(Counter(r["kind"] for r in rows))
    assert summary.customers == len({e["customer_id"] for e in written})
    assert 0.5 * 200 * 365 < summary.customer_days < 200 * 365
    assert "events" in str(summary) and summary.to_dict()["events"] == summary.events
