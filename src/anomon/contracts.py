"""The published stream contracts under ``streams/``: JSON Schemas and topic specs.

They are generated from the code (``anomon schema``); a test fails when the
committed files and the code drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from anomon.core.alerts import alert_json_schema
from anomon.core.events import event_json_schema
from anomon.settings import Settings

SCHEMA_FILES = {
    "schemas/customer-event.schema.json": event_json_schema,
    "schemas/customer-alert.schema.json": alert_json_schema,
}


def topic_specs(settings: Settings | None = None) -> dict[str, Any]:
    """Names, partitions, keys, values and configs of every topic anomon uses."""
    s = settings or Settings()
    week_ms = 7 * 24 * 3600 * 1000
    return {
        "topics": [
            {"name": s.input_topic, "role": "input", "partitions": s.partitions,
             "key": "customer_id (UTF-8)", "value": "schemas/customer-event.schema.json",
             "configs": {"retention.ms": str(week_ms)}},
            {"name": s.alerts_topic, "role": "output", "partitions": s.partitions,
             "key": "customer_id (UTF-8)", "value": "schemas/customer-alert.schema.json",
             "configs": {"retention.ms": str(4 * week_ms)}},
            {"name": s.dlq_topic, "role": "dead letters", "partitions": s.partitions,
             "key": "the original key",
             "value": "JSON {reason, detail, raw, topic, partition, offset}; headers anomon.dlq.*",
             "configs": {"retention.ms": str(2 * week_ms)}},
            {"name": s.late_topic, "role": "events later than the lateness bound",
             "partitions": s.partitions, "key": "the original key",
             "value": "the original event bytes", "configs": {"retention.ms": str(2 * week_ms)}},
            {"name": s.erasure_topic, "role": "erasure requests (anomon erase)",
             "partitions": s.partitions, "key": "customer_id (UTF-8)",
             "value": "JSON {customer_id, requested_at}; one record on every partition",
             "configs": {"retention.ms": str(week_ms)}},
            {"name": f"{s.app_id}-customers-changelog", "role": "table changelog",
             "partitions": s.partitions, "key": "customer_id", "value": "customer state (JSON)",
             "configs": {"cleanup.policy": "compact"}},
        ]
    }


def rendered() -> dict[str, bytes]:
    """Every contract file, relative to ``streams/``, as the bytes it should hold."""
    opts = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    files = {name: orjson.dumps(make(), option=opts) for name, make in SCHEMA_FILES.items()}
    files["topics.json"] = orjson.dumps(topic_specs(Settings.model_construct()), option=opts)
    return files


def write(streams_dir: Path) -> list[Path]:
    """Write the contract files; return the paths written."""
    out = []
    for name, data in rendered().items():
        path = streams_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(path)
    return out


def drifted(streams_dir: Path) -> list[str]:
    """Names of contract files that differ from what the code generates."""
    return [
        name
        for name, data in rendered().items()
        if not (streams_dir / name).exists() or (streams_dir / name).read_bytes() != data
    ]
