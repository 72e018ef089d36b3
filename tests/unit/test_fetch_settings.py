"""The input consumer fetches as the settings say (fetch_wait_ms, fetch_min_bytes)."""

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

