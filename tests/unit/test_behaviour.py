"""The generator's behaviour knobs do what the matrix relies on them to do."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from anomon.lab.synthetic import SyntheticConfig, generate, ground_truth
from anomon.lab.synthetic.behaviour import Behaviour
from anomon.lab.synthetic.generator import make_plan

DAY = 86400.0


def _events(**behaviour: Any) -> tuple[SyntheticConfig, list[dict[str, Any]]]:
    cfg = SyntheticConfig(customers=150, days=365, seed=5, behaviour=Behaviour(**behaviour))
    return cfg, list(generate(cfg))


def _t(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


def _by_customer(events: list[dict[str, Any]], type_: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e["type"] == type_:
            out[e["customer_id"]].append(_t(e))
    return out


def _cv_of_gaps(events: list[dict[str, Any]]) -> float:
    cvs = []
    for times in _by_customer(events, "purchase").values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        if len(gaps) >= 8:
            cvs.append(statistics.pstdev(gaps) / statistics.fmean(gaps))
    return statistics.median(cvs)


def test_gap_shape_sets_burstiness() -> None:
    bursty = _cv_of_gaps(_events(gap_shape=0.7, observe_gaps=None)[1])
    regular = _cv_of_gaps(_events(gap_shape=4.0)[1])
    assert bursty > 0.9 and regular < 0.65


def test_gap_range_sets_the_usual_gap() -> None:
    plan = make_plan(SyntheticConfig(customers=200, seed=5,
                                     behaviour=Behaviour(gap_days=(20.0, 60.0))))
    gaps = [p.mean_gap_days for p in plan.profiles]
    assert min(gaps) >= 20.0 and max(gaps) <= 60.0


def test_visit_styles() -> None:
    _, absent = _events(visits="absent")
    assert not any(e["type"] == "interaction" for e in absent)
    for style, glued in (("sessions", True), ("independent", False)):
        _, events = _events(visits=style)
        purchases = _by_customer(events, "purchase")
        visits = [e for e in events if e["type"] == "interaction" and e["kind"] in ("visit",
                                                                                      "login")]
        near = sum(any(0 < p - _t(v) < 0.2 * DAY for p in purchases[v["customer_id"]])
                   for v in visits)
        share = near / len(visits)
        assert (share > 0.95) if glued else (share < 0.2), (style, share)


def test_each_customer_draws_a_shape_and_a_visit_style_when_asked() -> None:
    cfg = SyntheticConfig(customers=400, seed=5,
                          behaviour=Behaviour(gap_shapes=(0.6, 4.0), visits="varied"))
    profiles = make_plan(cfg).profiles
    shapes = [p.gap_shape for p in profiles]
    assert 0.6 <= min(shapes) < 0.8 and 3.0 < max(shapes) <= 4.0
    assert sum(s < 1.55 for s in shapes) > 0.4 * len(shapes)  # log-uniform: half below ~1.55
    styles = Counter(p.visits for p in profiles)
    assert set(styles) == {"mixed", "sessions", "independent", "absent"}
    assert max(styles.values()) < 0.4 * len(profiles)  # drawn alike: about a quarter each
    events = list(generate(cfg.model_copy(update={"customers": 120})))
    silent = {p.customer_id for p in profiles[:120] if p.visits == "absent"}
    assert silent and not any(e["type"] == "interaction" and e["customer_id"] in silent
                              for e in events)


def test_season_doubles_the_purchase_rate_for_a_month() -> None:
    cfg, events = _events(season=True)
    s0, s1 = cfg.behaviour.season_window(cfg.days) or (0.0, 0.0)
    start = cfg.start_epoch

    def per_day(lo: float, hi: float) -> float:
        n = sum(1 for e in events if e["type"] == "purchase"
                and start + lo * DAY <= _t(e) < start + hi * DAY)
        return n / (hi - lo)

    assert per_day(s0 + 5, s1) > 1.6 * per_day(s0 - 60, s0 - 5)


def test_shuffled_invoices_leave_unpaid_ones_between_paid_ones() -> None:
    cfg = SyntheticConfig(customers=400, seed=5, change_fraction=0.05,
                          behaviour=Behaviour(invoices_out_of_order=True))
    events = list(generate(cfg))
    arrears = [r for r in ground_truth(cfg) if r["kind"] == "payment_arrears"]
    assert arrears
    for row in arrears:
        mine = [e for e in events if e["customer_id"] == row["customer_id"]
                and e["type"] == "payment" and _t(e) >= _t({"ts": row["onset"]})]
        settled = {e["invoice_id"] for e in mine if e["status"] == "paid"}
        failed = [e for e in mine if e["status"] == "failed" and e["invoice_id"] not in settled]
        assert len(failed) == 2
        between = [e for e in mine if _t(failed[0]) < _t(e) < _t(failed[1])]
        assert any(e["status"] == "paid" for e in between)


def test_defaults_are_unchanged_by_the_knobs() -> None:
    plain = SyntheticConfig(customers=60, days=200, seed=2)
    assert list(generate(plain)) == list(generate(plain.model_copy(
        update={"behaviour": Behaviour()})))


def test_declines_use_every_factor_and_truth_carries_the_usual_gap() -> None:
    rows = ground_truth(SyntheticConfig(customers=600, seed=5, change_fraction=0.08,
                                        behaviour=Behaviour(decline_factors=(5.0, 4.0))))
    declines = [r for r in rows if r["kind"] == "drop_off" and r["mode"] == "decline"]
    assert {r["detail"].split("fell to ")[1].split(" ")[0] for r in declines} == {"1/5", "1/4"}
    assert all(r["gap_days"] > 0 for r in rows if r["kind"] == "drop_off")


def test_usual_refund_complaint_late_payment_and_spend_spread_are_drawn_from_their_ranges(
) -> None:
    plain = make_plan(SyntheticConfig(customers=300, seed=5)).profiles
    cfg = SyntheticConfig(customers=300, seed=5, behaviour=Behaviour(
        refund_rates=(0.15, 0.5), complaints_per_year=(1.5, 8.0), late_rates=(0.1, 0.4),
        spend_spreads=(0.6, 1.2)))
    profiles = make_plan(cfg).profiles
    refund = [p.refund_rate for p in profiles]
    assert 0.15 <= min(refund) < 0.2 and 0.45 < max(refund) <= 0.5
    assert all(1.5 <= p.complaints_per_year <= 8.0 for p in profiles)
    assert all(0.1 <= p.late_rate <= 0.4 for p in profiles)
    assert all(0.6 <= p.spend_sigma <= 1.2 for p in profiles)
    # only those four move: the same customers otherwise
    assert [(p.mean_gap_days, p.spend_median, p.survey_rate) for p in profiles] == [
        (p.mean_gap_days, p.spend_median, p.survey_rate) for p in plain]
    events = list(generate(cfg.model_copy(update={"customers": 150})))
    orders = sum(e["type"] == "purchase" for e in events)
    refunds = sum(e["type"] == "refund" for e in events)
    assert 0.2 < refunds / orders < 0.45  # about the mean of the range (abuse adds a little)


def test_rate_ranges_are_validated() -> None:
    for bad in ({"refund_rates": (0.5, 0.2)}, {"late_rates": (0.5, 1.5)},
                {"complaints_per_year": (0.0, 2.0)}, {"spend_spreads": (-0.1, 0.5)}):
        try:
            Behaviour(**bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")
