"""``anomon replay --jobs N``: shards in processes, every line counted, every shard stopped."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from anomon.cli import replay_jobs
from anomon.cli.main import main
from anomon.cli.replay_jobs import shard_of
from anomon.core.detection_config import DetectionConfig
from anomon.core.timeutil import from_rfc3339
from anomon.lab.synthetic import SyntheticConfig, write_dataset

BAD_LINES = [
    b"not json at all",
    b'{"event_id": "b1", "customer_id": "c-bad", "type": "teleport",'
    b' "ts": "2025-03-01T00:00:00Z"}',
    b'{"event_id": "b2", "customer_id": 42, "type": "survey", "ts": "2025-03-01T00:00:00Z",'
    b' "score": 3}',
]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic history with bad lines among it."""
    root = tmp_path_factory.mktemp("replay-jobs")
    source = root / "events.jsonl.gz"
    write_dataset(SyntheticConfig(customers=300, days=240, seed=11), source, root / "truth.jsonl")
    with gzip.open(source, "rb") as fh:
        lines = [line.rstrip(b"\n") for line in fh if line.strip()]
    mixed = root / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(lines[:3000] + BAD_LINES + lines[3000:]) + b"\n")
    return mixed


def _replay(events: Path, out: Path, jobs: int) -> tuple[int, list[dict], list[dict], dict]:
    alerts, dlq, summary = (out / f"{jobs}-{kind}.jsonl" for kind in ("alerts", "dlq", "sum"))
    rc = main(["replay", str(events), "--out", str(alerts), "--dlq", str(dlq),
               "--summary", str(summary), "--jobs", str(jobs)])
    return (rc, [json.loads(line) for line in alerts.read_text().splitlines()],
            [json.loads(line) for line in dlq.read_text().splitlines()],
            json.loads(summary.read_text()))


def test_shards_account_for_every_line_as_one_engine_does(events: Path, tmp_path: Path) -> None:
    rc1, alerts1, rejects1, one = _replay(events, tmp_path, 1)
    rc3, alerts3, rejects3, three = _replay(events, tmp_path, 3)
    assert rc1 == rc3 == 0
    for key in ("events_in", "processed", "duplicate", "late", "rejected", "customers"):
        assert three[key] == one[key], key
    assert three["accounted"] is True
    assert sorted(r["raw"] for r in rejects3) == sorted(r["raw"] for r in rejects1)
    assert len(rejects3) == len(BAD_LINES)
    times = [from_rfc3339(a["ts"]) for a in alerts3]
    assert times == sorted(times), "alerts merged in event-time order"
    assert sum(three["alerts"].values()) == len(alerts3)
    # each engine learns its own shared models: close to one engine, not the same
    kinds1, kinds3 = Counter(a["kind"] for a in alerts1), Counter(a["kind"] for a in alerts3)
    assert set(kinds3) == set(kinds1)
    for kind, n in kinds1.items():
        assert abs(kinds3[kind] - n) <= max(3, n // 5), (kind, n, kinds3[kind])


def test_a_line_goes_to_the_shard_of_its_customer_and_unreadable_ones_to_the_first() -> None:
    lines = [json.dumps({"customer_id": f"c{i}"}).encode() for i in range(400)]
    shards = Counter(shard_of(line, 4) for line in lines)
    assert set(shards) == {0, 1, 2, 3}
    assert min(shards.values()) > 60
    assert shard_of(lines[7], 4) == shard_of(b'{"type": "x", "customer_id": "c7"}', 4)
    assert {shard_of(raw, 4) for raw in BAD_LINES[::2]} == {0}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(")")[-1].split()[0] != "Z"


def _default_sigint() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background (``cmd &``) has
    SIGINT ignored, which the replay would inherit, and rightly keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(events: Path, out: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    big = out / "big.jsonl"
    big.write_bytes(events.read_bytes() * 8)
    proc = subprocess.Popen([sys.executable, "-m", "anomon", "replay", str(big), "--out",
                             str(out / "alerts.jsonl"), "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 30
    shards: list[int] = []
    while len(shards) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        shards = _children(proc.pid)
    assert len(shards) == 2, "both shards started"
    return proc, shards


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_shard_and_exits_130(events: Path, tmp_path: Path,
                                                   sig: signal.Signals) -> None:
    proc, shards = _start(events, tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.decode().strip().endswith("interrupted"), err
    assert b"Traceback" not in err
    assert not [pid for pid in shards if _alive(pid)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal")
def test_shards_die_with_a_killed_parent(events: Path, tmp_path: Path) -> None:
    proc, shards = _start(events, tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while [pid for pid in shards if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in shards if _alive(pid)]


def _report_start(job: replay_jobs.ShardJob, conn: Connection, parent_pid: int) -> None:
    """A shard that reports which stop signals are blocked when its code starts."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    conn.send(("failed", ",".join(sorted(signal.Signals(s).name for s in blocked))))
    conn.close()


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_a_shard_starts_with_the_stop_signals_blocked(events: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop that reaches a shard before its own handlers are in place waits for them.

    The shard is forked with the parent's SIGTERM handler, which raises: a SIGTERM
    between the fork and the shard's first line printed a traceback.
    """
    monkeypatch.setattr(replay_jobs, "_run_shard", _report_start)
    with pytest.raises(replay_jobs.ShardFailed) as failed:
        replay_jobs.run_sharded(events, 1, DetectionConfig(), 0.0, io.BytesIO(), None, 3600.0)
    assert {"SIGHUP", "SIGINT", "SIGTERM"} <= set(str(failed.value).split(": ")[-1].split(","))
    assert not {signal.SIGTERM, signal.SIGHUP} & signal.pthread_sigmask(signal.SIG_BLOCK, [])
