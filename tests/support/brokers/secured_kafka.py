"""Apache Kafka with SASL and TLS listeners, and the certificates it needs, made on the spot.

:class:`SecuredKafkaBroker` is an :class:`~brokers.apache_kafka.ApacheKafkaBroker`
with four client listeners on loopback:

=================  ===================================================
``PLAINTEXT``      ``port`` (also used to tell that the broker is up)
``SASL_PLAINTEXT`` ``sasl_port``: SASL PLAIN and SCRAM-SHA-512
``SASL_SSL``       ``sasl_ssl_port``: the same over TLS
``SSL``            ``ssl_port``: TLS only
=================  ===================================================

Its users (name -> password) are known to both mechanisms: PLAIN from the
listener's JAAS configuration, SCRAM-SHA-512 from ``kafka-storage format
--add-scram``. The TLS certificate is signed by a CA made for this broker alone
(:func:`make_tls_files`, with ``openssl``); clients trust ``tls.ca_pem``.
Nothing here is meant for production: it lets tests connect the way a secured
production cluster is connected to.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brokers.apache_kafka import ApacheKafkaBroker
from brokers.errors import BrokerUnavailable
from brokers.ports import LOOPBACK, free_ports

SCRAM = "SCRAM-SHA-512"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A CA, and a broker key and certificate it signed (for ``127.0.0.1`` and ``localhost``)."""

    ca_pem: Path
    keystore: Path  # PKCS#12: the broker's key and certificate chain
    password: str


def make_tls_files(directory: Path, days: int = 2) -> TlsFiles:
    """Make a throwaway CA and a broker certificate in ``directory`` with ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BrokerUnavailable("openssl is needed to make the test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(12)
    ext = directory / "san.ext"
    ext.write_text(f"subjectAltName=IP:{LOOPBACK},DNS:localhost\n")

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True,
                              check=False, timeout=60)
        if done.returncode != 0:
            raise BrokerUnavailable(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", str(days), "-subj", "/CN=anomon test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", "/CN=localhost")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "broker.pem", "-days", str(days), "-extfile", ext.name)
    run("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem",
        "-out", "broker.p12", "-passout", f"pass:{password}")
    return TlsFiles(ca_pem=directory / "ca.pem", keystore=directory / "broker.p12",
                    password=password)


class SecuredKafkaBroker(ApacheKafkaBroker):
    """Apache Kafka with SASL_PLAINTEXT, SASL_SSL and SSL listeners (see the module docstring)."""

    def __init__(self, users: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, password in users.items():
            if not (name.isalnum() and password.isalnum()):
                raise ValueError("user names and passwords here are letters and digits only")
        self.users = dict(users)
        self._extra_ports = self._other_free_ports()
        self.tls: TlsFiles | None = None

    def _other_free_ports(self) -> tuple[int, int, int]:
        taken = {self.port, self.controller_port}
        ports = [p for p in free_ports(5) if p not in taken][:3]
        return ports[0], ports[1], ports[2]

    @property
    def sasl_port(self) -> int:
        return self._extra_ports[0]

    @property
    def sasl_ssl_port(self) -> int:
        return self._extra_ports[1]

    @property
    def ssl_port(self) -> int:
        return self._extra_ports[2]

    def bootstrap_for(self, protocol: str) -> str:
        """``127.0.0.1:PORT`` of the listener speaking ``protocol``."""
        port = {"PLAINTEXT": self.port, "SASL_PLAINTEXT": self.sasl_port,
                "SASL_SSL": self.sasl_ssl_port, "SSL": self.ssl_port}[protocol]
        return f"{LOOPBACK}:{port}"

    def config(self, workdir: Path) -> dict[str, str]:
        config = super().config(workdir)
        listeners = {"PLAINTEXT": self.port, "SASL_PLAINTEXT": self.sasl_port,
                     "SASL_SSL": self.sasl_ssl_port, "SSL": self.ssl_port}
        client = ",".join(f"{name}://{LOOPBACK}:{port}" for name, port in listeners.items())
        config.update({
            "listeners": f"{client},CONTROLLER://{LOOPBACK}:{self.controller_port}",
            "advertised.listeners": client,
            "listener.security.protocol.map": ",".join(
                [f"{name}:{name}" for name in listeners] + ["CONTROLLER:PLAINTEXT"]),
            "sasl.enabled.mechanisms": f"PLAIN,{SCRAM}",
        })
        plain_users = " ".join(f'user_{name}="{pw}"' for name, pw in self.users.items())
        for listener in ("sasl_plaintext", "sasl_ssl"):
            prefix = f"listener.name.{listener}"
            config[f"{prefix}.plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required "
                f"{plain_users};")
            config[f"{prefix}.{SCRAM.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;")
        if self.tls is not None:
            config.update({
                "ssl.keystore.type": "PKCS12",
                "ssl.keystore.location": str(self.tls.keystore),
                "ssl.keystore.password": self.tls.password,
                "ssl.key.password": self.tls.password,
                "ssl.client.auth": "none",
            })
        return config

    def _prepare(self, workdir: Path) -> None:
        self.tls = make_tls_files(workdir / "tls")
        super()._prepare(workdir)

    def _format_args(self, workdir: Path) -> list[str]:
        args = []
        for name, password in self.users.items():
            args += ["--add-scram", f"{SCRAM}=[name={name},password={password}]"]
        return args

    def _choose_ports(self) -> None:
        super()._choose_ports()
        self._extra_ports = self._other_free_ports()
