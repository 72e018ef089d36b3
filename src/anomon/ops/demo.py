"""``anomon demo``: a broker, a worker and simulated customers, with alerts printed live.

1. start Tansu on loopback (unless a broker is given), create the topics;
2. start the worker as a subprocess (``python -m anomon.worker.worker``) with the
   event-time sweep clock, since the simulated history is replayed in minutes;
3. send the synthetic customers' events at the target rate, keyed by customer;
4. print each alert as it arrives, one line each, on stdout (progress on stderr);
5. once every event is processed and the last sweeps have run, print a summary
   and stop everything. Ctrl-C stops everything cleanly at any point: the
   producer and the alert reader first, then the worker (SIGTERM, so it commits
   and saves its models), then the broker.

The worker and the broker run in their own process sessions so that Ctrl-C
reaches only the demo, which then stops them in that order.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import IO, Any

from anomon.core.alerts import Alert
from anomon.exits import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK
from anomon.kafka.logs import configure_logging
from anomon.kafka.ports import free_port
from anomon.kafka.topics import ensure_topics
from anomon.ops.embedded_broker import EmbeddedBroker
from anomon.ops.producer import ProduceReport, produce_async
from anomon.ops.tail import format_alert, tail_async
from anomon.settings import Settings

DEMO_SWEEP_INTERVAL_S = 1.0
READY_TIMEOUT_S = 90.0


def settings_env(settings: Settings) -> dict[str, str]:
    """``ANOMON_*`` variables that reproduce ``settings`` in a subprocess."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"ANOMON_{name.upper()}"] = str(value)
    return env


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


class Demo:
    """One demo run; see the module docstring."""

    def __init__(self, settings: Settings, customers: int, days: int, rate: float, seed: int,
                 use_embedded: bool, out: IO[str], err: IO[str]) -> None:
        self.settings = settings
        self.customers, self.days, self.rate, self.seed = customers, days, rate, seed
        self.use_embedded = use_embedded
        self.out, self.err = out, err
        self.workdir = Path(tempfile.mkdtemp(prefix="anomon-demo-"))
        self.stop = asyncio.Event()
        self.broker: Any = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.alerts: Counter[str] = Counter()
        self.interrupted = False
        self.keep_workdir = False

    def say(self, text: str) -> None:
        self.err.write(f"[demo] {text}\n")
        self.err.flush()

    def on_alert(self, alert: Alert) -> None:
        self.alerts[f"{alert.kind}/{alert.status}"] += 1
        self.out.write(format_alert(alert) + "\n")
        self.out.flush()

    def on_progress(self, report: ProduceReport) -> None:
        alerts = sum(self.alerts.values())
        self.say(f"sent {report.sent:,} events ({report.rate:,.0f}/s), {alerts:,} alerts so far")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._interrupt)
        loop.add_signal_handler(signal.SIGTERM, self._interrupt)
        code = EXIT_FAIL
        try:
            code = await self._run()
            return code
        finally:
            self.keep_workdir = code == EXIT_FAIL
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
            await self._shutdown()

    def _interrupt(self) -> None:
        if not self.interrupted:
            self.say("stopping...")
        self.interrupted = True
        self.stop.set()

    async def _run(self) -> int:
        settings = self.settings
        if self.use_embedded:
            self.broker = EmbeddedBroker(self.workdir)
            await _maybe_await(self.broker.start())
            settings = settings.model_copy(update={"broker": str(self.broker.url)})
            self.say(f"Tansu broker on {self.broker.url}")
        port = settings.web_port or free_port(settings.web_host)
        settings = settings.model_copy(update={
            "sweep_clock": "event", "sweep_interval_s": DEMO_SWEEP_INTERVAL_S,
            "web_port": port, "data_dir": self.workdir / "worker"})
        self.settings = settings
        await ensure_topics(settings)
        if not await self._start_worker():
            return EXIT_FAIL
        if self.stop.is_set():
            return EXIT_INTERRUPTED
        from anomon.lab.synthetic import SyntheticConfig, generate

        events = generate(SyntheticConfig(customers=self.customers, days=self.days,
                                          seed=self.seed))
        self.say(f"sending {self.customers:,} customers over {self.days} days at "
                 f"{self.rate:,.0f} events/s; alerts below (Ctrl-C to stop)")
        tail = asyncio.create_task(tail_async(
            settings, self.on_alert, from_beginning=self.use_embedded, stop=self.stop,
            create_topics=False))
        if not self.use_embedded:
            await asyncio.sleep(1.0)  # let the reader take its position at the end
        started = time.monotonic()
        report = await produce_async(settings, events, self.rate or None,
                                     progress=self.on_progress, stop=self.stop,
                                     create_topics=False)
        if not self.stop.is_set():
            await self._drain(report.sent)
        self.stop.set()
        await tail
        self._summary(report, time.monotonic() - started)
        return EXIT_INTERRUPTED if self.interrupted else EXIT_OK

    async def _start_worker(self) -> bool:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}
        env.update(settings_env(self.settings))
        log_path = self.workdir / "worker.log"
        with log_path.open("ab") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "anomon.worker.worker"],
                                           env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        self.say(f"worker starting (log: {log_path})")
        started = time.monotonic()
        while time.monotonic() - started < READY_TIMEOUT_S and not self.stop.is_set():
            if self.worker.poll() is not None:
                self.say(f"worker exited with {self.worker.returncode}; last lines of its log:")
                tail = log_path.read_text(errors="replace").splitlines()[-15:]
                self.err.write("\n".join(tail) + "\n")
                return False
            try:
                stats = await asyncio.to_thread(_get_json, self._stats_url)
                if stats.get("ready"):
                    self.say(f"worker ready in {time.monotonic() - started:.1f} s; metrics on "
                             f"http://{self.settings.web_host}:{self.settings.web_port}/metrics")
                    return True
            except OSError:
                pass
            await asyncio.sleep(0.2)
        if not self.stop.is_set():
            self.say("worker not ready in time; see its log")
            return False
        return True

    @property
    def _stats_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}/stats"

    async def _drain(self, sent: int) -> None:
        """Wait until the worker has taken every event in and swept after the last one."""
        self.say("all events sent; waiting for the worker to finish")
        deadline = time.monotonic() + 300
        sweeps_at_end: int | None = None
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                stats = await asyncio.to_thread(_get_json, self._stats_url)
            except OSError:
                stats = {}
            if stats.get("in", 0) >= sent:
                if sweeps_at_end is None:
                    sweeps_at_end = int(stats.get("sweeps", 0))
                elif int(stats.get("sweeps", 0)) >= sweeps_at_end + 2:
                    await asyncio.sleep(1.0)  # the last alerts reach the reader
                    return
            await asyncio.sleep(0.5)

    def _summary(self, report: ProduceReport, seconds: float) -> None:
        try:
            stats = _get_json(self._stats_url)
        except OSError:
            stats = {}
        alerts = ", ".join(f"{k} {v}" for k, v in sorted(self.alerts.items())) or "none"
        self.say(f"events sent {report.sent:,} in {seconds:.1f} s; worker: in "
                 f"{stats.get('in', '?')}, processed {stats.get('processed', '?')}, "
                 f"duplicate {stats.get('duplicate', '?')}, late {stats.get('late', '?')}, "
                 f"dead-lettered {stats.get('dead_lettered', '?')}")
        self.say(f"alerts: {alerts}")

    async def _shutdown(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.say("stopping the worker")
            self.worker.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.worker.wait, 30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        if self.broker is not None:
            self.say("stopping the broker")
            await _maybe_await(self.broker.stop())
        if self.keep_workdir:
            self.say(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def run_demo(settings: Settings, customers: int, days: int, rate: float, seed: int,
             use_embedded: bool = True) -> int:
    """Run the demo (see the module docstring); returns the exit code."""
    configure_logging("WARNING" if settings.log_level.upper() == "INFO" else settings.log_level)
    demo = Demo(settings, customers, days, rate, seed, use_embedded, sys.stdout, sys.stderr)
    try:
        return asyncio.run(demo.run())
    except (OSError, RuntimeError) as err:
        sys.stderr.write(f"[demo] failed: {err}\n")
        return EXIT_FAIL
