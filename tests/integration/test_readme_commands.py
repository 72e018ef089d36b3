"""Every command in README.md runs, as written (with the demo's port filled in).

The README's shell blocks are read here; a command this file does not run makes
the first test fail, so the README cannot gain an untested command. ``make``
targets are checked with ``make -n`` (they would install into ``.venv``); the
demo itself runs in ``test_demo_hygiene.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from anomon.core.alerts import Alert, alert_id, fingerprint
from anomon.kafka.topics import ensure_topics
from anomon.ops.embedded_broker import EmbeddedBroker
from anomon.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

TAIL = "anomon tail --broker kafka://127.0.0.1:PORT --from-beginning --verbose"
GENERATE = ("anomon generate --events events.jsonl --truth truth.jsonl --customers 300 "
            "--days 120")
REPLAY = "anomon replay events.jsonl --out alerts.jsonl"
TESTED = {"make demo", "make test", TAIL, GENERATE, REPLAY}


def readme_commands() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def anomon(*argv: str, cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "anomon", *argv], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)


def test_the_readme_is_short_and_each_of_its_commands_is_run_here() -> None:
    assert len(README.read_text().splitlines()) <= 150
    assert set(readme_commands()) == TESTED


def test_the_alert_lines_in_the_readme_fit_in_120_columns() -> None:
    text = README.read_text()
    lines = [line for line in text.splitlines() if line.startswith("event ")]
    assert lines and all(len(line) <= 120 for line in lines)


@pytest.mark.parametrize(("target", "runs"), [
    ("demo", ["anomon demo"]),
    ("test", ["ruff check", "mypy", "lint-imports", "pytest -q"]),
])
def test_make_targets_run_what_the_readme_says(target: str, runs: list[str]) -> None:
    plan = subprocess.run(["make", "-n", target], capture_output=True, text=True, cwd=ROOT,
                          timeout=30, check=True).stdout
    for command in runs:
        assert command in plan


def test_generate_then_replay_as_written(tmp_path: Path) -> None:
    made = anomon(*shlex.split(GENERATE)[1:], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    replayed = anomon(*shlex.split(REPLAY)[1:], cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert "events " in replayed.stdout and "alerts:" in replayed.stdout
    assert (tmp_path / "alerts.jsonl").stat().st_size > 0


def test_tail_as_the_demo_prints_it(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.start()
    try:
        asyncio.run(_publish_an_alert(broker.bootstrap))
        argv = shlex.split(TAIL.replace("PORT", str(broker.port)))[1:]
        done = anomon(*argv, "--limit", "1", cwd=tmp_path, timeout=60)
    finally:
        broker.stop()
    assert done.returncode == 0, done.stderr
    first, *more = done.stdout.splitlines()
    assert first.startswith("event 2025-07-22  CRITICAL  complaint_spike  firing    c000266")
    assert more[-1].startswith("    action: Senior agent")


async def _publish_an_alert(bootstrap: str) -> None:
    fp = fingerprint("c000266", "complaint_spike")
    alert = Alert.model_validate({
        "alert_id": alert_id(fp, 1, "firing"), "fingerprint": fp, "customer_id": "c000266",
        "kind": "complaint_spike", "status": "firing", "severity": "critical",
        "score": 0.99928, "threshold": 0.999, "ts": "2025-07-22T15:52:45+00:00", "episode": 1,
        "segment": {"tier": "high", "stage": "loyal"},
        "reasons": [{"feature": "complaints_14d", "value": 2, "baseline": 0.04,
                     "text": "2 complaints in 14 days; usually 1.0 a year"}],
        "action": "Senior agent contacts the customer today.",
        "model": {"name": "complaint-poisson", "version": "1.1"}, "events": ["e1"]})
    await ensure_topics(Settings(broker=f"kafka://{bootstrap}"), with_changelog=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Settings().alerts_topic, alert.to_bytes(), key=b"c000266")
    finally:
        await producer.stop()
