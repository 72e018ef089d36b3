"""Security settings become client options, or a clear error before anything connects."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from anomon.kafka.logs import customer_ref, set_pseudonym_key
from anomon.kafka.preflight import explain
from anomon.kafka.security import (
    SecurityConfigError,
    faust_credentials,
    kafka_auth,
    ssl_context,
)
from anomon.settings import Settings


def test_plaintext_by_default() -> None:
    assert kafka_auth(Settings()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(Settings()) is None


def test_sasl_needs_user_and_password() -> None:
    with pytest.raises(SecurityConfigError, match="ANOMON_SASL_USERNAME"):
        kafka_auth(Settings(security_protocol="SASL_SSL", sasl_username="u"))


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(SecurityConfigError, match="no such file"):
        ssl_context(Settings(security_protocol="SSL", ssl_cafile=str(missing)))


def test_sasl_ssl_gives_faust_sasl_credentials_with_tls() -> None:
    settings = Settings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                        sasl_username="anomon", sasl_password="pw")
    creds = faust_credentials(settings)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol.value == "SASL_SSL" and creds.mechanism.value == "SCRAM-SHA-512"
    context = kafka_auth(settings)["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert "pw" not in repr(settings) and "pw" not in repr(creds)


def test_tls_only_gives_ssl_credentials() -> None:
    creds = faust_credentials(Settings(security_protocol="SSL", ssl_check_hostname=False))
    assert isinstance(creds, faust.SSLCredentials) and not creds.context.check_hostname


def test_refusals_are_explained() -> None:
    from aiokafka.errors import SaslAuthenticationFailed

    text = explain(SaslAuthenticationFailed(), "h:1", "SASL_SSL (PLAIN as u)")
    assert text.startswith("authentication failed at h:1") and "ANOMON_SASL_PASSWORD" in text
    assert "TLS" in explain(ConnectionResetError(), "h:1", "SASL_SSL (PLAIN as u)")


def test_log_pseudonyms_are_keyed() -> None:
    set_pseudonym_key("key-one")
    first = customer_ref("c-1")
    assert first == customer_ref("c-1") and "c-1" not in first
    set_pseudonym_key("key-two")
    assert customer_ref("c-1") != first
    set_pseudonym_key("")
