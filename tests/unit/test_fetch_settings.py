"""The worker's clients take their settings (fetch wait and bytes, compression)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomon.settings import Settings
from anomon.worker.worker import Worker


@pytest.mark.asyncio
async def test_the_consumer_takes_the_fetch_settings(tmp_path: Path) -> None:
    settings = Settings(fetch_wait_ms=40, fetch_min_bytes=1234, data_dir=tmp_path)
    consumer = Worker(settings, partitions=1)._consumer()
    try:
        assert (consumer._fetch_max_wait_ms, consumer._fetch_min_bytes) == (40, 1234)
    finally:
        await consumer.stop()  # never started: only the client's resources to release



@pytest.mark.asyncio
@pytest.mark.parametrize(("setting", "expected"), [("none", None), ("lz4", "lz4"),
                                                   ("zstd", "zstd")])
async def test_the_producers_take_the_compression_setting(
        tmp_path: Path, setting: str, expected: str | None) -> None:
    settings = Settings(producer_compression=setting, data_dir=tmp_path)
    worker = Worker(settings, partitions=1)
    for producer in (worker._producer(), worker._producer("anomon-tx-0", linger_ms=0)):
        try:
            assert producer._compression_type == expected
        finally:
            await producer.stop()  # never started: only the client's resources to release
