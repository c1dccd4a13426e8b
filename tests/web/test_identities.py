"""Approver identities: parsing, groups, the token file, and the webhook token never approving."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from responder.settings import Settings
from responder.web.identities import load_approvers, parse_approvers


def test_names_groups_and_hashes() -> None:
    [alice, bob] = parse_approvers("alice:t1:sre|oncall, bob:t2", "X")
    assert (alice.name, alice.groups) == ("alice", frozenset({"sre", "oncall"}))
    assert bob.groups == frozenset()
    assert b"t1" not in alice.token_sha256
    assert alice.may_decide(("oncall",))
    assert alice.may_decide(())
    assert not bob.may_decide(("sre", "carol"))


@pytest.mark.parametrize("text", ["alice", "alice:", ":token"])
def test_malformed_entries_name_the_place_not_the_token(text: str) -> None:
    with pytest.raises(ValueError, match="X: entry 1") as caught:
        parse_approvers(text, "X")
    assert "token" not in str(caught.value).replace("name:token", "")


def test_token_file_and_env_are_merged(tmp_path: Path) -> None:
    path = tmp_path / "approvers"
    path.write_text("# on-call\ncarol:t3:sre\n")
    settings = Settings(approver_tokens=SecretStr("alice:t1"), approver_tokens_file=path)
    assert [a.name for a in load_approvers(settings)] == ["alice", "carol"]


def test_the_webhook_token_can_never_approve() -> None:
    settings = Settings(webhook_token=SecretStr("same"), approver_tokens=SecretStr("eve:same"))
    with pytest.raises(ValueError, match="RESPONDER_WEBHOOK_TOKEN"):
        load_approvers(settings)
