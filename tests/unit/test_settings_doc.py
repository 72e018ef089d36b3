"""Every setting is documented where operators look for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomon.settings import Settings
from anomon.settings_doc import settings_rows

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize("doc", ["README.md", "anomon.env.example"])
def test_every_setting_is_documented(doc: str) -> None:
    text = (CONFIG / doc).read_text()
    missing = [var for var, _, _ in settings_rows() if var not in text]
    assert missing == [], f"document {missing} in config/{doc}"


def test_env_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMON_INPUT_TOPIC", "shop-events")
    monkeypatch.setenv("ANOMON_PARTITIONS", "12")
    settings = Settings()
    assert settings.input_topic == "shop-events" and settings.partitions == 12


def test_web_server_binds_loopback_by_default() -> None:
    assert Settings().web_host == "127.0.0.1"
