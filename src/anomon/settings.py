"""Runtime configuration, read from ``ANOMON_*`` environment variables.

Every field has a documented default; ``config/README.md`` lists them all.

>>> Settings().input_topic
'customer-events'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DETECTORS_FILE = "detectors.toml"
"""The detector configuration's name in ``models_dir``."""


class Settings(BaseSettings):
    """Worker, topic and web settings. Override any field with ``ANOMON_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ANOMON_", env_file=None, extra="ignore")

    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap URL(s), ';'-separated, e.g. kafka://host1:9092;kafka://host2:9092.",
    )
    app_id: str = Field("anomon", description="Consumer group and changelog topic prefix.")
    input_topic: str = Field("customer-events", description="Topic of incoming customer events.")
    dlq_topic: str = Field(
        "customer-events-dlq", description="Dead-letter topic for rejected records."
    )
    late_topic: str = Field(
        "customer-events-late", description="Side topic for events later than the lateness bound."
    )
    alerts_topic: str = Field("customer-alerts", description="Topic the alerts are published to.")
    topics: Literal["create", "check"] = Field(
        "create",
        description=(
            "At start: 'create' the topics that are missing (needs the CREATE right), or only "
            "'check' the existing ones (partition counts, the changelog compacted), for "
            "clusters where topics are made by their owners; see config/README.md, ACLs."
        ),
    )
    partitions: int = Field(4, ge=1, description="Partitions of the topics anomon creates.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of created topics.")
    web_host: str = Field("127.0.0.1", description="Address the worker's web server binds to.")
    web_port: int = Field(6066, ge=0, le=65535, description="Port of the web server (/metrics).")
    data_dir: Path = Field(Path("var/worker"), description="Worker data directory (table state).")
    store: str = Field("memory://", description="Table store URL: memory:// or rocksdb://.")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="Kafka processing guarantee."
    )
    sweep_interval_s: float = Field(
        5.0, gt=0, description="Seconds between sweeps for silent customers (wall clock)."
    )
    sweep_clock: Literal["wall", "event"] = Field(
        "wall",
        description=(
            "Clock the sweep judges silence by: 'wall' (now) for live traffic, 'event' "
            "(the newest event time seen) for replayed or simulated traffic."
        ),
    )
    lateness_bound_s: float = Field(
        48 * 3600.0,
        ge=0,
        description="Events older than the customer's newest event by more than this are late.",
    )
    max_event_bytes: int = Field(64 * 1024, gt=0, description="Larger records are dead-lettered.")
    models_dir: Path = Field(Path("models"), description="Detector configuration and checkpoints.")
    session_timeout_s: float = Field(
        45.0,
        gt=0,
        description=(
            "Consumer group session timeout of the worker: a worker silent this long is "
            "dropped and its partitions move (heartbeats every tenth of it). 45 s is Kafka's "
            "own default, patient with GC pauses and slow networks; the demo and the tests "
            "use 6 s (the smallest Apache Kafka accepts by default) for quick takeovers."
        ),
    )
    standby_replicas: int = Field(
        0, ge=0, le=8, description="Warm copies of each partition kept by other workers of "
        "the group (Kafka Streams' num.standby.replicas): they tail its changelog, so a "
        "takeover reads only what they had not read. Each costs a copy of the states' bytes."
    )
    checkpoint_interval_s: float = Field(
        60.0,
        ge=0,
        description=(
            "Seconds between checkpoints of the shared models (population baseline, "
            "behaviour and churn models) to data_dir/models.pkl; 0 saves only at shutdown."
        ),
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description=(
            "How every anomon client talks to Kafka: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or "
            "SASL_SSL (SASL over TLS, the one to use outside a trusted network)."
        ),
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism with SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_username: str = Field("", description="SASL user name.")
    sasl_password: SecretStr = Field(
        SecretStr(""), description="SASL password; set it in the environment, not in a file."
    )
    ssl_cafile: str = Field(
        "",
        description=(
            "PEM file of the CA(s) that signed the brokers' certificates (SSL, SASL_SSL); "
            "empty: the system's CAs."
        ),
    )
    ssl_certfile: str = Field(
        "", description="Client certificate (PEM) when the brokers ask for one (mutual TLS)."
    )
    ssl_keyfile: str = Field("", description="Private key (PEM) of ssl_certfile.")
    ssl_check_hostname: bool = Field(
        True, description="Check that the broker's certificate names the host connected to."
    )
    erasure_topic: str = Field(
        "customer-erasure",
        description=(
            "Topic of erasure requests (`anomon erase`): the worker deletes the customer's "
            "state. Restrict who may write to it."
        ),
    )
    state_ttl_days: float = Field(
        730.0,
        ge=0,
        description=(
            "A customer silent this many days (event time) is forgotten: their state is "
            "deleted from the table and its changelog by the sweep. 0 keeps states forever."
        ),
    )
    pseudonym_key: SecretStr = Field(
        SecretStr(""),
        description=(
            "Key of the keyed hash that stands for customer ids in logs (`anomon pseudonym ID` "
            "finds a customer's lines). Empty: a random key per process, so log references "
            "cannot be linked across restarts."
        ),
    )
    web_advertised_host: str = Field(
        "",
        description=(
            "Host other workers use to reach this one's web server (customer profile "
            "requests are forwarded to the worker owning the customer); empty: web_host, "
            "or this machine's hostname when web_host is a wildcard such as 0.0.0.0."
        ),
    )
    forward_url: str = Field(
        "",
        description=(
            "Where `anomon forward` posts alerts: Alertmanager's base URL "
            "(http://alertmanager:9093; /api/v2/alerts is added), a webhook receiver's URL "
            "(forward_format=webhook), or https://events.pagerduty.com/v2/enqueue "
            "(forward_format=pagerduty)."
        ),
    )
    forward_format: Literal["alertmanager", "webhook", "pagerduty"] = Field(
        "alertmanager",
        description=(
            "Payload of `anomon forward`: 'alertmanager' (its API v2, firing alerts re-sent "
            "every forward_resend_s until resolved), 'webhook' (the JSON Alertmanager sends to "
            "its webhook receivers, for tools that take those), or 'pagerduty' (Events v2)."
        ),
    )
    forward_resend_s: float = Field(
        60.0,
        gt=0,
        description=(
            "Alertmanager mode: seconds between re-sends of the firing alerts; each is sent "
            "with endsAt four intervals ahead, so Alertmanager resolves an alert by itself "
            "only if the forwarder stops."
        ),
    )
    forward_kinds: str = Field(
        "", description="Forward only these alert kinds (comma list, e.g. drop_off,churn_risk); "
        "empty: all.")
    forward_severities: str = Field(
        "", description="Forward only these severities (comma list of info, warning, critical); "
        "empty: all.")
    forward_segments: str = Field(
        "", description="Forward only customers in these segments: a tier (high), a stage "
        "(loyal) or both (high/loyal), comma list; empty: all.")
    forward_metrics_port: int = Field(
        6067, ge=0, le=65535,
        description="Port of the forwarder's /metrics (on web_host); 0: no metrics server.")
    forward_routing_key: SecretStr = Field(
        SecretStr(""),
        description="PagerDuty integration (routing) key; keep it out of files, set it in the "
        "environment.",
    )
    forward_group: str = Field(
        "", description="Consumer group of `anomon forward`; empty: <app_id>-forward."
    )
    forward_max_attempts: int = Field(
        8, ge=1, description="Attempts per payload before it is logged as undelivered and skipped."
    )
    forward_backoff_s: float = Field(
        0.5, gt=0, description="Wait before the first retry; doubled each retry, at most 30 s, "
        "each wait drawn between half and all of it (jitter); a Retry-After answer is obeyed "
        "up to 5 minutes."
    )
    forward_timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one post.")
    forward_give_up_s: float = Field(
        300.0, gt=0, description="anomon forward exits 1 when the broker is unreachable this "
        "long (it backs off meanwhile; a supervisor restarts it).")
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description=(
            "Log lines as text, or as JSON objects (one a line: ts, level, logger, message and "
            "the key=value fields) for a log collector; Faust's and aiokafka's lines too."
        ),
    )
    profile_host: str = Field(
        "",
        description=(
            "Address the customer profile endpoint (/customers/{id}, personal data) binds to "
            "when profile_port is set; empty: web_host."
        ),
    )
    profile_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description=(
            "Port of a web server of its own for the customer profile endpoint; unset: it is "
            "served on web_port with /metrics."
        ),
    )
    parent_pid: int = Field(
        0,
        ge=0,
        description=(
            "The worker stops when the process with this id is gone (a supervisor such as "
            "`anomon demo` that must not leave a worker behind); 0: no parent watched."
        ),
    )
    commit_interval_ms: int | None = Field(
        None,
        ge=0,
        le=60_000,
        description=(
            "Least time between two commits of the worker (changed states to the changelog, "
            "then the input offsets; or one transaction). Batches handled meanwhile are "
            "committed together and a customer changed by several is written once. "
            "Alerts go out as soon as their batch is handled (at least once) or at the "
            "commit (exactly once: a `read_committed` reader sees them up to this much later). "
            "Unset: 5000 at least once (a restarted worker reads up to about 5 s of records "
            "again; Kafka Streams' own is 30 s), 100 exactly once, as Kafka Streams shortens "
            "its own under exactly once."
        ),
    )
    commit_encode_slice_ms: float = Field(
        2.0,
        ge=0,
        le=1_000,
        description=(
            "At least once: a commit encodes its changed states in slices of about this "
            "many milliseconds, each followed by a pause as long, in which the worker "
            "handles records (their alerts are acknowledged before the states are "
            "written). 0: in one go, during which no record is handled. Exactly once "
            "always encodes in one go."
        ),
    )
    background_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description=(
            "While records flow, the sweep and the sweep index rebuild take at most this "
            "share of the worker's loop: a chunk of them is followed by at least "
            "(1 / share - 1) times as long for records. 1: a chunk after every batch. "
            "When no record comes they run at once."
        ),
    )
    gc_freeze_interval_s: float = Field(
        1.0,
        ge=0,
        le=3_600,
        description=(
            "Seconds between two freezes of everything alive out of the garbage collector's "
            "way (gc.freeze): a collection then scans only what the last interval made, "
            "not the states (at 30,000 customers it paused the worker for up to 0.3 s). "
            "A reference cycle that becomes garbage once frozen is never collected "
            "(anomon_gc_frozen_objects shows it). 0: off."
        ),
    )
    state_cache_customers: int = Field(
        200_000,
        ge=0,
        description=(
            "Most customer states a worker keeps decoded in memory; past it, after each "
            "commit, the least recently changed are dropped (RocksDB store: read again from "
            "disk on their next event) or kept only encoded (memory store). 0: no bound."
        ),
    )
    batch_max_records: int = Field(
        1000,
        ge=1,
        description=(
            "Most input records the worker fetches and handles as one batch (batches are "
            "committed together, at most once per commit_interval_ms)."
        ),
    )
    fetch_wait_ms: int = Field(
        5,
        ge=0,
        le=10_000,
        description=(
            "Longest a fetch of input records waits at the broker for fetch_min_bytes to "
            "arrive: added to an event's latency at low rates (at any rate on a broker that "
            "answers only at the deadline, such as Tansu). While idle: fetch_idle_wait_ms."
        ),
    )
    fetch_min_bytes: int = Field(
        64 * 1024,
        ge=1,
        description=(
            "Bytes of input records a fetch waits for (at most fetch_wait_ms). Without "
            "a minimum, a trickle of records makes one fetch per few records and the "
            "broker spends a core on them."
        ),
    )
    fetch_idle_wait_ms: int = Field(
        500,
        ge=0,
        le=10_000,
        description=(
            "Once no record has come for a second, a fetch waits up to this long for a "
            "single byte instead (the broker answers it as soon as a record arrives): an "
            "idle worker asks its broker twice a second, not every fetch_wait_ms. 0: always "
            "fetch_wait_ms and fetch_min_bytes."
        ),
    )
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none",
        description=(
            "Compression of the record batches the worker writes (changelog, alerts, dead "
            "letters, late records). Input records may be compressed either way."
        ),
    )

    @property
    def commit_interval_s(self) -> float:
        """The commit interval in seconds, the guarantee's default if unset.

        >>> Settings(processing_guarantee="exactly_once").commit_interval_s
        0.1
        >>> Settings(processing_guarantee="at_least_once").commit_interval_s
        5.0
        >>> Settings(commit_interval_ms=250).commit_interval_s
        0.25
        """
        if self.commit_interval_ms is not None:
            return self.commit_interval_ms / 1000
        return 0.1 if self.processing_guarantee == "exactly_once" else 5.0

    @property
    def detectors_file(self) -> Path:
        """The detector configuration: ``detectors.toml`` in ``models_dir``.

        >>> Settings(models_dir=Path("models")).detectors_file.as_posix()
        'models/detectors.toml'
        """
        return self.models_dir / DETECTORS_FILE
