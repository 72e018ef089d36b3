"""``anomon dlq``: list dead-lettered records by reason, and re-drive chosen ones.

``anomon dlq list`` reads the dead-letter topic from its start to its current
end and prints, per record, where it sits in the DLQ, its reason and origin
(topic, partition, offset) and the decoder's detail, then the count by reason.
The original value (raw customer data) is shown only with ``--show-raw``.

``anomon dlq redrive`` sends the chosen records' original key, value and
headers back to the input topic, once their producer is fixed (or the limit
that rejected them raised), with an ``anomon.redriven.from`` header naming the
DLQ record. Records are chosen by ``--reason`` (repeatable) and/or a DLQ
``--partition`` with ``--from-offset``/``--to-offset``; one of them is
required. Records whose value was cut (over 256 KiB) or empty cannot be
re-driven and are counted as skipped. Re-driving twice is harmless for events
the worker already applied: it recognises their ``event_id`` (``duplicate``).

>>> import dataclasses
>>> sel = Selection(reasons={"too_large"}, partition=0, from_offset=5, to_offset=9)
>>> rec = DeadRecord(partition=0, offset=7, reason="too_large", detail="", origin="t/0@1",
...                  key=b"c1", raw=b"{}", truncated=False, headers=[])
>>> sel.matches(rec), sel.matches(dataclasses.replace(rec, offset=10))
(True, False)
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from anomon.exits import EXIT_FAIL, EXIT_OK, error_text, usage
from anomon.exits import report as fail
from anomon.kafka.dead_letter import HEADER_PREFIX
from anomon.kafka.offsets import log_offsets
from anomon.kafka.security import SecurityConfigError, kafka_auth
from anomon.kafka.topics import bootstrap_servers
from anomon.settings import Settings

log = logging.getLogger("anomon.ops.dlq")

REDRIVEN_HEADER = "anomon.redriven.from"


@dataclass(slots=True)
class DeadRecord:
    """One dead-letter record: where it is, why it is there, and the original."""

    partition: int
    offset: int
    reason: str
    detail: str
    origin: str  # topic/partition@offset of the rejected input record
    key: bytes | None
    raw: bytes | None
    truncated: bool
    headers: list[tuple[str, bytes]]

    @classmethod
    def parse(cls, partition: int, offset: int, key: bytes | None, value: bytes | None,
              headers: Any) -> DeadRecord:
        """A record as :func:`anomon.kafka.dead_letter.build_dead_letter` wrote it."""
        try:
            body = orjson.loads(value or b"{}")
        except orjson.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        raw_text = body.get("raw")
        raw: bytes | None = None
        if isinstance(raw_text, str):
            raw = base64.b64decode(raw_text) if body.get("raw_base64") else raw_text.encode()
        original = [(str(k), bytes(v or b"")) for k, v in headers or ()
                    if not str(k).startswith(HEADER_PREFIX)]
        return cls(partition=partition, offset=offset,
                   reason=str(body.get("reason", "unreadable")),
                   detail=str(body.get("detail", "")),
                   origin=f"{body.get('topic')}/{body.get('partition')}@{body.get('offset')}",
                   key=key, raw=raw, truncated=bool(body.get("raw_truncated")),
                   headers=original)

    @property
    def redrivable(self) -> bool:
        return bool(self.raw) and not self.truncated


@dataclass(slots=True)
class Selection:
    """Which dead-letter records a command acts on (all of them when nothing is set)."""

    reasons: set[str] = field(default_factory=set)
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    @property
    def empty(self) -> bool:
        return not self.reasons and self.partition is None and self.from_offset is None \
            and self.to_offset is None

    def matches(self, record: DeadRecord) -> bool:
        if self.reasons and record.reason not in self.reasons:
            return False
        if self.partition is not None and record.partition != self.partition:
            return False
        if self.from_offset is not None and record.offset < self.from_offset:
            return False
        return self.to_offset is None or record.offset <= self.to_offset


async def dead_letters(settings: Settings, timeout_s: float = 30.0
                       ) -> AsyncIterator[DeadRecord]:
    """Every record of the dead-letter topic, from its start to its end as of now."""
    auth = kafka_auth(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings.broker),
                                group_id=None, enable_auto_commit=False,
                                client_id=f"{settings.app_id}-dlq", **auth)
    try:
        await consumer.start()
        parts = consumer.partitions_for_topic(settings.dlq_topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(settings.dlq_topic)
        if not parts:
            return
        tps = [TopicPartition(settings.dlq_topic, p) for p in sorted(parts)]
        first, ends = await log_offsets(bootstrap_servers(settings.broker), tps, **auth)
        todo = [tp for tp in tps if ends[tp] > first[tp]]
        if not todo:
            return
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, first[tp])
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{settings.dlq_topic} not read to its end in {timeout_s} s")
            batches = await consumer.getmany(*todo, timeout_ms=200)
            for tp, records in batches.items():
                for r in records:
                    if r.offset < ends[tp]:
                        yield DeadRecord.parse(r.partition, r.offset, r.key, r.value, r.headers)
            todo = [tp for tp in todo if await consumer.position(tp) < ends[tp]]
    finally:
        await consumer.stop()


def describe(record: DeadRecord, show_raw: bool = False) -> str:
    """One line per record (the raw value only when asked for)."""
    line = (f"{record.partition}:{record.offset} {record.reason} origin={record.origin} "
            f"{record.detail[:200]}")
    if show_raw and record.raw is not None:
        cut = " (cut)" if record.truncated else ""
        line += f" raw{cut}={record.raw[:500]!r}"
    return line


async def list_dead_letters(settings: Settings, selection: Selection, out: TextIO,
                            show_raw: bool = False, limit: int | None = None) -> Counter[str]:
    """Print the chosen records and the count by reason; returns the counts."""
    counts: Counter[str] = Counter()
    async for record in dead_letters(settings):
        if not selection.matches(record):
            continue
        counts[record.reason] += 1
        if limit is None or sum(counts.values()) <= limit:
            print(describe(record, show_raw), file=out)
    print(f"{sum(counts.values())} dead-lettered record(s) in {settings.dlq_topic}", file=out)
    for reason, n in counts.most_common():
        print(f"  {reason}: {n}", file=out)
    return counts


@dataclass(slots=True)
class RedriveReport:
    """What a re-drive did."""

    sent: int = 0
    skipped: int = 0
    matched: int = 0


async def redrive(settings: Settings, selection: Selection, to_topic: str,
                  dry_run: bool = False, note: Callable[[str], None] | None = None
                  ) -> RedriveReport:
    """Send the chosen records' originals to ``to_topic``; returns the counts."""
    report = RedriveReport()
    producer = None
    if not dry_run:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings.broker),
                                    client_id=f"{settings.app_id}-redrive", acks="all",
                                    max_request_size=1024 * 1024, **kafka_auth(settings))
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
    try:
        futures = []
        async for record in dead_letters(settings):
            if not selection.matches(record):
                continue
            report.matched += 1
            if not record.redrivable:
                report.skipped += 1
                if note is not None:
                    why = "value cut at 256 KiB" if record.truncated else "no value"
                    note(f"skipped {record.partition}:{record.offset} ({why})")
                continue
            if producer is not None:
                headers = [*record.headers, (REDRIVEN_HEADER, (
                    f"{settings.dlq_topic}/{record.partition}@{record.offset}").encode())]
                futures.append(await producer.send(to_topic, value=record.raw, key=record.key,
                                                   headers=headers))
            report.sent += 1
        await asyncio.gather(*futures)
    finally:
        if producer is not None:
            await producer.stop()
    return report


def run_dlq(settings: Settings, action: str, selection: Selection, *, out: TextIO,
            err: TextIO, show_raw: bool = False, limit: int | None = None,
            to_topic: str | None = None, dry_run: bool = False) -> int:
    """The ``anomon dlq`` command (results to ``out``, problems to ``err``); the exit code."""
    try:
        if action == "list":
            asyncio.run(list_dead_letters(settings, selection, out, show_raw, limit))
            return EXIT_OK
        if selection.empty:
            return usage("dlq redrive", "no records chosen", fix="choose them with --reason "
                         "and/or --partition with --from-offset/--to-offset", err=err)
        target = to_topic or settings.input_topic
        report = asyncio.run(redrive(settings, selection, target, dry_run,
                                     note=lambda text: print(text, file=err)))
    except (KafkaError, OSError, TimeoutError, SecurityConfigError) as failure:
        return fail(f"dlq {action}", f"{error_text(failure)} (broker "
                    f"{bootstrap_servers(settings.broker)})",
                    fix="is it running? pass --broker", code=EXIT_FAIL, err=err)
    verb = "would re-drive" if dry_run else "re-drove"
    print(f"{verb} {report.sent} of {report.matched} chosen record(s) to {target}"
          f"{f'; {report.skipped} skipped' if report.skipped else ''}", file=out)
    return EXIT_OK
