"""Recommended responses, by alert kind and value tier (see the domain notes).

>>> recommend("drop_off", "high")
'Named account manager calls within one business day; review recent orders and contacts.'
"""

from __future__ import annotations

_ACTIONS: dict[tuple[str, str], str] = {
    ("drop_off", "high"): (
        "Named account manager calls within one business day; review recent orders and contacts."
    ),
    ("drop_off", "*"): "Automated win-back: personalised e-mail or SMS with a coupon.",
    ("churn_risk", "high"): (
        "Account manager reaches out this week with a retention offer; rank by value."
    ),
    ("churn_risk", "*"): "Add to the win-back campaign; offer an incentive on the next order.",
    ("complaint_spike", "high"): (
        "Senior agent contacts the customer today (service recovery); root-cause the product or "
        "delivery issue."
    ),
    ("complaint_spike", "*"): (
        "Senior agent contacts the customer for service recovery; root-cause the issue."
    ),
    ("refund_abuse", "*"): (
        "Review the customer's refunds and returns; tighten the refund policy for this customer."
    ),
    ("payment_arrears", "high"): (
        "Account manager and collections agree a payment plan; consider a credit hold."
    ),
    ("payment_arrears", "*"): "Start the collections process; place a credit hold on new orders.",
    ("spend_anomaly", "*"): (
        "Verify the order with the customer (fraud check); if genuine, treat as an upsell "
        "opportunity."
    ),
}

RESOLVED_ACTION = "No action needed: the customer is back to their usual behaviour."


def recommend(kind: str, tier: str) -> str:
    """The action for ``kind`` in value ``tier`` (falls back to the kind's default)."""
    return _ACTIONS.get((kind, tier)) or _ACTIONS[(kind, "*")]
