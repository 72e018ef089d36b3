"""Per-customer state: bounded, serialisable, and free of Kafka.

One :class:`CustomerState` holds everything the detectors need about one
customer: rolling windows of recent purchases, refunds and complaints (each list
capped in length and age), the customer's own rhythm and typical order size as
exponentially weighted statistics of log values, payment behaviour, the last NPS
answer, recent event ids for de-duplication, alert episodes and pending churn
snapshots. Its size is bounded whatever the customer does.

>>> s = CustomerState.new("c1", now=0.0)
>>> CustomerState.from_bytes(s.to_bytes()) == s
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from operator import attrgetter
from typing import Any

import orjson

from anomon.core.errors import StateVersionError
from anomon.core.seen import listed, packed

STATE_VERSION = 1

MAX_PURCHASES = 48
MAX_REFUNDS = 24
MAX_COMPLAINTS = 16
MAX_SEEN_IDS = 24
MAX_PENDING = 4
MAX_OWED = 12


@dataclass(slots=True)
class Episode:
    """Alert episode bookkeeping for one alert kind of one customer."""

    number: int = 0
    open: bool = False
    opened_ts: float = 0.0
    closed_ts: float = -1e18
    tag: str = ""


@dataclass(slots=True)
class CustomerState:
    """Everything anomon keeps about one customer (see module docstring)."""

    customer_id: str
    version: int = STATE_VERSION
    partition: int = -1
    first_ts: float = 0.0
    last_ts: float = 0.0
    # purchases: lifetime counters, recent window, rhythm and order size
    n_purchases: int = 0
    spend_total: float = 0.0
    last_purchase_ts: float | None = None
    purchases: list[list[float]] = field(default_factory=list)  # [ts, amount], <= 365 d
    value_decayed: float = 0.0  # spend with a 180-day half-life
    value_ts: float = 0.0
    gap_n: int = 0
    gap_mu: float = 0.0  # EW mean of log(gap days)
    gap_var: float = 0.0
    last_gap_days: float = 0.0  # the most recent completed inter-purchase gap
    gap_ts: float = 0.0  # event time at which that gap ended
    amt_n: int = 0
    amt_mu: float = 0.0  # EW mean of log1p(amount)
    amt_var: float = 0.0
    # activity: purchases, visits, logins, complaints, merged into bursts
    last_visit_ts: float | None = None  # the last activity of any kind
    visit_n: int = 0
    visit_mu: float = 0.0  # EW mean of log(days between activity bursts)
    visit_var: float = 0.0
    act_gap_days: float = 0.0  # the most recent completed gap between bursts
    act_gap_ts: float = 0.0
    # drop-off decline CUSUMs: [purchases, its reference rate, activity, its reference rate,
    # purchase gaps and activity gaps seen by the CUSUMs]
    decline: list[float] = field(default_factory=lambda: [0.0] * 6)
    # refunds, complaints, surveys, payments
    n_refunds: int = 0
    refund_total: float = 0.0
    refunds: list[list[float]] = field(default_factory=list)  # [ts, amount], <= 90 d
    n_complaints: int = 0
    complaints: list[list[float]] = field(default_factory=list)  # [ts, severity], <= 90 d
    nps: int | None = None
    nps_ts: float | None = None
    n_payments: int = 0
    n_bad_payments: int = 0
    pay_streak: int = 0  # consecutive overdue or failed payments
    pay_max_overdue: int = 0
    owed: list[list[Any]] = field(default_factory=list)  # unsettled [ts, amount, invoice, days]
    # bookkeeping
    seen_ids: str = ""  # recent event ids, one string (anomon.core.seen); stored as a list
    episodes: dict[str, Episode] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)  # kind -> recent event ids
    next_check_ts: float = 0.0
    pending: list[list[Any]] = field(default_factory=list)  # churn snapshots [ts, features]
    snapshot_ts: float = 0.0
    # when next_check_ts is only a lower bound (see Engine.sweep): the event time it was
    # scheduled at, to schedule from again; None when it is exact
    bound_from_ts: float | None = None
    # the purchase window's gaps between baskets and their total in seconds (see
    # anomon.core.features.basket_gaps), kept up to date as orders come and go;
    # basket_n -1: not counted yet (a state stored before these fields)
    basket_n: int = -1
    basket_s: float = 0.0
    # and its orders merged into a basket (less than MIN_GAP_DAYS after the one before) and
    # the sum of the basket gaps' logs (days); basket_m -1: not counted yet
    basket_m: int = -1
    basket_l: float = 0.0
    # not stored: the purchase window as last encoded, with the n_purchases it was encoded
    # at (only add_purchase changes the window, and it counts the order): see to_bytes.
    # Encode a state with to_bytes or to_dict: orjson's own dataclass form would include it
    encoded_window: tuple[int, bytes] | None = field(
        default=None, init=False, repr=False, compare=False, metadata={"stored": False})

    @classmethod
    def new(cls, customer_id: str, now: float, partition: int = -1) -> CustomerState:
        """A customer seen for the first time at event time ``now``."""
        return cls(customer_id=customer_id, partition=partition, first_ts=now, last_ts=now,
                   value_ts=now, snapshot_ts=now)

    def episode(self, kind: str) -> Episode:
        """The episode record of ``kind``, created on first use."""
        ep = self.episodes.get(kind)
        if ep is None:
            ep = self.episodes[kind] = Episode()
        return ep

    def is_open(self, kind: str) -> bool:
        """Whether an alert episode of ``kind`` is open (fired, not yet resolved)."""
        ep = self.episodes.get(kind)
        return ep is not None and ep.open

    def remember(self, kind: str, event_id: str, keep: int = 8) -> None:
        """Keep ``event_id`` as evidence for a possible ``kind`` alert."""
        ids = self.evidence.setdefault(kind, [])
        ids.append(event_id)
        if len(ids) > keep:
            del ids[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``seen_ids`` as a list, as stored)."""
        data = asdict(self)
        data["seen_ids"] = listed(self.seen_ids)
        del data["encoded_window"]
        return data

    def to_bytes(self) -> bytes:
        """Compact JSON bytes (the changelog value): a JSON array of the field values.

        The values go in field order (episodes as ``[number, open, opened_ts,
        closed_ts, tag]``), without the field names, which took 40% of an object's
        bytes: a million states restored cost that much less memory and reading.
        A field added later goes at the end, so older, shorter arrays still load.
        :meth:`from_bytes` also reads the earlier JSON-object form. Copied to an
        exact-size object: orjson's own result keeps its whole output buffer
        allocated (about 8 KiB), which a table of a million states would pay a
        million times.

        The purchase window, up to 48 small lists of two floats, is kept encoded
        until the next order changes it (``encoded_window``): a state changed for a
        while has its floats scattered in memory, and reading them cost about 6 of
        the 14 us its encoding took; most events between two commits are visits.
        """
        values = list(_VALUES(self))
        window = self.encoded_window
        if window is None or window[0] != self.n_purchases:
            window = (self.n_purchases, bytes(memoryview(orjson.dumps(self.purchases))))
            self.encoded_window = window
        values[_PURCHASES_AT] = orjson.Fragment(window[1])
        values[_SEEN_AT] = listed(self.seen_ids)
        if self.episodes:
            values[_EPISODES_AT] = {k: [e.number, e.open, e.opened_ts, e.closed_ts, e.tag]
                                    for k, e in self.episodes.items()}
        return bytes(memoryview(orjson.dumps(values)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of :meth:`to_dict`; raises :class:`StateVersionError` on another version."""
        _check_version(data.get("version"))
        # positional arguments in field order: a third of the cost of 45 keywords
        values = []
        get = data.get
        for name, default, factory in _FIELDS:
            value = get(name, _MISSING)
            values.append(_default(name, default, factory) if value is _MISSING else value)
        values[_SEEN_AT] = packed(values[_SEEN_AT])
        state = cls(*values)
        episodes = get("episodes")
        if episodes:
            state.episodes = {k: Episode(**v) for k, v in episodes.items()}
        return state

    @classmethod
    def from_bytes(cls, raw: bytes) -> CustomerState:
        """Inverse of :meth:`to_bytes` (and reads the JSON-object form of earlier releases)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise StateVersionError(f"customer state is not valid JSON: {err}") from None
        if isinstance(data, list):
            return cls._from_values(data)
        if not isinstance(data, dict):
            raise StateVersionError("customer state is neither a JSON array nor an object")
        return cls.from_dict(data)

    @classmethod
    def _from_values(cls, values: list[Any]) -> CustomerState:
        _check_version(values[1] if len(values) > 1 else None)
        if len(values) > len(_FIELDS):
            raise StateVersionError(f"customer state of {len(values)} fields, expected at most "
                                    f"{len(_FIELDS)} (written by a newer release)")
        for name, default, factory in _FIELDS[len(values):]:  # fields added since it was written
            values.append(_default(name, default, factory))
        values[_SEEN_AT] = packed(values[_SEEN_AT])
        episodes = values[_EPISODES_AT]
        values[_EPISODES_AT] = {k: Episode(*v) for k, v in episodes.items()} if episodes else {}
        return cls(*values)


_MISSING: Any = object()
_FIELDS: list[tuple[str, Any, Callable[[], Any] | None]] = [
    (f.name, f.default, None if f.default_factory is MISSING else f.default_factory)
    for f in fields(CustomerState) if f.metadata.get("stored", True)
]
_VALUES = attrgetter(*(name for name, _, _ in _FIELDS))
_EPISODES_AT = [name for name, _, _ in _FIELDS].index("episodes")
_SEEN_AT = [name for name, _, _ in _FIELDS].index("seen_ids")
_PURCHASES_AT = [name for name, _, _ in _FIELDS].index("purchases")


def _check_version(version: Any) -> None:
    if version != STATE_VERSION:
        raise StateVersionError(f"customer state version {version!r}, expected {STATE_VERSION}")


def _default(name: str, default: Any, factory: Callable[[], Any] | None) -> Any:
    """The value of a field a stored state lacks (a required one: the state is unreadable)."""
    if factory is not None:
        return factory()
    if default is MISSING:
        raise StateVersionError(f"customer state without {name}")
    return default
