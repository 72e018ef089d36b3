"""The life of a local broker process: a work dir, loopback ports, start, stop, restart."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from brokers.errors import BrokerStartFailed
from brokers.ports import LOOPBACK, accepts_connections, free_port
from brokers.probe import answers_metadata

_PORT_TAKEN = re.compile(r"address (already )?in use", re.IGNORECASE)
#: Log lines that mean a start has failed even while the process lingers.
_FATAL = re.compile(r"address (already )?in use|panicked at|\bFATAL\b", re.IGNORECASE)
#: Log lines worth quoting when a start fails.
_NOTABLE = re.compile(r"\b(ERROR|FATAL)\b|Exception|panicked at")
_RUNNING: weakref.WeakSet[Broker] = weakref.WeakSet()


class Broker(ABC):
    """A Kafka-compatible broker run as a child process, listening on loopback only.

    Subclasses say how to prepare the work dir and which command to run. The work
    dir (a fresh temp dir) holds the broker's log, ``broker.log``, and whatever
    data it keeps; :meth:`stop` removes it, :meth:`restart` keeps it.
    """

    #: Short name: ``"tansu"`` or ``"kafka"``.
    name: ClassVar[str]
    #: Whether records survive :meth:`restart`.
    durable: ClassVar[bool]

    def __init__(self, *, port: int | None = None, start_timeout: float = 60.0,
                 stop_timeout: float = 20.0) -> None:
        self._ports_fixed = port is not None
        self._port = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        #: Seconds the last start or restart took, from launch to ready.
        self.ready_after: float | None = None

    # -- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The client port on ``127.0.0.1``."""
        return self._port

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``, for Kafka clients."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def url(self) -> str:
        """``"kafka://127.0.0.1:PORT"``, the form Faust takes as its broker."""
        return f"kafka://{self.bootstrap}"

    # -- state ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker process id, while there is one."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code of a broker process that has ended, else ``None``."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def workdir(self) -> Path | None:
        """The broker's temp dir, between :meth:`start` and :meth:`stop`."""
        return self._workdir

    @property
    def log_path(self) -> Path | None:
        """The broker's log file (its stdout and stderr)."""
        return self._workdir / "broker.log" if self._workdir is not None else None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the broker's log, or ``""``."""
        path = self.log_path
        if path is None or not path.exists():
            return ""
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def log_excerpt(self, lines: int = 30) -> str:
        """The first error lines of the log (if any), then its last ``lines`` lines."""
        tail = self.log_tail(lines)
        path = self.log_path
        if path is None or not path.exists():
            return tail
        notable = []
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if _NOTABLE.search(line):
                    notable.append(line.rstrip())
                    if len(notable) == 8:
                        break
        notable = [line for line in notable if line not in tail]
        if not notable:
            return tail
        return "\n".join(["first errors:", *notable, "last lines:", tail])

    # -- life -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the broker and wait until it answers a metadata request.

        Raises :class:`~brokers.errors.BrokerUnavailable` when the broker
        cannot be had here, :class:`~brokers.errors.BrokerStartFailed` when
        it ran but never became ready. If ports were chosen automatically and one
        was taken meanwhile, new ports are chosen and the start is tried again.
        """
        if self.running:
            return self
        attempts = 1 if self._ports_fixed else 3
        for attempt in range(1, attempts + 1):
            self._workdir = Path(tempfile.mkdtemp(prefix=f"anomon-{self.name}-"))
            try:
                self._prepare(self._workdir)
                self._launch()
                return self
            except BrokerStartFailed:
                port_taken = bool(_PORT_TAKEN.search(self.log_tail(200)))
                self.stop()
                if not (port_taken and attempt < attempts):
                    raise
                self._choose_ports()
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the process (SIGTERM, SIGKILL after ``stop_timeout``) and remove the work dir."""
        self._end_process()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def restart(self) -> None:
        """Stop the process and start it again on the same ports, keeping the work dir.

        Only a :attr:`durable` broker keeps its topics and records across this.
        """
        if self._workdir is None:
            self.start()
            return
        self._end_process()
        self._launch()

    def kill(self) -> None:
        """End the process at once with SIGKILL, keeping the work dir (for crash tests)."""
        self._end_process(graceful=False)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.bootstrap} {state}>"

    # -- for subclasses -------------------------------------------------------------------

    @abstractmethod
    def _prepare(self, workdir: Path) -> None:
        """Get everything the first launch needs into ``workdir``."""

    @abstractmethod
    def _command(self, workdir: Path) -> list[str]:
        """The broker's command line."""

    def _env(self) -> dict[str, str]:
        """The broker's environment."""
        return dict(os.environ)

    def _choose_ports(self) -> None:
        """Choose new free ports after a port was found taken."""
        self._port = free_port()

    def _ready(self) -> bool:
        """Whether the broker serves clients."""
        return accepts_connections(self._port) and answers_metadata(self.bootstrap, 2.0)

    # -- internals ------------------------------------------------------------------------

    def _launch(self) -> None:
        workdir, log_path = self._workdir, self.log_path
        assert workdir is not None and log_path is not None
        began = time.monotonic()
        log_start = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command(workdir), cwd=workdir, env=self._env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        _RUNNING.add(self)
        deadline = began + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise BrokerStartFailed(
                    f"{self.name} broker exited with code {code} while starting on "
                    f"{self.bootstrap}; its log {log_path}:\n{self.log_excerpt()}")
            if _FATAL.search(_read_from(log_path, log_start)):
                raise BrokerStartFailed(
                    f"{self.name} broker failed to start on {self.bootstrap}; "
                    f"its log {log_path}:\n{self.log_excerpt()}")
            if self._ready():
                self.ready_after = time.monotonic() - began
                return
            if time.monotonic() > deadline:
                raise BrokerStartFailed(
                    f"{self.name} broker did not answer on {self.bootstrap} within "
                    f"{self.start_timeout:.0f} s; its log {log_path}:\n{self.log_excerpt()}")
            time.sleep(0.05)

    def _end_process(self, graceful: bool = True) -> None:
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is None or proc.poll() is not None:
            return
        if graceful:
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.stop_timeout)
                return
        _signal_group(proc, signal.SIGKILL)
        proc.wait(10)


def _read_from(path: Path, offset: int, limit: int = 256 * 1024) -> str:
    """Up to ``limit`` bytes of ``path`` from ``offset`` on, as text."""
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(limit).decode("utf-8", "replace")


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the broker's own process group (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@atexit.register
def _stop_leftovers() -> None:
    """Stop brokers still running when the interpreter exits."""
    for broker in list(_RUNNING):
        with contextlib.suppress(Exception):
            broker.stop()


def run_in_foreground(broker: Broker, *, follow_log: bool = True) -> int:
    """Start ``broker``, print its address (and its log), stop it on Ctrl-C or SIGTERM.

    Returns a process exit code: 0 after a requested stop, else the broker's own.
    """

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        broker.start()
        print(f"{broker.name} broker ready on {broker.bootstrap} ({broker.url}) after "
              f"{broker.ready_after or 0:.1f} s; log: {broker.log_path}; Ctrl-C stops it",
              file=sys.stderr, flush=True)
        offset = 0
        while broker.running:
            if follow_log and broker.log_path is not None:
                offset = _copy_new_output(broker.log_path, offset)
            time.sleep(0.2)
        code = broker.returncode
        print(f"{broker.name} broker exited with code {code}", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()
        signal.signal(signal.SIGTERM, previous)


def _copy_new_output(path: Path, offset: int) -> int:
    with path.open("rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    if chunk:
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    return offset + len(chunk)
