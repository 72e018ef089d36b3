"""``anomon replay --jobs N``: one file replayed by N engines in N processes, as N workers would.

Each process reads the whole file but keeps only the lines of its own customers
(a hash of the customer id picks the shard, as a key picks a partition), and
runs them through an engine of its own, exactly as :class:`~anomon.replay.Replayer`
does: sorted by event time, swept every ``--sweep-hours`` of event time. The
final sweep of every shard is at the same time, the end of the whole file (or
``--until``). A line without a readable customer id goes to the first shard,
whose decoder rejects it with its reason.

The result is what N workers, each owning a share of the customers, would
raise: each engine learns its shared models (the population baseline, the
churn model, the order-size model) from its own customers, so the alerts are
close to a single engine's but not the same. ``--jobs 1`` (the default) is one
engine, as one worker owning every partition.

The shards write their alerts and rejected lines to files of their own; the
parent merges the alerts in event-time order and sums the summaries, so every
line is still accounted for. On Ctrl-C, SIGTERM or an error every shard is
stopped before the command returns; should the parent be killed outright, the
kernel stops them (Linux).

>>> shard_of(b'{"customer_id": "c1", "type": "survey"}', 1)
0
>>> shard_of(b'not json', 4), shard_of(b'{"customer_id": 7}', 4)
(0, 0)
"""

from __future__ import annotations

import contextlib
import heapq
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import IO, Any, cast

import orjson

from anomon.core.detection_config import DetectionConfig
from anomon.core.engine import Engine
from anomon.core.timeutil import from_rfc3339
from anomon.ops.embedded_broker import die_with_parent
from anomon.replay import Replayer, ReplaySummary, file_writers, read_lines

STOP_S = 5.0  # a shard asked to stop gets this long before it is killed


def shard_of(raw: bytes, shards: int) -> int:
    """The shard of a line: a hash of its customer id; 0 when it has none that can be read."""
    if shards == 1:
        return 0
    try:
        customer = orjson.loads(raw).get("customer_id")
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    if not isinstance(customer, str):
        return 0
    return zlib.crc32(customer.encode()) % shards


@dataclass(frozen=True)
class ShardJob:
    """What one shard needs: the input, its number, and the replay's settings."""

    events: Path
    shard: int
    shards: int
    workdir: Path
    config: DetectionConfig
    lateness_bound_s: float
    sweep_every_s: float
    sort: bool
    until: float | None

    @property
    def alerts(self) -> Path:
        return self.workdir / f"alerts-{self.shard}.jsonl"

    @property
    def rejected(self) -> Path:
        return self.workdir / f"rejected-{self.shard}.jsonl"


def _own_lines(job: ShardJob) -> Iterator[bytes]:
    for raw in read_lines(job.events):
        if shard_of(raw, job.shards) == job.shard:
            yield raw


#: Blocked while a shard is started: a shard forked with the parent's handler would
#: raise :class:`_Stop` in its start-up code (a traceback) if stopped before it
#: installed its own.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _run_shard(job: ShardJob, conn: Connection, parent_pid: int) -> None:
    """A shard's process: replay its lines, agree on the end with the others, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the shards
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked since the fork
    ask = die_with_parent(parent_pid)
    if ask is not None:
        ask()

    def agreed_end(last: float | None) -> float | None:
        conn.send(("last", last))
        answer: float | None = conn.recv()
        return answer

    try:
        with job.alerts.open("wb") as out, job.rejected.open("wb") as dlq:
            on_alert, on_reject = file_writers(out, dlq)
            replayer = Replayer(engine=Engine(job.config, job.lateness_bound_s),
                                sweep_every_s=job.sweep_every_s, on_alert=on_alert,
                                on_reject=on_reject)
            summary = replayer.run(_own_lines(job), sort=job.sort, until=job.until,
                                   end=agreed_end)
        conn.send(("done", summary.to_dict()))
    except Exception as err:  # reported by the parent in one line
        conn.send(("failed", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


class ShardFailed(RuntimeError):
    """A shard stopped with an error, or died."""


def _merge_alerts(parts: list[Path], out: IO[bytes]) -> None:
    """The shards' alert lines, each file in event-time order, merged in event-time order."""
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(part.open("rb")) for part in parts]
        keyed = [((from_rfc3339(orjson.loads(line)["ts"]), line) for line in f) for f in files]
        for _, line in heapq.merge(*keyed, key=lambda item: item[0]):
            out.write(line)


class _Stop(Exception):
    """SIGTERM or SIGHUP reached the parent."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run_sharded(
    events: Path,
    jobs: int,
    config: DetectionConfig,
    lateness_bound_s: float,
    out: IO[bytes],
    rejects: IO[bytes] | None,
    sweep_every_s: float,
    sort: bool = True,
    until: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplaySummary:
    """Replay ``events`` with ``jobs`` engines in as many processes; the summed summary.

    Once every shard has finished, their alerts go to ``out`` in event-time
    order and their rejected lines to ``rejects`` (shard by shard; dropped when
    it is ``None``), as :func:`~anomon.replay.file_writers` writes them.
    ``progress`` gets the number of shards done of ``jobs``. Raises
    :class:`ShardFailed` if a shard fails, and ``KeyboardInterrupt`` on SIGTERM
    or SIGHUP, once every shard is stopped.
    """
    started = time.perf_counter()
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    handlers = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    processes: list[Any] = []
    try:
        with tempfile.TemporaryDirectory(prefix="anomon-replay-") as tmp:
            shards = [ShardJob(events, i, jobs, Path(tmp), config, lateness_bound_s,
                               sweep_every_s, sort, until) for i in range(jobs)]
            conns = []
            for job in shards:
                mine, theirs = context.Pipe()
                process = context.Process(target=_run_shard, args=(job, theirs, os.getpid()),
                                          name=f"anomon-replay-{job.shard}", daemon=True)
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
                try:
                    process.start()
                finally:  # a signal that came meanwhile is delivered here
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                theirs.close()
                processes.append(process)
                conns.append(mine)
            total = _gather(conns, processes, progress)
            _merge_alerts([job.alerts for job in shards], out)
            if rejects is not None:
                for job in shards:
                    with job.rejected.open("rb") as fh:
                        shutil.copyfileobj(fh, rejects)
    except _Stop as stop:
        raise KeyboardInterrupt(str(stop)) from None
    finally:
        _stop(processes)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    total.seconds = time.perf_counter() - started
    return total


def _gather(conns: list[Connection], processes: list[Any],
            progress: Callable[[int, int], None] | None) -> ReplaySummary:
    """Wait for every shard: answer their question about the end, sum their summaries."""
    total = ReplaySummary()
    lasts: dict[int, float | None] = {}
    done: set[int] = set()
    while len(done) < len(conns):
        waiting = [c for i, c in enumerate(conns) if i not in done]
        for ready in multiprocessing.connection.wait(waiting, timeout=1.0):
            conn = cast(Connection, ready)
            i = conns.index(conn)
            try:
                what, value = conn.recv()
            except EOFError:
                raise ShardFailed(f"shard {i} stopped without a word (exit code "
                                  f"{processes[i].exitcode})") from None
            if what == "failed":
                raise ShardFailed(f"shard {i}: {value}")
            if what == "last":
                lasts[i] = value
                if len(lasts) == len(conns):
                    known = [t for t in lasts.values() if t is not None]
                    end = max(known) if known else None
                    for other in conns:
                        other.send(end)
            else:
                total.add(value)
                done.add(i)
                if progress is not None:
                    progress(len(done), len(conns))
        for i, process in enumerate(processes):
            if i not in done and not process.is_alive() and not conns[i].poll():
                raise ShardFailed(f"shard {i} died (exit code {process.exitcode})")
    return total


def _stop(processes: list[Any]) -> None:
    """Every shard still running: SIGTERM, then SIGKILL after ``STOP_S``; joined."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
