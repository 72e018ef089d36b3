"""Restart (recovery) time and memory of a worker holding many customers, per table store.

Run as ``python -m bench.recovery --customers 1000000``: starts Apache Kafka
(or uses ``--bootstrap``), fills the customer table's changelog with that many
customer states (realistic ones: a few purchases, a visit and a payment each,
made by the engine), then starts a real worker (``python -m anomon.worker.worker``)
for each store and measures:

* ``recovery_s``: from spawning the worker to ready (group joined, table
  recovered from the changelog);
* ``rss_bytes_per_customer``: the worker's resident memory once ready, minus
  that of a worker with an empty table, per customer;
* for RocksDB, ``restart_s``: a second start on the same data dir, where the
  states are already on disk and only the changelog's tail is read.

Prints one JSON object. Nothing here is a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from anomon.core.engine import Engine
from anomon.core.events import Interaction, Payment, Purchase
from anomon.core.state import CustomerState
from anomon.core.timeutil import DAY, to_rfc3339
from anomon.kafka.topics import changelog_topic, ensure_topics
from anomon.settings import Settings

PARTITIONS = 4


def template_state() -> dict[str, Any]:
    """A typical customer's state as a dict: four purchases, a visit, a payment."""
    engine = Engine()
    t = time.time() - 60 * DAY
    state = None
    for n in range(4):
        state = engine.process(state, Purchase(event_id=f"e{n}", customer_id="c", type="purchase",
                                               ts=to_rfc3339(t + 9 * n * DAY), amount=42.0)).state
    state = engine.process(state, Interaction(event_id="e5", customer_id="c", type="interaction",
                                              ts=to_rfc3339(t + 40 * DAY), kind="visit")).state
    state = engine.process(state, Payment(event_id="e6", customer_id="c", type="payment",
                                          ts=to_rfc3339(t + 41 * DAY), amount=30.0,
                                          status="paid")).state
    return state.to_dict()


async def fill_changelog(bootstrap: str, topic: str, customers: int) -> float:
    """Write ``customers`` states to ``topic``; returns the average value size."""
    base = template_state()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                max_batch_size=512 * 1024, acks=1)
    await producer.start()
    total = 0
    try:
        pending = []
        for i in range(customers):
            cid = f"c{i:08d}"
            partition = i % PARTITIONS
            base.update(customer_id=cid, partition=partition,
                        seen_ids=[f"{cid}-{k}" for k in range(6)])
            value = CustomerState.from_dict(base).to_bytes()  # the form workers write
            total += len(value)
            pending.append(await producer.send(topic, value=value, key=cid.encode(),
                                               partition=partition))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return total / max(1, customers)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_worker(env: dict[str, str], log: Path, timeout: float) -> tuple[float, int, int]:
    """Start a worker, wait until ready; (seconds to ready, RSS bytes, customers) then stop."""
    port = env["ANOMON_WEB_PORT"]
    began = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "anomon.worker.worker"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {log}")
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"worker not ready in {timeout} s; see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
                    stats = json.loads(r.read())
            except OSError:
                stats = {}
            if stats.get("ready"):
                ready = time.monotonic() - began
                time.sleep(2.0)  # let the sweep index settle
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as r:
                    stats = json.loads(r.read())
                return ready, rss_bytes(proc.pid), int(stats.get("customers", 0))
            time.sleep(0.2)
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(bootstrap: str, customers: int, stores: list[str], workdir: Path,
            timeout: float) -> dict[str, Any]:
    from brokers.ports import free_port

    def env_for(app_id: str, store: str, data: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}
        suffix = app_id.rsplit("-", 1)[-1]
        env.update({"ANOMON_BROKER": f"kafka://{bootstrap}", "ANOMON_APP_ID": app_id,
                    "ANOMON_INPUT_TOPIC": f"bench-events-{suffix}",
                    "ANOMON_ALERTS_TOPIC": f"bench-alerts-{suffix}",
                    "ANOMON_DLQ_TOPIC": f"bench-dlq-{suffix}",
                    "ANOMON_LATE_TOPIC": f"bench-late-{suffix}",
                    "ANOMON_ERASURE_TOPIC": f"bench-erasure-{suffix}",
                    "ANOMON_PARTITIONS": str(PARTITIONS), "ANOMON_STORE": store,
                    "ANOMON_DATA_DIR": str(data), "ANOMON_MODELS_DIR": str(workdir / "models"),
                    "ANOMON_WEB_PORT": str(free_port()), "ANOMON_SWEEP_INTERVAL_S": "3600",
                    "ANOMON_STANDBY_REPLICAS": "0", "ANOMON_LOG_LEVEL": "WARNING"})
        return env

    (workdir / "models").mkdir(exist_ok=True)
    empty_id = f"bench-empty-{uuid.uuid4().hex[:6]}"
    asyncio.run(ensure_topics(Settings(**settings_of(env_for(empty_id, "memory://", workdir)))))
    _, empty_rss, _ = run_worker(env_for(empty_id, "memory://", workdir / "empty"),
                                 workdir / "empty.log", timeout)
    out: dict[str, Any] = {"customers": customers, "empty_worker_rss_mib": empty_rss >> 20}
    for store in stores:
        name = store.split(":")[0]
        app_id = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        env = env_for(app_id, store, workdir / f"data-{name}")
        asyncio.run(ensure_topics(Settings(**settings_of(env))))
        began = time.monotonic()
        size = asyncio.run(fill_changelog(bootstrap, changelog_topic(app_id), customers))
        out["state_bytes_per_customer"] = round(size, 1)
        out["changelog_fill_s"] = round(time.monotonic() - began, 1)
        ready, rss, _ = run_worker(env, workdir / f"{name}.log", timeout)
        figures: dict[str, Any] = {"recovery_s": round(ready, 1),
                                   "rss_mib": rss >> 20,
                                   "rss_bytes_per_customer": round((rss - empty_rss) / customers)}
        if name == "rocksdb":
            again, rss2, _ = run_worker(env, workdir / f"{name}-2.log", timeout)
            figures.update(restart_s=round(again, 1), restart_rss_mib=rss2 >> 20,
                           disk_mib=du_mib(workdir / f"data-{name}"))
        out[name] = figures
    return out


def settings_of(env: dict[str, str]) -> dict[str, Any]:
    return {k[len("ANOMON_"):].lower(): v for k, v in env.items() if k.startswith("ANOMON_")}


def du_mib(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) >> 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--stores", default="memory://,rocksdb://",
                        help="comma-separated table stores (default memory:// and rocksdb://)")
    parser.add_argument("--bootstrap", help="an existing broker (default: start Apache Kafka)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds a worker may take to be ready")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="anomon-recovery-") as tmp:
        if args.bootstrap:
            result = measure(args.bootstrap, args.customers, stores, Path(tmp), args.timeout)
        else:
            from brokers import ApacheKafkaBroker

            with ApacheKafkaBroker(heap="1g") as kafka:
                result = measure(kafka.bootstrap, args.customers, stores, Path(tmp),
                                 args.timeout)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
