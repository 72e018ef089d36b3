"""Readable structured logs: a message followed by ``key=value`` pairs.

Customer ids never appear in logs in clear: :func:`customer_ref` gives a short
pseudonym, a keyed hash (BLAKE2b) of the id, to correlate lines without
revealing who the customer is. The key is ``ANOMON_PSEUDONYM_KEY``
(:func:`set_pseudonym_key`); without one, each process draws a random key, so
nobody can link a reference to a customer by hashing candidate ids, but
references differ between processes and restarts. With the key, ``anomon
pseudonym CUSTOMER_ID`` gives the reference to search the logs for.

>>> kv(reason="invalid_json", partition=3, detail="expecting value")
'reason=invalid_json partition=3 detail="expecting value"'
>>> len(customer_ref("c-123"))
12
>>> set_pseudonym_key("k1"); a = customer_ref("c-123"); set_pseudonym_key("k2")
>>> a != customer_ref("c-123")
True

With ``ANOMON_LOG_FORMAT=json`` every line, the libraries' included (the
handler is the root logger's), is one JSON object: ``ts``, ``level``,
``logger``, ``message``, the ``key=value`` fields of anomon's messages as
``fields``, and ``exc`` for a traceback.

>>> record = logging.LogRecord("anomon.x", logging.INFO, "f.py", 1,
...     "first record %s", (kv(partition=3, detail="a b"),), None)
>>> line = orjson.loads(JsonFormatter().format(record))
>>> line["message"], line["fields"], line["level"]
('first record', {'partition': '3', 'detail': 'a b'}, 'INFO')
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shlex
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s | %(message)s"
_LIBRARY_LOGGERS = ("faust", "mode", "aiokafka", "aiohttp", "kafka")


_KEY_BYTES = 32
_pseudonym_key = secrets.token_bytes(_KEY_BYTES)


def set_pseudonym_key(key: str) -> None:
    """Use ``key`` for :func:`customer_ref` from now on (empty: a new random key)."""
    global _pseudonym_key
    raw = key.encode("utf-8") if key else secrets.token_bytes(_KEY_BYTES)
    # BLAKE2b takes keys of up to 64 bytes: hash longer ones down
    _pseudonym_key = raw if len(raw) <= 64 else hashlib.blake2b(raw).digest()


def customer_ref(customer_id: str) -> str:
    """A 12-hex-digit keyed pseudonym of a customer id, safe to log."""
    return hashlib.blake2b(customer_id.encode("utf-8", "replace"), digest_size=6,
                           key=_pseudonym_key, person=b"anomon-log").hexdigest()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, list | tuple | set | frozenset):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def kv(**fields: Any) -> str:
    """``key=value`` pairs in the given order; values with spaces are quoted."""
    return " ".join(f"{key}={_fmt(value)}" for key, value in fields.items() if value is not None)


def split_fields(message: str) -> tuple[str, dict[str, str]]:
    """``"text k=v k2=\"a b\""`` -> (``"text"``, ``{"k": "v", "k2": "a b"}``); else (message, {}).

    >>> split_fields('worker stopped exit_code=0 in=5')
    ('worker stopped', {'exit_code': '0', 'in': '5'})
    >>> split_fields("Joined group 'anomon' (generation 3)")
    ("Joined group 'anomon' (generation 3)", {})
    """
    try:
        words = shlex.split(message, posix=True)
    except ValueError:
        return message, {}
    fields: dict[str, str] = {}
    for word in reversed(words):
        key, sep, value = word.partition("=")
        if not sep or not key.isidentifier() or key in fields:
            break
        fields[key] = value
    if not fields:
        return message, {}
    text = " ".join(words[:len(words) - len(fields)])
    if text and not message.startswith(text):
        return message, {}  # the text part had quoting of its own: keep the line whole
    return text, dict(reversed(fields.items()))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        message, fields = split_fields(record.getMessage())
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if fields:
            line["fields"] = fields
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def _formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(LOG_FORMAT)


def configure_logging(level: str = "INFO", stream: Any = None, fmt: str | None = None) -> None:
    """Configure the root logger once (a no-op if the application already did).

    ``fmt``: ``text`` or ``json``; ``None`` reads ``ANOMON_LOG_FORMAT`` (default
    ``text``). Library loggers (Faust, aiokafka...) stay at WARNING unless
    ``level`` is DEBUG; their lines go through the same handler and format.
    """
    fmt = (fmt or os.environ.get("ANOMON_LOG_FORMAT", "text")).lower()
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root = logging.getLogger()
    if not root.handlers:
        stream_handler = logging.StreamHandler(stream or sys.stderr)
        stream_handler.setFormatter(_formatter(fmt))
        root.addHandler(stream_handler)
    elif fmt == "json":
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())
    root.setLevel(numeric)
    logging.getLogger("anomon").setLevel(numeric)
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
