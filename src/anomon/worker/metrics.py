"""Prometheus metrics. Labels never carry customer identifiers.

All names are prefixed ``anomon_``; the Grafana dashboard and alert rules query
exactly these.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "anomon_events",
    "Input records by event type and outcome (processed, duplicate, late, dead_lettered).",
    ["type", "outcome"],
)
DEAD_LETTERED = Counter(
    "anomon_dead_lettered", "Records sent to the dead-letter topic, by reason.", ["reason"]
)
KEY_MISMATCH = Counter(
    "anomon_key_mismatch", "Records whose Kafka key disagrees with customer_id (processed)."
)
PROCESSING_SECONDS = Histogram(
    "anomon_processing_seconds",
    "Wall time from receiving a record to finishing it (decode, features, detectors, policy).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
ALERTS = Counter(
    "anomon_alerts", "Alerts published, by kind, severity and status.",
    ["kind", "severity", "status"],
)
CUSTOMERS_TRACKED = Gauge(
    "anomon_customers_tracked", "Customers with state on this worker, by value tier and stage.",
    ["tier", "stage"],
)
MODEL_SCORE = Histogram(
    "anomon_model_score",
    "Scores of firing alerts by model, as surprise (-log10 of the chance for an unchanged "
    "customer; 3 is 1 in 1,000).",
    ["model"],
    buckets=(0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0),
)
MODEL_LABELS = Counter(
    "anomon_model_labels", "Late labels learned, by model and label.", ["model", "label"]
)
SWEEP_SECONDS = Histogram(
    "anomon_sweep_seconds", "Duration of one sweep over silent customers.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0),
)
SWEEP_CUSTOMERS = Counter("anomon_sweep_customers", "Customers examined by sweeps.")
EVENT_LAG_SECONDS = Gauge(
    "anomon_event_lag_seconds", "Wall clock minus the newest event time processed."
)
STATE_RESETS = Counter(
    "anomon_state_resets",
    "Stored customer states that could not be read (corrupt or unknown version); "
    "the customer starts fresh.",
)
STATES_DELETED = Counter(
    "anomon_states_deleted",
    "Customer states deleted from the table and its changelog, by reason: ttl (silent longer "
    "than ANOMON_STATE_TTL_DAYS) or erasure (an erasure request).",
    ["reason"],
)
CHECKPOINT_ERRORS = Counter(
    "anomon_checkpoint_errors",
    "Model checkpoints that could not be loaded (corrupt, unknown version: the worker starts "
    "with fresh models) or saved, by operation.",
    ["op"],
)
WORKER_READY = Gauge(
    "anomon_worker_ready", "1 once the worker has joined the group and recovered its tables."
)
CONSUMER_LAG = Gauge(
    "anomon_consumer_lag_records",
    "Input records not yet handled, per input partition assigned to this worker "
    "(high watermark minus the next offset to handle), as of the scrape.",
    ["partition"],
)
MODEL_DRIFT = Counter(
    "anomon_model_drift",
    "Changes detected by ADWIN, by model and signal: label_rate (the share of its late "
    "labels that are 'silent') or quality (its rolling ROC AUC on labels it had not seen).",
    ["model", "signal"],
)
MODEL_QUALITY = Gauge(
    "anomon_model_quality",
    "Prequential quality of a model on a sample of its late labels, each predicted before it "
    "is learned: rolling log-loss and ROC AUC, by model and measure.",
    ["model", "measure"],
)
COMMIT_SECONDS = Histogram(
    "anomon_commit_seconds",
    "Wall time of one commit of the batches handled since the last: changed states encoded, "
    "the batches' outputs acknowledged, the changelog written and the input offsets committed "
    "(exactly once: the transactions committed).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
STATE_WRITES = Counter(
    "anomon_state_writes",
    "Customer states (and deletions) written to the changelog: one per changed customer "
    "and commit.",
)
BATCHES_IN_FLIGHT = Gauge(
    "anomon_batches_in_flight",
    "Batches handled and not yet committed, as of the scrape (the loop waits for the "
    "committer at 4,096).",
)
GC_PAUSE_SECONDS = Histogram(
    "anomon_gc_pause_seconds",
    "Wall time of one collection of Python's cyclic garbage collector, by generation "
    "(0 young, 2 full): the worker handles nothing meanwhile.",
    ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GC_FROZEN_OBJECTS = Gauge(
    "anomon_gc_frozen_objects",
    "Objects in the collector's permanent generation, as of the scrape: the live states, "
    "frozen every ANOMON_GC_FREEZE_INTERVAL_S. It follows the customers held; growth "
    "without more customers would be garbage the freezing keeps.",
)
DRIFT_SIGNALS = ("label_rate", "quality")
QUALITY_MEASURES = ("log_loss", "roc_auc")
LABEL_NAMES = ("bought_again", "silent")


def init_model_series(model_names: list[str]) -> None:
    """Create the labelled model series at zero, so they are exported before the first label.

    >>> init_model_series(["m-doctest"])
    >>> MODEL_DRIFT.labels("m-doctest", "quality")._value.get()
    0.0
    """
    for name in model_names:
        for signal in DRIFT_SIGNALS:
            MODEL_DRIFT.labels(name, signal)
        for measure in QUALITY_MEASURES:
            MODEL_QUALITY.labels(name, measure).set(float("nan"))  # no label predicted yet
        for label in LABEL_NAMES:
            MODEL_LABELS.labels(name, label)
