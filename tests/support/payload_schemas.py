"""The documented schemas of the on-call tools' APIs, to check what ``anomon forward`` posts.

``tests/schemas/`` holds JSON Schemas transcribed from the tools' documentation:
Alertmanager's OpenAPI v2 ``postableAlerts`` (``POST /api/v2/alerts``) and
PagerDuty's Events API v2 event (``POST /v2/enqueue``). :func:`problems` lists
where a body breaks its schema, formats included (``date-time`` as RFC 3339,
``uri`` absolute), checked here without optional packages.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
ALERTMANAGER = "alertmanager-postable-alerts"
PAGERDUTY = "pagerduty-events-v2"

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
formats = FormatChecker(formats=())


@formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return True


@formats.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    if not (parts.scheme and (parts.netloc or parts.path)):
        raise ValueError(f"{value!r} is not an absolute URI")
    return True


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=formats)


def problems(name: str, body: Any) -> list[str]:
    """Where ``body`` breaks schema ``name``: one line per error (empty: valid)."""
    return [f"{'/'.join(str(p) for p in err.absolute_path) or '(body)'}: {err.message}"
            for err in validator(name).iter_errors(body)]
