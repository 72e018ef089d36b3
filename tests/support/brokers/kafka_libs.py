"""The Apache Kafka jars, fetched once from Maven Central with Maven and kept in a cache dir.

The dependency list is ``scripts/kafka/pom.xml``; the Kafka version is passed to it
as ``-Dkafka.version``. The jars land in ``<cache>/kafka-<version>/libs`` where
``<cache>`` is ``$ANOMON_KAFKA_CACHE`` or else ``~/.cache/anomon`` (under
``$XDG_CACHE_HOME`` when that is set).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from brokers.errors import DownloadFailed, MavenNotFound

#: The Apache Kafka release run by default (a KRaft-only 4.x line, Scala 2.13 build).
KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
CACHE_ENV = "ANOMON_KAFKA_CACHE"
POM_ENV = "ANOMON_KAFKA_POM"
_COMPLETE = ".complete"


def cache_root() -> Path:
    """Where fetched Kafka releases are kept."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "anomon"


def libs_dir(version: str = KAFKA_VERSION) -> Path:
    """The dir holding every jar of Kafka ``version`` (it may not exist yet)."""
    return cache_root() / f"kafka-{version}" / "libs"


def is_fetched(version: str = KAFKA_VERSION) -> bool:
    """Whether Kafka ``version`` is complete in the cache."""
    return (libs_dir(version).parent / _COMPLETE).exists()


def pom_path() -> Path:
    """The POM naming Kafka's artifacts: ``$ANOMON_KAFKA_POM`` or ``scripts/kafka/pom.xml``."""
    override = os.environ.get(POM_ENV)
    candidates = [Path(override)] if override else []
    candidates.append(Path(__file__).resolve().parents[3] / "scripts" / "kafka" / "pom.xml")
    candidates.append(Path.cwd() / "scripts" / "kafka" / "pom.xml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DownloadFailed(
        "cannot fetch Apache Kafka: scripts/kafka/pom.xml was not found next to the "
        f"anomon sources; run from the repository or set {POM_ENV} to that file")


def maven() -> str:
    """The ``mvn`` executable."""
    found = shutil.which("mvn")
    if found is None:
        raise MavenNotFound(
            "cannot fetch Apache Kafka: Maven (mvn) is not on PATH "
            "(Debian/Ubuntu: apt-get install maven)")
    return found


def fetch_kafka(version: str = KAFKA_VERSION, *, timeout: float = 900.0) -> Path:
    """Return the dir of Kafka ``version``'s jars, fetching them first if not cached.

    Safe to call from several processes at once: one fetches, the others wait.
    """
    libs = libs_dir(version)
    home = libs.parent
    if is_fetched(version):
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home / ".lock"):
        if is_fetched(version):
            return libs
        partial = home / f"libs.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        command = [maven(), "-B", "-q", "-Dstyle.color=never", "-f", str(pom_path()),
                   "dependency:copy-dependencies",
                   f"-DoutputDirectory={partial}", f"-Dkafka.version={version}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as err:
            shutil.rmtree(partial, ignore_errors=True)
            raise DownloadFailed(
                f"fetching Apache Kafka {version} with Maven took over {timeout:.0f} s") from err
        main_jar = partial / f"kafka_{SCALA_VERSION}-{version}.jar"
        if done.returncode != 0 or not main_jar.is_file():
            shutil.rmtree(partial, ignore_errors=True)
            output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
            raise DownloadFailed(
                f"fetching Apache Kafka {version} from Maven Central failed "
                f"(mvn exit code {done.returncode}):\n{output}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        jars = sorted(path.name for path in libs.glob("*.jar"))
        (home / _COMPLETE).write_text("\n".join(jars) + "\n")
    return libs


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
