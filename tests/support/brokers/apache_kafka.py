"""Apache Kafka 4.x as one KRaft node (broker and controller) on loopback ports.

The jars come from Maven Central (:mod:`brokers.kafka_libs`) and run on the
``java`` of ``$JAVA_HOME`` or ``PATH`` (17 or newer). Run it by hand with
``PYTHONPATH=tests/support python -m brokers.apache_kafka --port 9092``.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import ClassVar

from brokers.base import Broker, run_in_foreground
from brokers.errors import BrokerStartFailed, BrokerUnavailable, JavaNotFound
from brokers.kafka_libs import KAFKA_VERSION, fetch_kafka
from brokers.ports import LOOPBACK, free_ports

#: Kafka 4.x brokers need this Java release or a newer one.
MIN_JAVA = 17

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def find_java() -> str:
    """A ``java`` of release :data:`MIN_JAVA` or newer (``$JAVA_HOME/bin/java`` first)."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else None
    java = candidate if candidate and os.access(candidate, os.X_OK) else shutil.which("java")
    if java is None:
        raise JavaNotFound(
            f"Apache Kafka needs Java {MIN_JAVA}+, and no java is on PATH or in JAVA_HOME "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
    release = java_release(java)
    if release < MIN_JAVA:
        raise JavaNotFound(f"Apache Kafka needs Java {MIN_JAVA}+, but {java} is Java {release}")
    return java


def java_release(java: str) -> int:
    """The feature release of ``java`` (8, 11, 17, 21...), or 0 if it cannot tell."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def new_cluster_id() -> str:
    """A random KRaft cluster id (a UUID in Kafka's URL-safe base64 form).

    Like Kafka's own ``Uuid.randomUuid``, never one starting with ``-``, which a
    command line would take for an option.

    >>> cluster_id = new_cluster_id()
    >>> len(cluster_id), cluster_id.startswith("-")
    (22, False)
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


SCRIPT_JVM_OPTIONS: tuple[str, ...] = (
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15")
"""The JVM options ``bin/kafka-run-class.sh`` gives a broker (``KAFKA_JVM_PERFORMANCE_OPTS``).

With them and the heap fixed at its size (``-Xms`` = ``-Xmx``, as
``bin/kafka-server-start.sh`` sets ``KAFKA_HEAP_OPTS``), the broker runs as users
start it. Without them (the JVM's defaults, a heap that starts at 1/64 of the
memory and grows) it spent 0.28-0.32 of a core beside two draining workers
against 0.17-0.28 (``bench.drain_settings --kafka-jvm``).
"""


INDEX_FILE_BYTES = 1 << 20
"""The size of a partition's offset and time index files (Kafka's default is 10 MiB).

Every test and bench run makes new topics, and each new partition gets two
index files, sparse and mapped into the broker's memory. The first entry the
broker writes faults a page in, and the kernel reads ahead around it; on a
disk whose readahead is large (8 MiB on the virtual disk of this project's
machines) it zeroes that much of the hole in the request thread. With 48 new
partitions a run, that was 0.3-0.4 of a core beside two draining workers, a
fixed cost that weighs most on the shortest runs. With files of 1 MiB the
broker's request threads took 0.08 of a core there instead of 0.39
(``bench.index_files``). A broker in service makes index files only when a
segment rolls (at 1 GiB or after 7 days by default) and keeps Kafka's default.
"""


class ApacheKafkaBroker(Broker):
    """Apache Kafka on ``127.0.0.1``: one KRaft node, data in its temp dir.

    A :meth:`restart` keeps topics, records and committed offsets.

    >>> kafka = ApacheKafkaBroker(port=9092, controller_port=9093)
    >>> kafka.bootstrap, kafka.url
    ('127.0.0.1:9092', 'kafka://127.0.0.1:9092')
    """

    name: ClassVar[str] = "kafka"
    durable: ClassVar[bool] = True

    def __init__(self, *, port: int | None = None, controller_port: int | None = None,
                 version: str = KAFKA_VERSION, heap: str = "1g",
                 start_timeout: float = 120.0, stop_timeout: float = 30.0,
                 extra_config: dict[str, str] | None = None,
                 jvm_options: tuple[str, ...] = SCRIPT_JVM_OPTIONS) -> None:
        super().__init__(port=port, start_timeout=start_timeout, stop_timeout=stop_timeout)
        if controller_port is None:
            controller_port = next(p for p in free_ports(2) if p != self.port)
        else:
            self._ports_fixed = True
        self._controller_port = controller_port
        self.version = version
        self.heap = heap
        #: the broker's JVM options besides its heap (``()``: the JVM's defaults, heap growing)
        self.jvm_options = tuple(jvm_options)
        self.extra_config = dict(extra_config or {})
        self.cluster_id = new_cluster_id()
        self._java: str | None = None
        self._libs: Path | None = None

    @property
    def controller_port(self) -> int:
        """The KRaft controller port on ``127.0.0.1``."""
        return self._controller_port

    def config(self, workdir: Path) -> dict[str, str]:
        """The broker's ``server.properties`` for a node whose data lives in ``workdir``."""
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{self.controller_port}",
            "listeners": (f"PLAINTEXT://{LOOPBACK}:{self.port},"
                          f"CONTROLLER://{LOOPBACK}:{self.controller_port}"),
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(workdir / "data"),
            "num.partitions": "4",
            "auto.create.topics.enable": "true",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Look for logs to compact every second instead of every 15 s.
            "log.cleaner.backoff.ms": "1000",
            # Index files of 1 MiB instead of 10: see INDEX_FILE_BYTES.
            "log.index.size.max.bytes": str(INDEX_FILE_BYTES),
        }
        config.update(self.extra_config)
        return config

    def _prepare(self, workdir: Path) -> None:
        self._java = find_java()
        self._libs = fetch_kafka(self.version)
        self._write_config(workdir)
        (workdir / "log4j2.properties").write_text(_LOG4J2)
        self._format(workdir)

    def _write_config(self, workdir: Path) -> None:
        lines = [f"{key}={value}" for key, value in self.config(workdir).items()]
        (workdir / "server.properties").write_text("\n".join(lines) + "\n")

    def _java_command(self, workdir: Path, main: str, *args: str, heap: str,
                      jvm_options: tuple[str, ...] = ()) -> list[str]:
        """A JVM running ``main``; ``jvm_options`` given, the heap is fixed at its size from the
        start (``-Xms`` = ``-Xmx``), as Kafka's start scripts run a broker."""
        assert self._java is not None and self._libs is not None
        fixed_heap = [f"-Xms{heap}", *jvm_options] if jvm_options else []
        return [self._java, *fixed_heap, f"-Xmx{heap}", "-Djava.awt.headless=true",
                "-XX:+ExitOnOutOfMemoryError",
                f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
                "-cp", str(self._libs / "*"), main, *args]

    def _format(self, workdir: Path) -> None:
        command = self._java_command(
            workdir, "kafka.tools.StorageTool", "format", f"--cluster-id={self.cluster_id}",
            "--config", str(workdir / "server.properties"), "--ignore-formatted",
            *self._format_args(workdir), heap="256m")
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
            raise BrokerStartFailed(
                f"formatting the Kafka log dir failed (exit code {done.returncode}):\n{output}")

    def _format_args(self, workdir: Path) -> list[str]:
        """More ``kafka-storage format`` arguments (e.g. ``--add-scram`` users)."""
        return []

    def _command(self, workdir: Path) -> list[str]:
        return self._java_command(workdir, "kafka.Kafka", str(workdir / "server.properties"),
                                  heap=self.heap, jvm_options=self.jvm_options)

    def _choose_ports(self) -> None:
        self._port, self._controller_port = free_ports(2)


def main(argv: list[str] | None = None) -> int:
    """Fetch Kafka if needed and run it in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m brokers.apache_kafka",
        description="Run Apache Kafka (one KRaft node) on 127.0.0.1 until Ctrl-C. The jars "
                    "are fetched from Maven Central with mvn on first use and cached.")
    parser.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    parser.add_argument("--controller-port", type=int, default=None,
                        help="KRaft controller port (default: a free one)")
    parser.add_argument("--version", default=KAFKA_VERSION,
                        help=f"Apache Kafka version (default {KAFKA_VERSION})")
    parser.add_argument("--heap", default="1g",
                        help="JVM heap (default 1g, as Kafka's start script)")
    parser.add_argument("--fetch-only", action="store_true",
                        help="only fetch the jars into the cache, print their dir and exit")
    parser.add_argument("--quiet", action="store_true", help="do not copy the broker's log")
    args = parser.parse_args(argv)
    try:
        if args.fetch_only:
            print(fetch_kafka(args.version))
            return 0
        broker = ApacheKafkaBroker(port=args.port, controller_port=args.controller_port,
                                   version=args.version, heap=args.heap)
        return run_in_foreground(broker, follow_log=not args.quiet)
    except BrokerUnavailable as err:
        parser.exit(2, f"error: {err}\n")
    except BrokerStartFailed as err:
        parser.exit(1, f"error: {err}\n")


if __name__ == "__main__":
    raise SystemExit(main())
