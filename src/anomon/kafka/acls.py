"""The Kafka ACLs anomon's processes need, and nothing more: one list for docs, tests and admins.

On a cluster with an authorizer, grant the worker's principal exactly
:func:`worker_acls` and set ``ANOMON_TOPICS=check`` (the topics are created
beforehand by their owner, e.g. with ``config/kafka/create-topics.sh``); the
forwarder needs :func:`forward_acls`. READ and WRITE imply DESCRIBE in Kafka's
authorizers, so DESCRIBE is not listed apart. The integration test
``tests/integration/test_acls.py`` grants exactly this list on an Apache Kafka
with ``StandardAuthorizer`` and runs a worker there; ``config/README.md`` shows
the list as :func:`markdown` renders it (a unit test keeps the two equal).

Print the ``kafka-acls.sh`` commands for your settings with
``python -m anomon.kafka.acls User:anomon`` (``ANOMON_*`` variables apply).

>>> from anomon.settings import Settings
>>> [str(a) for a in worker_acls(Settings()) if a.resource == "GROUP"]
['GROUP anomon: READ']
>>> [str(a) for a in worker_acls(Settings(processing_guarantee="exactly_once"))
...  if a.resource == "TRANSACTIONAL_ID"]
['TRANSACTIONAL_ID anomon- (prefixed): WRITE, DESCRIBE']
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

from anomon.kafka.topics import changelog_topic
from anomon.settings import Settings

Resource = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"]

#: Kafka's protocol codes (CreateAcls, DescribeAcls).
RESOURCE_CODES = {"TOPIC": 2, "GROUP": 3, "TRANSACTIONAL_ID": 5}
OPERATION_CODES = {"READ": 3, "WRITE": 4, "DESCRIBE": 8, "DESCRIBE_CONFIGS": 10}
PATTERN_CODES = {"literal": 3, "prefixed": 4}


@dataclass(frozen=True, slots=True)
class Acl:
    """Operations allowed on one resource (a name, or every name with a prefix)."""

    resource: Resource
    name: str
    operations: tuple[Operation, ...]
    pattern: Literal["literal", "prefixed"] = "literal"
    why: str = ""

    def __str__(self) -> str:
        kind = " (prefixed)" if self.pattern == "prefixed" else ""
        return f"{self.resource} {self.name}{kind}: {', '.join(self.operations)}"

    def kafka_acls_command(self, principal: str, bootstrap: str = "BROKER:9092") -> str:
        """The ``kafka-acls.sh`` command that grants this to ``principal``."""
        flag = {"TOPIC": "--topic", "GROUP": "--group",
                "TRANSACTIONAL_ID": "--transactional-id"}[self.resource]
        ops = " ".join(f"--operation {op.title().replace('_', '')}" for op in self.operations)
        pattern = " --resource-pattern-type prefixed" if self.pattern == "prefixed" else ""
        return (f"kafka-acls.sh --bootstrap-server {bootstrap} --add --allow-principal "
                f"{principal} {ops} {flag} {self.name}{pattern}")


def worker_acls(settings: Settings) -> list[Acl]:
    """What ``anomon worker`` does on Kafka with ``ANOMON_TOPICS=check``."""
    changelog = changelog_topic(settings.app_id)
    acls = [
        Acl("TOPIC", settings.input_topic, ("READ",), why="consume customer events"),
        Acl("TOPIC", settings.erasure_topic, ("READ",), why="consume erasure requests"),
        Acl("TOPIC", changelog, ("READ", "WRITE", "DESCRIBE_CONFIGS"),
            why="customer state: recover, write, check it is compacted"),
        Acl("TOPIC", settings.alerts_topic, ("WRITE",), why="publish alerts"),
        Acl("TOPIC", settings.dlq_topic, ("WRITE",), why="dead-letter rejected records"),
        Acl("TOPIC", settings.late_topic, ("WRITE",), why="forward late events"),
        Acl("GROUP", settings.app_id, ("READ",), why="join the group, commit offsets"),
    ]
    if settings.processing_guarantee == "exactly_once":
        acls.append(Acl("TRANSACTIONAL_ID", f"{settings.app_id}-", ("WRITE", "DESCRIBE"),
                        pattern="prefixed",
                        why="exactly_once only: a transactional producer per input partition"))
    return acls


def forward_acls(settings: Settings) -> list[Acl]:
    """What ``anomon forward`` does on Kafka with ``ANOMON_TOPICS=check``."""
    group = settings.forward_group or f"{settings.app_id}-forward"
    return [Acl("TOPIC", settings.alerts_topic, ("READ",), why="consume alerts"),
            Acl("GROUP", group, ("READ",), why="join its group, commit offsets")]


def markdown(settings: Settings | None = None) -> str:
    """The ACL tables of ``config/README.md`` (default settings)."""
    settings = settings or Settings.model_construct()
    lines = []
    for title, acls in (("worker", worker_acls(settings.model_copy(
            update={"processing_guarantee": "exactly_once"}))),
                        ("forward", forward_acls(settings))):
        lines += [f"| {title}: resource | name | operations | why |", "| --- | --- | --- | --- |"]
        for acl in acls:
            name = f"`{acl.name}`" + (" (prefix)" if acl.pattern == "prefixed" else "")
            lines.append(f"| {acl.resource} | {name} | {', '.join(acl.operations)} | {acl.why} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the ``kafka-acls.sh`` commands for a principal (``User:NAME``)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or not args[0].startswith("User:"):
        print("usage: python -m anomon.kafka.acls User:NAME [worker|forward]", file=sys.stderr)
        return 2
    settings = Settings()
    role = args[1] if len(args) > 1 else "worker"
    acls = forward_acls(settings) if role == "forward" else worker_acls(settings)
    for acl in acls:
        print(acl.kafka_acls_command(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
