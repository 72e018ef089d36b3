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
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sys
from typing import Any

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


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Configure the root logger once (a no-op if the application already did).

    Library loggers (Faust, aiokafka...) stay at WARNING unless ``level`` is DEBUG.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(numeric)
    logging.getLogger("anomon").setLevel(numeric)
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
