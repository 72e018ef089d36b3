"""Where a partition's encoded states live: memory, or a local RocksDB that outlives the process.

``store = "memory://"`` (the default) keeps them in a dict
(:class:`~anomon.worker.store.MemoryBackend`): a restarted worker reads its
partitions' changelog from the beginning.

``store = "rocksdb://"`` (needs the ``rocksdb`` extra, ``rocksdict``) keeps one
RocksDB directory per input partition under ``<data_dir>/state/``, with the
changelog offset it reflects in a file beside it. A restarted worker reads the
changelog only from that offset on: the changelog stays the truth, the local
copy only shortens recovery. Writes reach it only after the changelog
acknowledged them (or their transaction committed), so it is never ahead of
the changelog.

>>> backend_factory("memory://", Path("/nonexistent"), "app")(3).offset() is None
True
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from anomon.worker.store import Backend, MemoryBackend

BackendFactory = Callable[[int], Backend]


class RocksBackend:
    """Encoded states of one partition in a RocksDB directory, plus the changelog offset."""

    def __init__(self, path: Path) -> None:
        from rocksdict import Rdict  # the rocksdb extra

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db: Any = Rdict(str(path / "db"))
        self._offset_file = path / "offset.json"
        self._count: int | None = None

    def get(self, key: bytes) -> bytes | None:
        value = self.db.get(key)
        return bytes(value) if value is not None else None

    def put(self, key: bytes, value: bytes) -> None:
        self.db[key] = value
        self._count = None

    def delete(self, key: bytes) -> None:
        if self.db.get(key) is not None:
            del self.db[key]
            self._count = None

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self.db.items():
            yield bytes(key), bytes(value)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self.db.keys())  # noqa: SIM118 (Rdict iterates by index)
        return self._count

    def offset(self) -> int | None:
        try:
            return int(json.loads(self._offset_file.read_text())["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def set_offset(self, offset: int | None) -> None:
        if offset is None:
            self._offset_file.unlink(missing_ok=True)
            return
        tmp = self._offset_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"offset": offset}))
        os.replace(tmp, self._offset_file)

    def clear(self) -> None:
        self.set_offset(None)
        self.db.close()
        shutil.rmtree(self.path / "db", ignore_errors=True)
        from rocksdict import Rdict

        self.db = Rdict(str(self.path / "db"))
        self._count = None

    def close(self) -> None:
        self.db.close()


def backend_factory(store_url: str, data_dir: Path, app_id: str) -> BackendFactory:
    """Backends for ``store_url`` (``memory://`` or ``rocksdb://``), one per input partition."""
    scheme = store_url.split("://", 1)[0].lower()
    if scheme == "memory":
        return lambda partition: MemoryBackend()
    if scheme == "rocksdb":
        root = Path(data_dir) / "state" / app_id
        return lambda partition: RocksBackend(root / f"p{partition}")
    raise ValueError(f"unknown store {store_url!r}: use memory:// or rocksdb://")


def keeps_encoded(store_url: str) -> bool:
    """Whether the store keeps every state encoded (a persistent local copy)."""
    return not store_url.lower().startswith("memory")
