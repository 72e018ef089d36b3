"""``GET /customers/{id}``: with two workers, asking either one answers for any customer.

Faust's table route forwards the request to the worker that owns the
customer's partition; the answer must be the same whoever is asked, carry the
customer's features, segment, scores and open alerts, and never be another
customer's.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from workerkit import History, Names, days_ago, send_events, share_partitions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _get(port: int, customer: str) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/customers/{urllib.parse.quote(customer, safe='')}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.slow  # over 10 s: in `make test`, not the `make check` loop
def test_either_worker_answers_for_any_customer(broker: Any, workers: Any) -> None:
    names = Names()
    first = workers(names, sweep_interval_s=600, standby_replicas=0)
    first.wait_ready()
    second = workers(names, sweep_interval_s=600, standby_replicas=0)
    second.wait_ready()

    first.wait_for(lambda _: share_partitions(first, second), timeout=60)
    h = History(days_ago(60))
    customers = [f"cust-{i:02d}" for i in range(16)] + ["odd id/é ü"]
    for n, customer in enumerate(customers):
        for week in range(6):
            h.add(customer, "purchase", 7 * week + n * 0.1, amount=20.0 + n)
    for i, severity in enumerate((4, 5, 5)):
        h.add("cust-03", "complaint", 57 + 0.5 * i, severity=severity)
    send_events(broker, names.input, h.in_time_order())
    total = len(h.events)
    first.wait_for(lambda s: s["processed"] + second.stats()["processed"] == total, timeout=60)
    owners = {first.stats()["processed"] > 0, second.stats()["processed"] > 0}
    assert owners == {True}, "both workers should own some customers"

    held = [set(w.stats()["partitions"]) for w in (first, second)]
    forwarded = 0
    for customer in customers:
        answers = [_get(w.port, customer) for w in (first, second)]
        for asked, (status, body) in enumerate(answers):
            assert status == 200, (customer, status, body)
            assert body["customer_id"] == customer
            assert body["features"]["purchases"] == 6
            assert set(body["segment"]) == {"tier", "stage"}
            assert {"drop_off", "churn_risk", "complaint_spike", "refund_abuse",
                    "payment_arrears"} <= set(body["scores"])
            # no standby copies: a worker not holding the partition answered by forwarding
            forwarded += body["partition"] not in held[asked]
        same = [{k: v for k, v in body.items() if k != "as_of"} for _, body in answers]
        assert same[0] == same[1], customer  # the same owner answered both
    assert forwarded == len(customers)  # each customer: one of the two asks was forwarded

    status, body = _get(second.port, "cust-03")
    assert body["features"]["complaints_90d"] == 3
    spike = [a for a in body["open_alerts"] if a["kind"] == "complaint_spike"]
    assert len(spike) == 1 and spike[0]["episode"] == 1
    assert body["scores"]["complaint_spike"]["score"] >= body["scores"]["complaint_spike"][
        "threshold"]
    status, body = _get(first.port, "cust-04")
    assert body["open_alerts"] == []

    for worker in (first, second):
        status, body = _get(worker.port, "nobody-here")
        assert status == 404 and body["error"] == "unknown customer"
