"""Every setting is documented where operators look for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomon.settings import Settings
from anomon.settings_doc import env_example, markdown_table, settings_rows

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


def test_the_documents_show_what_the_settings_say() -> None:
    """config/README.md's table and the env example are the rendered settings, defaults included."""
    readme = (CONFIG / "README.md").read_text()
    stale = [row.split(" | ")[0] for row in markdown_table().splitlines()[2:] if row not in readme]
    assert stale == [], f"regenerate these rows of config/README.md (markdown_table): {stale}"
    example = (CONFIG / "anomon.env.example").read_text()
    assert example.strip() == env_example().strip(), "regenerate config/anomon.env.example"
