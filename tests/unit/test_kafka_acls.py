"""The ACL list: what the docs show is what the code (and the ACL integration test) grants."""

from __future__ import annotations

import re
from pathlib import Path

from anomon.kafka.acls import forward_acls, main, markdown, worker_acls
from anomon.settings import Settings

README = Path(__file__).resolve().parents[2] / "config" / "README.md"


def test_the_readme_shows_the_list_the_code_grants() -> None:
    text = README.read_text()
    block = re.search(r"<!-- acls:begin[^>]*-->\n(.*?)<!-- acls:end -->", text, re.S)
    assert block, "config/README.md has no acls:begin/acls:end block"
    assert block.group(1) == markdown(), "regenerate with anomon.kafka.acls.markdown()"


def test_no_create_and_no_cluster_right_is_ever_asked() -> None:
    for guarantee in ("at_least_once", "exactly_once"):
        settings = Settings(processing_guarantee=guarantee)
        for acl in [*worker_acls(settings), *forward_acls(settings)]:
            assert "CREATE" not in acl.operations and acl.resource != "CLUSTER"  # type: ignore[comparison-overlap]


def test_transactional_ids_only_with_exactly_once() -> None:
    kinds = {a.resource for a in worker_acls(Settings())}
    assert "TRANSACTIONAL_ID" not in kinds
    eos = [a for a in worker_acls(Settings(processing_guarantee="exactly_once"))
           if a.resource == "TRANSACTIONAL_ID"]
    assert [(a.name, a.pattern) for a in eos] == [("anomon-", "prefixed")]


def test_the_list_follows_the_settings() -> None:
    settings = Settings(app_id="shop", input_topic="in", alerts_topic="out",
                        forward_group="pager")
    names = {(a.resource, a.name) for a in worker_acls(settings)}
    assert {("TOPIC", "in"), ("TOPIC", "out"), ("GROUP", "shop"),
            ("TOPIC", "shop-customers-changelog")} <= names
    assert {(a.resource, a.name) for a in forward_acls(settings)} == {("TOPIC", "out"),
                                                                      ("GROUP", "pager")}


def test_kafka_acls_commands_are_printed(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["User:svc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(worker_acls(Settings()))
    assert all("--allow-principal User:svc" in line and "--add" in line for line in lines)
    assert any("--operation DescribeConfigs --topic anomon-customers-changelog" in line
               for line in lines)
    assert main([]) == 2
