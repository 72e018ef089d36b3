"""How anomon's Kafka clients authenticate and encrypt: settings to client options.

Every client anomon opens (the Faust worker's consumer and producers, the
admin client that creates topics, the recovery probe, ``produce``, ``tail``,
``dlq``, ``erase``) takes its security options from here, so one set of
``ANOMON_SECURITY_PROTOCOL``, ``ANOMON_SASL_*`` and ``ANOMON_SSL_*`` variables
covers them all.

* ``PLAINTEXT``: no authentication, no encryption (a trusted network only);
* ``SSL``: TLS, the broker's certificate checked against ``ssl_cafile`` (or
  the system CAs), optionally a client certificate;
* ``SASL_PLAINTEXT``: SASL ``PLAIN`` or ``SCRAM-SHA-256/512`` without TLS
  (PLAIN then sends the password in clear: SCRAM, or better SASL_SSL);
* ``SASL_SSL``: SASL over TLS.

A setting that cannot work (SASL without a user name, a CA file that does not
exist) raises :class:`SecurityConfigError` before anything connects.

>>> from anomon.settings import Settings
>>> kafka_auth(Settings())
{'security_protocol': 'PLAINTEXT'}
>>> opts = kafka_auth(Settings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
...                            sasl_username="anomon", sasl_password="s3cret"))
>>> opts["sasl_mechanism"], opts["sasl_plain_username"]
('PLAIN', 'anomon')
>>> describe(Settings(security_protocol="SASL_SSL", sasl_username="anomon",
...                   sasl_password="s3cret"))
'SASL_SSL (SCRAM-SHA-512 as anomon)'
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context

from anomon.settings import Settings


class SecurityConfigError(ValueError):
    """Security settings that cannot work, with what to change."""


def _uses_tls(settings: Settings) -> bool:
    return settings.security_protocol in ("SSL", "SASL_SSL")


def _uses_sasl(settings: Settings) -> bool:
    return settings.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _existing(name: str, value: str) -> str | None:
    if not value:
        return None
    if not Path(value).is_file():
        raise SecurityConfigError(f"ANOMON_{name.upper()}={value}: no such file")
    return value


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of ``settings`` (``None`` without TLS)."""
    if not _uses_tls(settings):
        return None
    cafile = _existing("ssl_cafile", settings.ssl_cafile)
    certfile = _existing("ssl_certfile", settings.ssl_certfile)
    keyfile = _existing("ssl_keyfile", settings.ssl_keyfile)
    if keyfile and not certfile:
        raise SecurityConfigError("ANOMON_SSL_KEYFILE is set without ANOMON_SSL_CERTFILE")
    try:
        context = create_ssl_context(cafile=cafile, certfile=certfile, keyfile=keyfile)
    except (ssl.SSLError, OSError) as err:
        raise SecurityConfigError(f"cannot load the TLS files: {err}") from err
    context.check_hostname = settings.ssl_check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _check_sasl(settings: Settings) -> None:
    if _uses_sasl(settings) and not (settings.sasl_username
                                     and settings.sasl_password.get_secret_value()):
        raise SecurityConfigError(
            f"ANOMON_SECURITY_PROTOCOL={settings.security_protocol} needs "
            "ANOMON_SASL_USERNAME and ANOMON_SASL_PASSWORD")


def kafka_auth(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    _check_sasl(settings)
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if _uses_sasl(settings):
        options.update(sasl_mechanism=settings.sasl_mechanism,
                       sasl_plain_username=settings.sasl_username,
                       sasl_plain_password=settings.sasl_password.get_secret_value())
    return options


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """The ``broker_credentials`` of the Faust app (``None`` for PLAINTEXT)."""
    _check_sasl(settings)
    context = ssl_context(settings)
    if _uses_sasl(settings):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def describe(settings: Settings) -> str:
    """The security in use, for logs (never the password)."""
    if _uses_sasl(settings):
        return (f"{settings.security_protocol} ({settings.sasl_mechanism} as "
                f"{settings.sasl_username})")
    return settings.security_protocol
