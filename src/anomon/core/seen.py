"""A customer's recent event ids as one string: the duplicate check reads one object.

Checking an event id against a list of 24 strings compares 24 objects spread
over the heap, and on a large table each comparison is a cache miss: it took
about a tenth of the engine's time. Here the ids are one string, each one
between separators (``" e1 e2 e3 "``), and the check is one substring search.
A separator or escape character inside an id is escaped first, so an id can
only match a whole entry. The stored form (:mod:`anomon.core.state`) is still
the list of ids: :func:`listed` and :func:`packed` convert.

>>> ids = ""
>>> for event_id in ("e1", "e 2", "e3"):
...     ids = remember(ids, key(event_id), keep=2)
>>> has(ids, key("e 2")), has(ids, key("e1")), has(ids, key("e"))
(True, False, False)
>>> listed(ids)
['e 2', 'e3']
>>> packed(listed(ids)) == ids
True
"""

from __future__ import annotations

import re

SEP = " "
ESC = "\x1e"
_ESCAPED = re.compile(f"{ESC}(.)", re.DOTALL)


def key(event_id: str) -> str:
    """``event_id`` as it is held: separators and escapes inside it escaped."""
    if SEP in event_id or ESC in event_id:
        return event_id.replace(ESC, ESC + ESC).replace(SEP, ESC + "_")
    return event_id


def has(ids: str, event_key: str) -> bool:
    """Whether ``ids`` holds the id whose :func:`key` is ``event_key``."""
    return f"{SEP}{event_key}{SEP}" in ids


def remember(ids: str, event_key: str, keep: int) -> str:
    """``ids`` with ``event_key`` added, and the oldest dropped beyond ``keep``."""
    ids = f"{ids or SEP}{event_key}{SEP}"
    if ids.count(SEP) > keep + 1:
        ids = ids[ids.index(SEP, 1):]
    return ids


def listed(ids: str) -> list[str]:
    """The ids, oldest first, as they were given."""
    if not ids:
        return []
    parts = ids[1:-1].split(SEP)
    if ESC in ids:
        return [_ESCAPED.sub(lambda m: ESC if m[1] == ESC else SEP, p) for p in parts]
    return parts


def packed(event_ids: list[str]) -> str:
    """The string form of a list of ids (inverse of :func:`listed`)."""
    if not event_ids:
        return ""
    joined = SEP.join(event_ids)
    if ESC in joined or joined.count(SEP) != len(event_ids) - 1:
        joined = SEP.join(key(i) for i in event_ids)
    return f"{SEP}{joined}{SEP}"
