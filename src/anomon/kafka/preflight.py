"""Check that the brokers let us in, before anything else starts: fail closed, and say why.

Kafka clients retry a refused connection quietly, forever, or give up with
"Unable to bootstrap": a worker with a wrong password, or TLS settings aimed at
a plaintext listener, would sit there looking alive. :func:`check_access`
connects to each bootstrap server once, with the configured security, sends a
metadata request, and turns each way this can fail into a
:class:`BrokerAccessError` whose message names the cause and the settings to
look at. The worker then exits with a non-zero code.

>>> explain(ssl.SSLCertVerificationError(1, "certificate verify failed"), "b:9093",
...         "SSL").split(";")[0]
'TLS handshake with b:9093 failed: the broker certificate is not trusted'
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from anomon.kafka.security import describe, kafka_auth
from anomon.kafka.topics import bootstrap_servers
from anomon.settings import Settings


class BrokerAccessError(RuntimeError):
    """The brokers cannot be reached or refuse us; the message says why."""


def explain(err: BaseException, address: str, security: str) -> str:
    """A message naming the cause of ``err`` met while connecting to ``address``."""
    if isinstance(err, SaslAuthenticationFailed):
        return (f"authentication failed at {address} ({security}): wrong user name or "
                "password, or the user is not known for that mechanism; check "
                "ANOMON_SASL_USERNAME, ANOMON_SASL_PASSWORD and ANOMON_SASL_MECHANISM")
    if isinstance(err, UnsupportedSaslMechanismError):
        return (f"{address} does not offer the SASL mechanism configured ({security}); "
                "check ANOMON_SASL_MECHANISM")
    if isinstance(err, IllegalSaslStateError):
        return (f"{address} does not expect SASL ({security}): is it a SASL listener? "
                "check ANOMON_BROKER and ANOMON_SECURITY_PROTOCOL")
    if isinstance(err, ssl.SSLCertVerificationError):
        why = getattr(err, "verify_message", None) or err
        return (f"TLS handshake with {address} failed: the broker certificate is not trusted; "
                f"{why}; check ANOMON_SSL_CAFILE (the CA that signed it) and "
                "ANOMON_SSL_CHECK_HOSTNAME")
    if isinstance(err, ssl.SSLError):
        return (f"TLS handshake with {address} failed ({err.reason or err}): is it a TLS "
                f"listener? ({security} is configured); check ANOMON_BROKER and "
                "ANOMON_SECURITY_PROTOCOL")
    if isinstance(err, ConnectionRefusedError):
        return f"nothing accepts connections at {address}; check ANOMON_BROKER"
    if isinstance(err, TimeoutError):
        return (f"{address} did not answer in time ({security}): a TLS or SASL listener "
                "spoken to in the wrong protocol stays silent; check ANOMON_BROKER and "
                "ANOMON_SECURITY_PROTOCOL")
    if isinstance(err, KafkaConnectionError | ConnectionError | EOFError) and "SSL" in security:
        return (f"{address} closed the connection before TLS was set up ({security}): is it "
                "a TLS listener? check ANOMON_BROKER and ANOMON_SECURITY_PROTOCOL")
    if isinstance(err, KafkaConnectionError | ConnectionError | EOFError):
        return (f"{address} closed the connection ({security}): it expects another "
                "protocol (TLS or SASL where none is configured, or none where one is); "
                "check ANOMON_BROKER and ANOMON_SECURITY_PROTOCOL")
    return f"cannot talk to {address} ({security}): {type(err).__name__}: {err}"


async def _probe(host: str, port: int, options: dict[str, object], timeout_s: float) -> None:
    conn = await asyncio.wait_for(
        create_conn(host, port, client_id="anomon-preflight",
                    request_timeout_ms=int(timeout_s * 1000), **options),
        timeout_s)
    try:
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
    finally:
        conn.close()


async def check_access(settings: Settings, timeout_s: float = 10.0) -> None:
    """Connect to every bootstrap server; raise :class:`BrokerAccessError` unless one lets us in.

    One reachable server suffices (as for any Kafka client); the error names
    what went wrong at each.
    """
    options = kafka_auth(settings)
    security = describe(settings)
    problems = []
    for address in bootstrap_servers(settings.broker).split(","):
        host, _, port = address.rpartition(":")
        try:
            await _probe(host.strip("[]"), int(port), options, timeout_s)
        except (TimeoutError, OSError, KafkaError, EOFError) as err:
            problems.append(explain(err, address, security))
            continue
        return
    raise BrokerAccessError("; and ".join(problems) if problems else "no broker configured")
