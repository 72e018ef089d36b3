"""A customer's profile for whoever takes an alert: features, segment, scores, open alerts.

Read-only: building a profile never changes the state or any model, so it can
be served while the stream runs (``GET /customers/{id}``, see
:mod:`anomon.worker.profile_route`).

>>> from anomon.core.engine import Engine
>>> from anomon.core.events import EVENT_ADAPTER
>>> from anomon.core.timeutil import DAY
>>> engine, state = Engine(), None
>>> for week in range(10):
...     ev = EVENT_ADAPTER.validate_python({"event_id": f"e{week}", "customer_id": "c1",
...         "type": "purchase", "ts": to_rfc3339(1.77e9 + week * 7 * DAY), "amount": 40.0})
...     state = engine.process(state, ev).state
>>> p = customer_profile(engine, state, now=state.last_ts + 60 * DAY)
>>> p["customer_id"], p["features"]["purchases"], sorted(p["scores"])[:2]
('c1', 10, ['churn_risk', 'complaint_spike'])
>>> p["scores"]["drop_off"]["score"] > p["scores"]["drop_off"]["threshold"]
True
"""

from __future__ import annotations

from typing import Any

from anomon.core.alerts import fingerprint
from anomon.core.detectors.rhythm import rhythm_of, visit_rhythm_of
from anomon.core.engine import Engine
from anomon.core.features import (
    decayed_value,
    silence_days,
    tenure_days,
    typical_amount,
    window_count,
)
from anomon.core.state import CustomerState
from anomon.core.timeutil import to_rfc3339


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def _ts(epoch: float | None) -> str | None:
    return None if epoch is None else to_rfc3339(epoch)


def profile_features(engine: Engine, state: CustomerState, now: float) -> dict[str, Any]:
    """The numbers the detectors look at, as of ``now``."""
    rhythm = rhythm_of(state, engine.population, engine.config.drop_off.prior_weight)
    visits = visit_rhythm_of(state)
    return {
        "purchases": state.n_purchases,
        "spend_total": _r(state.spend_total, 2),
        "value_decayed": _r(decayed_value(state, now), 2),
        "typical_order": _r(typical_amount(state), 2) if state.amt_n else None,
        "purchases_30d": window_count(state.purchases, now, 30.0),
        "purchases_90d": window_count(state.purchases, now, 90.0),
        "usual_gap_days": _r(rhythm.mean_days, 1),
        "own_gaps": rhythm.own_gaps,
        "silence_days": _r(silence_days(state, now), 1),
        "usual_visit_gap_days": _r(visits.mean_days, 1) if visits else None,
        "tenure_days": _r(tenure_days(state, now), 1),
        "refunds_90d": window_count(state.refunds, now, 90.0),
        "complaints_90d": window_count(state.complaints, now, 90.0),
        "nps": state.nps,
        "bad_payment_streak": state.pay_streak,
        "max_days_overdue": state.pay_max_overdue,
        "owed_payments": len(state.owed),
        "owed_amount": _r(sum(item[1] for item in state.owed), 2),
    }


def profile_scores(engine: Engine, state: CustomerState, now: float) -> dict[str, Any]:
    """Each detector's current score against its threshold, in surprise units.

    The detectors compute these themselves (the same code that raises their
    alerts), so the profile and the alerts agree; ``score`` is ``None`` where
    a detector cannot judge yet, with a note saying why.
    """
    return {d.kind: d.score(state, now, engine.ctx).to_dict() for d in engine.detectors}


def open_alerts(state: CustomerState) -> list[dict[str, Any]]:
    """The alert episodes still open for this customer."""
    return [
        {"kind": kind, "fingerprint": fingerprint(state.customer_id, kind),
         "episode": ep.number, "since": to_rfc3339(ep.opened_ts), "evidence": ep.tag or None}
        for kind, ep in sorted(state.episodes.items()) if ep.open
    ]


def customer_profile(engine: Engine, state: CustomerState, now: float) -> dict[str, Any]:
    """The whole profile as a JSON-able dict."""
    segment = engine.segment(state, now)
    return {
        "customer_id": state.customer_id,
        "as_of": to_rfc3339(now),
        "first_seen": _ts(state.first_ts),
        "last_event": _ts(state.last_ts),
        "last_purchase": _ts(state.last_purchase_ts),
        "segment": {"tier": segment.tier, "stage": segment.stage},
        "features": profile_features(engine, state, now),
        "scores": profile_scores(engine, state, now),
        "open_alerts": open_alerts(state),
        "partition": state.partition,
    }

