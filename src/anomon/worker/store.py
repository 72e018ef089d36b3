"""Customer state behind get/set/delete: live objects in front, encoded bytes behind.

Record handling (:mod:`anomon.worker.handler`) sees a :class:`StateStore`: ``get``,
``store[id] = state`` and ``pop``. A plain ``dict`` satisfies it, which is how the
handler is unit-tested. The worker gives it one :class:`PartitionStore` per
assigned input partition:

* a state restored from the changelog is kept as the bytes read there and
  decoded on first touch (recovery costs a read, not a parse);
* a touched state stays a live object: the next event of that customer costs
  no decode and no encode;
* what a batch changed is remembered (``dirty``) and encoded once per batch by
  :meth:`PartitionStore.take_changes`, for the changelog;
* a state that cannot be decoded (corrupt, another version) is reported through
  ``on_unreadable`` and dropped: the customer starts fresh.

Behind the live objects is a :class:`Backend` of encoded bytes: memory (a dict)
or a local RocksDB directory (:mod:`anomon.worker.local_store`) that keeps its
copy across restarts, with the changelog as the truth.

>>> store = PartitionStore(0, MemoryBackend(), on_unreadable=lambda cid, err: None)
>>> store.restore(b"c1", b"garbage"); store.get("c1") is None
True
>>> sorted(store.take_changes().items())
[]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from anomon.core.errors import StateVersionError
from anomon.core.state import CustomerState

UNREADABLE = (StateVersionError, TypeError, ValueError, KeyError)


class StateStore(Protocol):
    """What record handling needs of a state store (a ``dict`` satisfies it)."""

    def get(self, key: str, /) -> CustomerState | None: ...

    def __setitem__(self, key: str, value: CustomerState, /) -> None: ...

    def pop(self, key: str, default: None = None, /) -> CustomerState | None: ...

    def __contains__(self, key: object, /) -> bool: ...


class Backend(Protocol):
    """Encoded states of one partition, and the changelog offset they reflect."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def items(self) -> Iterator[tuple[bytes, bytes]]: ...

    def __len__(self) -> int: ...

    def offset(self) -> int | None:
        """The changelog offset after the last record applied here (None: unknown)."""
        ...

    def set_offset(self, offset: int | None) -> None: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


class MemoryBackend:
    """Encoded states in a dict; nothing survives the process."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self._offset: int | None = None

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)

    def offset(self) -> int | None:
        return self._offset

    def set_offset(self, offset: int | None) -> None:
        self._offset = offset

    def clear(self) -> None:
        self.data.clear()
        self._offset = None

    def close(self) -> None:
        pass


class PartitionStore:
    """The states of one input partition: a :class:`StateStore` with lazy decoding.

    ``live`` holds decoded states; the backend holds the encoded ones. With the
    memory backend a state is in one of the two, never both (a decoded state's
    bytes are dropped), so memory is paid once per customer.
    """

    def __init__(self, partition: int, backend: Backend,
                 on_unreadable: Callable[[str, Exception], None],
                 keep_encoded: bool = False) -> None:
        self.partition = partition
        self.backend = backend
        self.on_unreadable = on_unreadable
        #: keep the bytes behind a live state (a local store that must stay complete)
        self.keep_encoded = keep_encoded
        #: filled by a standby replica up to ``backend.offset()``: a restore resumes there
        self.warm = False
        self.live: dict[str, CustomerState] = {}
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()
        #: set since the loop last looked (:meth:`take_fresh`), for the sweep index
        self.fresh: set[str] = set()

    # -- StateStore ------------------------------------------------------------

    def get(self, key: str, /) -> CustomerState | None:
        state = self.live.get(key)
        if state is not None:
            return state
        raw = self.backend.get(key.encode())
        if raw is None:
            return None
        try:
            state = CustomerState.from_bytes(raw)
        except UNREADABLE as err:
            self.on_unreadable(key, err)
            if not self.keep_encoded:
                self.backend.delete(key.encode())
            return None
        self.live[key] = state
        if not self.keep_encoded:
            self.backend.delete(key.encode())
        return state

    def __setitem__(self, key: str, value: CustomerState, /) -> None:
        live = self.live
        if key in live:  # the most recently changed last: :meth:`shrink` drops from the front
            del live[key]
        live[key] = value
        self.dirty.add(key)
        self.fresh.add(key)
        self.deleted.discard(key)

    def pop(self, key: str, default: None = None, /) -> CustomerState | None:
        """Forget ``key`` here and, at the next :meth:`take_changes`, in the changelog."""
        state = self.live.pop(key, None)
        self.backend.delete(key.encode())
        self.dirty.discard(key)
        self.fresh.discard(key)
        self.deleted.add(key)
        return state

    def __contains__(self, key: object, /) -> bool:
        return isinstance(key, str) and (
            key in self.live or self.backend.get(key.encode()) is not None)

    # -- the worker's side -----------------------------------------------------

    def touch(self, key: str) -> None:
        """Mark a live state changed in place (the sweep mutates states it got)."""
        if key in self.live:
            self.dirty.add(key)

    def restore(self, key: bytes, value: bytes | None) -> None:
        """Apply one changelog record (``None``: a tombstone)."""
        customer = key.decode("utf-8", "replace")
        self.live.pop(customer, None)
        if value is None:
            self.backend.delete(key)
        else:
            self.backend.put(key, value)

    def take_fresh(self) -> set[str]:
        """Customers set since the last call (changed or not since by another batch)."""
        fresh, self.fresh = self.fresh, set()
        return fresh

    def take_changes(self) -> dict[bytes, bytes | None]:
        """Encoded states changed since the last call (``None``: deleted); marks them clean."""
        changed, deleted = self.take_dirty()
        out: dict[bytes, bytes | None] = {}
        live = self.live
        for key in changed:
            state = live.get(key)
            if state is not None:
                out[key.encode()] = state.to_bytes()
        for key in deleted:
            out[key.encode()] = None
        return out

    def take_dirty(self) -> tuple[set[str], set[str]]:
        """Customers changed and deleted since the last call, not yet encoded; marks them clean.

        For encoding in pieces: a customer changed again before being encoded is
        encoded as it is then, and again at the next call (it is dirty again).
        """
        changed, deleted = self.dirty, self.deleted
        self.dirty, self.deleted = set(), set()
        return changed, deleted

    def shrink(self, limit: int) -> int:
        """Keep at most ``limit`` states decoded, dropping the least recently changed clean ones.

        A dropped state is read again from the backend on its next touch: the local
        store already has its bytes (call this only once the changes are persisted),
        the memory store gets them now. Returns how many were dropped.
        """
        live = self.live
        excess = len(live) - limit
        if excess <= 0:
            return 0
        dropped = 0
        for key in list(live)[:excess + len(self.dirty)]:
            if dropped >= excess:
                break
            if key in self.dirty:
                continue
            state = live.pop(key)
            if not self.keep_encoded:
                self.backend.put(key.encode(), state.to_bytes())
            dropped += 1
        return dropped

    def persist(self, changes: dict[bytes, bytes | None], changelog_end: int | None) -> None:
        """Changes the changelog acknowledged, into a local store that keeps its copy.

        ``changelog_end``: the changelog offset after them (where a restart resumes).
        """
        if not self.keep_encoded:
            return
        deleted = self.deleted
        for key, value in changes.items():
            if value is None:
                self.backend.delete(key)
            elif not deleted or key.decode("utf-8", "replace") not in deleted:
                self.backend.put(key, value)
            # else erased while the changes were written: its bytes must not come back
            # (its tombstone goes with the next commit)
        if changelog_end is not None:
            self.backend.set_offset(changelog_end)

    def customers(self) -> Iterator[str]:
        """Every customer id held (live or encoded)."""
        seen = set(self.live)
        yield from list(self.live)
        for key, _ in self.backend.items():
            customer = key.decode("utf-8", "replace")
            if customer not in seen:
                yield customer

    def __len__(self) -> int:
        if self.keep_encoded:
            return len(self.backend)
        return len(self.live) + len(self.backend)

    def close(self) -> None:
        self.live.clear()
        self.dirty.clear()
        self.deleted.clear()
        self.fresh.clear()
        self.backend.close()

