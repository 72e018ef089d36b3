"""``anomon demo``: a broker, a worker and simulated customers, with alerts printed live.

1. start Tansu on a free loopback port (unless a broker is given), create the
   topics, and print the ``anomon tail --broker ...`` command for a second terminal;
2. start the worker as a child process (``python -m anomon.worker.worker``) on a
   free web port, with the event-time sweep clock (the simulated year is replayed
   in minutes), and check that ``/stats`` answers for *this* worker;
3. send the synthetic customers' events, keyed by customer, as fast as the
   worker takes them in: the producer waits whenever the worker's lag (events
   sent minus events it has taken in) is over a bound that follows the worker's
   own rate, so lag stays bounded whatever the worker's speed (``--rate`` caps it);
4. print each alert as it arrives on stdout, and a progress line (sent,
   processed, lag, alerts, simulated date) on stderr every few seconds;
5. once every event is processed and the last sweeps have run, print a summary
   and stop everything.

The demo stops its children on every way out: the end, Ctrl-C, SIGTERM, SIGHUP
(its terminal closed), a closed output (``anomon demo | head``), the broker or
the worker dying, or an error. The worker is stopped with SIGTERM (it commits
and saves its models) then SIGKILL; the broker likewise. The children run in
their own sessions, so Ctrl-C reaches only the demo; should the demo itself be
killed outright, the kernel sends them SIGTERM (Linux ``PR_SET_PDEATHSIG``), and
the worker also watches ``ANOMON_PARENT_PID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from anomon.core.alerts import Alert
from anomon.exits import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, error_text
from anomon.kafka.logs import configure_logging
from anomon.kafka.ports import free_port
from anomon.kafka.topics import ensure_topics
from anomon.ops.embedded_broker import EmbeddedBroker, die_with_parent, stop_process
from anomon.ops.patience import quiet_kafka_client_logs
from anomon.ops.producer import ProduceReport, produce_async
from anomon.ops.tail import format_alert, tail_async
from anomon.settings import Settings

DEMO_SWEEP_INTERVAL_S = 1.0
DEMO_SESSION_TIMEOUT_S = 6.0
READY_TIMEOUT_S = 90.0
STATS_EVERY_S = 0.25
PROGRESS_EVERY_S = 5.0
WORKER_STOP_S = 10.0
#: The lag bound: this many seconds of the worker's measured rate, within these limits.
LAG_SECONDS = 2.0
MIN_LAG, MAX_LAG = 1000, 50_000
PARENT_PID_ENV = "ANOMON_PARENT_PID"


def settings_env(settings: Settings) -> dict[str, str]:
    """``ANOMON_*`` variables that reproduce ``settings`` in a subprocess."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"ANOMON_{name.upper()}"] = str(value)
    return env


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` and it can be bound."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def anomon_command() -> str:
    """How to call ``anomon`` from this shell: ``anomon`` if on PATH, else the venv's script."""
    script = Path(sys.executable).with_name("anomon")
    found = shutil.which("anomon")
    if found and Path(found).resolve() == script.resolve():
        return "anomon"
    if script.exists():
        try:
            return str(script.relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return "anomon"


class Output:
    """The demo's stdout and stderr; once either is gone (closed pipe, closed terminal)
    nothing more is written and ``on_gone`` is called once."""

    def __init__(self, out: IO[str], err: IO[str], on_gone: Any) -> None:
        self.out, self.err = out, err
        self.on_gone = on_gone
        self.gone = False

    def _write(self, stream: IO[str], text: str) -> None:
        if self.gone:
            return
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # BrokenPipeError, EIO from a closed terminal
            self.gone = True
            self.on_gone()

    def line(self, text: str) -> None:
        self._write(self.out, text + "\n")

    def say(self, text: str) -> None:
        self._write(self.err, f"[demo] {text}\n")


class Demo:
    """One demo run; see the module docstring."""

    def __init__(self, settings: Settings, customers: int, days: int, rate: float | None,
                 seed: int, use_embedded: bool, out: IO[str], err: IO[str],
                 web_port_chosen: bool = False) -> None:
        self.settings = settings
        self.customers, self.days, self.rate, self.seed = customers, days, rate, seed
        self.use_embedded = use_embedded
        self.web_port_chosen = web_port_chosen
        self.io = Output(out, err, self._output_gone)
        self.workdir = Path(tempfile.mkdtemp(prefix="anomon-demo-"))
        self.stop = asyncio.Event()
        self.broker: EmbeddedBroker | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.alerts: Counter[str] = Counter()
        self.stopped_by: str | None = None
        self.failed = False
        self.started = time.monotonic()
        self.first_alert_s: float | None = None
        # what the worker has done, from its /stats
        self.worker_in = 0
        self.worker_processed = 0
        self.worker_rate = 0.0
        self.stats: dict[str, Any] = {}
        self.sent = 0
        self.max_lag_seen = 0
        self.simulated_ts = ""
        self.launched_at = 0.0

    # -- output ---------------------------------------------------------------

    def say(self, text: str) -> None:
        self.io.say(text)

    def on_alert(self, alert: Alert) -> None:
        if self.first_alert_s is None:
            self.first_alert_s = time.monotonic() - self.started
        self.alerts[f"{alert.kind}/{alert.status}"] += 1
        self.io.line(format_alert(alert))

    def _output_gone(self) -> None:
        self._halt("output closed")

    # -- stopping ---------------------------------------------------------------

    def _halt(self, why: str, failed: bool = False) -> None:
        if self.stopped_by is None:
            self.stopped_by = why
            self.failed = failed
            if failed:
                self.say(f"failed: {why}")
            elif why != "output closed":
                self.say(f"stopping ({why})...")
        self.stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._halt, signal.Signals(sig).name)
        try:
            return await self._run()
        except (OSError, RuntimeError) as err:
            self._halt(f"failed: {error_text(err)}", failed=True)
            return EXIT_FAIL
        finally:
            await self._shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAIL
        if self.stopped_by in ("SIGINT", "SIGTERM", "SIGHUP"):
            return EXIT_INTERRUPTED
        return EXIT_OK

    # -- the run ----------------------------------------------------------------

    async def _run(self) -> int:
        settings = self.settings
        if self.use_embedded:
            self.broker = EmbeddedBroker(self.workdir)
            self.broker.start()
            settings = settings.model_copy(update={"broker": str(self.broker.url)})
            self.say(f"Tansu broker on {self.broker.url}")
        port = self._web_port(settings)
        if port is None:
            return EXIT_FAIL
        settings = settings.model_copy(update={
            "sweep_clock": "event", "sweep_interval_s": DEMO_SWEEP_INTERVAL_S,
            "web_port": port, "data_dir": self.workdir / "worker"})
        if "session_timeout_s" not in self.settings.model_fields_set:
            # one local worker: a short timeout makes a restart rejoin at once
            settings = settings.model_copy(update={"session_timeout_s": DEMO_SESSION_TIMEOUT_S})
        self.settings = settings
        await ensure_topics(settings)
        watch = asyncio.create_task(self._watch_children())
        try:
            if not await self._start_worker():
                return self.exit_code() if self.stopped_by else EXIT_FAIL
            return await self._stream()
        finally:
            watch.cancel()

    def _web_port(self, settings: Settings) -> int | None:
        """The worker's web port: the one asked for if free, else a free one."""
        if not self.web_port_chosen or settings.web_port == 0:
            return free_port(settings.web_host)
        if port_free(settings.web_host, settings.web_port):
            return settings.web_port
        self._halt(f"port {settings.web_port} on {settings.web_host} is in use (a worker "
                   "left by an earlier run?); pass --web-port 0 to use a free one", failed=True)
        return None

    async def _stream(self) -> int:
        settings = self.settings
        from anomon.lab.synthetic import SyntheticConfig, generate

        events = self._noting_dates(generate(SyntheticConfig(
            customers=self.customers, days=self.days, seed=self.seed)))
        cap = f" (at most {self.rate:,.0f}/s)" if self.rate else ""
        self.say(f"sending {self.customers:,} simulated customers' {self.days} days of events "
                 f"as fast as the worker takes them in{cap}")
        self.say("alerts below, one line each; the dates are simulated event times (the year "
                 "is replayed in minutes), so lines from different partitions may step back "
                 "a little. Ctrl-C stops everything.")
        self.say(f"in a second terminal: {anomon_command()} tail --broker {settings.broker} "
                 "--from-beginning --verbose")
        tail = asyncio.create_task(tail_async(
            settings, self.on_alert, from_beginning=self.use_embedded, stop=self.stop,
            create_topics=False, give_up_s=30.0))
        stats = asyncio.create_task(self._follow_stats())
        if not self.use_embedded:
            await asyncio.sleep(1.0)  # let the reader take its position at the end
        produce = asyncio.create_task(produce_async(
            settings, events, self.rate, stop=self.stop, create_topics=False, pace=self._pace))
        stopped = asyncio.create_task(self.stop.wait())
        await asyncio.wait({produce, stopped}, return_when=asyncio.FIRST_COMPLETED)
        report: ProduceReport | None = None
        if produce.done() and not produce.cancelled() and produce.exception() is None:
            report = produce.result()
            if not self.stop.is_set():
                await self._drain(report.sent)
        elif produce.done() and produce.exception() is not None:
            self._halt(f"sending failed: {error_text(produce.exception())}",  # type: ignore[arg-type]
                       failed=True)
        self.stop.set()
        for task in (produce, tail, stats, stopped):
            await _finish(task, 10.0)
        self._summary(report)
        return self.exit_code()

    def _noting_dates(self, events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for event in events:
            self.simulated_ts = str(event.get("ts", ""))
            yield event

    async def _pace(self, sent: int) -> None:
        """Hold the producer while the worker is too far behind (see the module docstring)."""
        self.sent = sent
        while not self.stop.is_set() and sent - self.worker_in > self.max_lag:
            await asyncio.sleep(0.02)

    @property
    def max_lag(self) -> int:
        """The lag bound: about :data:`LAG_SECONDS` of the worker's own rate."""
        return int(min(MAX_LAG, max(MIN_LAG, LAG_SECONDS * self.worker_rate)))

    async def _follow_stats(self) -> None:
        """Read the worker's ``/stats`` a few times a second; print progress now and then."""
        last_in, last_t = self.worker_in, time.monotonic()
        next_progress = last_t + PROGRESS_EVERY_S
        while not self.stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                stats = await asyncio.to_thread(_get_json, self._stats_url)
                if self._foreign(stats):
                    return
                self.stats = stats
                self.worker_in = int(stats.get("in", 0))
                self.worker_processed = int(stats.get("processed", 0))
            now = time.monotonic()
            if now - last_t >= 1.0:
                rate = (self.worker_in - last_in) / (now - last_t)
                self.worker_rate = rate if self.worker_rate == 0 else (
                    0.7 * self.worker_rate + 0.3 * rate)
                last_in, last_t = self.worker_in, now
            self.max_lag_seen = max(self.max_lag_seen, self.sent - self.worker_in)
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY_S
                self.say(self._progress_line())
            await asyncio.sleep(STATS_EVERY_S)

    def _progress_line(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        alerts = sum(self.alerts.values())
        lag = max(0, self.sent - self.worker_in)
        return (f"{elapsed // 60}:{elapsed % 60:02d}  sent {self.sent:,}  processed "
                f"{self.worker_processed:,}  lag {lag:,}  alerts {alerts:,}  "
                f"({self.worker_rate:,.0f} events/s; simulated {self.simulated_ts[:10]})")

    def _foreign(self, stats: dict[str, Any]) -> bool:
        """Whether ``/stats`` answered for a process other than this demo's worker."""
        pid = stats.get("pid")
        mine = self.worker.pid if self.worker is not None else None
        if pid is not None and pid != mine:
            self._halt(f"the web port {self.settings.web_port} answers for process {pid}, not "
                       f"this demo's worker ({mine}); stop it or pass --web-port 0", failed=True)
            return True
        started = stats.get("started_at")
        if pid is None and isinstance(started, int | float) and started < self.launched_at - 2:
            self._halt(f"the web port {self.settings.web_port} answers for a worker started "
                       "before this demo; stop it or pass --web-port 0", failed=True)
            return True
        return False

    async def _watch_children(self) -> None:
        """Stop the demo when the broker or the worker exits on its own."""
        while not self.stop.is_set():
            if self.broker is not None and self.broker.proc is not None \
                    and self.broker.proc.poll() is not None:
                self._halt(f"the broker exited with {self.broker.proc.returncode}", failed=True)
                return
            if self.worker is not None and self.worker.poll() is not None:
                self._halt(f"the worker exited with {self.worker.returncode}", failed=True)
                self._show_worker_log()
                return
            await asyncio.sleep(0.2)

    def _show_worker_log(self) -> None:
        log_path = self.workdir / "worker.log"
        with contextlib.suppress(OSError):
            lines = log_path.read_text(errors="replace").splitlines()[-15:]
            self.say("last lines of the worker's log:\n" + "\n".join(lines))

    async def _start_worker(self) -> bool:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMON_")}
        env.update(settings_env(self.settings))
        env[PARENT_PID_ENV] = str(os.getpid())
        log_path = self.workdir / "worker.log"
        self.launched_at = time.time()
        with log_path.open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "anomon.worker.worker"], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent(os.getpid()))
        self.say(f"worker starting (log: {log_path})")
        started = time.monotonic()
        while time.monotonic() - started < READY_TIMEOUT_S and not self.stop.is_set():
            try:
                stats = await asyncio.to_thread(_get_json, self._stats_url)
            except (OSError, ValueError):
                await asyncio.sleep(0.2)
                continue
            if self._foreign(stats):
                return False
            if stats.get("ready"):
                self.say(f"worker ready in {time.monotonic() - started:.1f} s; metrics on "
                         f"http://{self.settings.web_host}:{self.settings.web_port}/metrics")
                return True
            await asyncio.sleep(0.2)
        if not self.stop.is_set():
            self._halt(f"worker not ready in {READY_TIMEOUT_S:.0f} s; see {log_path}",
                       failed=True)
        return False

    @property
    def _stats_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}/stats"

    async def _drain(self, sent: int) -> None:
        """Wait until the worker has taken every event in and swept after the last one."""
        self.say("all events sent; waiting for the worker to finish")
        deadline = time.monotonic() + 300
        sweeps_at_end: int | None = None
        while not self.stop.is_set() and time.monotonic() < deadline:
            stats = self.stats
            if stats.get("in", 0) >= sent:
                if sweeps_at_end is None:
                    sweeps_at_end = int(stats.get("sweeps", 0))
                elif int(stats.get("sweeps", 0)) >= sweeps_at_end + 2:
                    await asyncio.sleep(1.0)  # the last alerts reach the reader
                    return
            await asyncio.sleep(0.5)

    def _summary(self, report: ProduceReport | None) -> None:
        stats = self.stats
        seconds = time.monotonic() - self.started
        alerts = ", ".join(f"{k} {v}" for k, v in sorted(self.alerts.items())) or "none"
        sent = report.sent if report is not None else self.sent
        first = f"{self.first_alert_s:.1f} s" if self.first_alert_s is not None else "none"
        self.say(f"{seconds:.0f} s: events sent {sent:,}; worker: in {stats.get('in', '?')}, "
                 f"processed {stats.get('processed', '?')}, duplicate "
                 f"{stats.get('duplicate', '?')}, late {stats.get('late', '?')}, dead-lettered "
                 f"{stats.get('dead_lettered', '?')}; largest lag {self.max_lag_seen:,}")
        self.say(f"alerts: {alerts}; first after {first}")

    async def _shutdown(self) -> None:
        """Stop the worker, then the broker (each: SIGTERM, then SIGKILL)."""
        if self.worker is not None and self.worker.poll() is None:
            self.say("stopping the worker")
            await asyncio.to_thread(stop_process, self.worker, WORKER_STOP_S)
        if self.broker is not None:
            self.say("stopping the broker")
            await asyncio.to_thread(self.broker.stop)
        if self.failed:
            self.say(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill_children(self) -> None:
        """Last resort, synchronous: no child outlives the demo, whatever happened."""
        if self.worker is not None:
            stop_process(self.worker, 2.0)
        if self.broker is not None:
            self.broker.stop()


async def _finish(task: asyncio.Task[Any], timeout_s: float) -> None:
    """Let ``task`` end (cancel it after ``timeout_s``); its errors were reported already."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout_s)
    except (TimeoutError, asyncio.CancelledError):
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 5.0)
    except Exception:  # reported by the demo already
        pass


def run_demo(settings: Settings, customers: int, days: int, rate: float | None, seed: int,
             use_embedded: bool = True, web_port_chosen: bool = False) -> int:
    """Run the demo (see the module docstring); returns the exit code."""
    configure_logging("WARNING" if settings.log_level.upper() == "INFO" else settings.log_level)
    quiet_kafka_client_logs()
    demo = Demo(settings, customers, days, rate, seed, use_embedded, sys.stdout, sys.stderr,
                web_port_chosen=web_port_chosen)
    try:
        code = asyncio.run(demo.run())
    except BaseException:
        demo.kill_children()
        raise
    if demo.io.gone:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.dup2(devnull, sys.stderr.fileno())
    return code
