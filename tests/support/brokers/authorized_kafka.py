"""Apache Kafka with an authorizer: only super users and what ACLs grant may act.

:class:`AuthorizedKafkaBroker` is a :class:`~brokers.secured_kafka.SecuredKafkaBroker`
(SASL and TLS listeners) with KRaft's ``StandardAuthorizer`` and
``allow.everyone.if.no.acl.found=false``. The PLAINTEXT listener's principal,
``User:ANONYMOUS``, is the super user: the broker's own traffic and the test's
setup (topics, ACLs, test records) go through it. SASL users have no rights
until :func:`grant` gives them some, with CreateAcls requests over that
listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from brokers.secured_kafka import SecuredKafkaBroker

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SUPER_USER = "User:ANONYMOUS"
ANY_HOST = "*"
ALLOW = 3  # AclPermissionType.ALLOW


class AclGrantFailed(RuntimeError):
    """The broker refused a CreateAcls request."""


class AuthorizedKafkaBroker(SecuredKafkaBroker):
    """A :class:`SecuredKafkaBroker` that authorizes every request (see the module docstring)."""

    def config(self, workdir: Any) -> dict[str, str]:
        config = super().config(workdir)
        config.update({
            "authorizer.class.name": AUTHORIZER,
            "super.users": SUPER_USER,
            "allow.everyone.if.no.acl.found": "false",
        })
        return config


def grant(bootstrap: str, principal: str,
          bindings: Iterable[tuple[int, str, int, int]]) -> int:
    """Allow ``principal`` each (resource type, name, pattern type, operation) code tuple.

    Sent as the super user over the PLAINTEXT listener at ``bootstrap``.
    Returns how many ACLs were created.
    """
    wanted = list(bindings)

    async def run() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-acls")
        await admin.start()
        try:
            for resource, name, pattern, operation in wanted:
                request = CreateAclsRequest(resource, name, pattern, principal, ANY_HOST,
                                            operation, ALLOW)
                response = await admin._send_request(request)
                for code, message in response.creation_responses:
                    if code != 0:
                        raise AclGrantFailed(f"{principal} {operation} on {name}: "
                                             f"error {code} {message}")
            return len(wanted)
        finally:
            await admin.close()

    return asyncio.run(run())
