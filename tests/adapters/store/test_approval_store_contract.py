"""The ApprovalStore contract: both store backends must pass these (fixtures: conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from responder.models.approvals import Approval, ApprovalState
from responder.ports.store import ApprovalStore
from tests.adapters.store.harnesses import StoreHarness
from tests.support.records import CEST, FULL, MINUTE, T0, make_approval


def decided(approval: Approval, state: ApprovalState, by: str = "alice") -> Approval:
    """`approval` decided by `by` one minute after it was requested."""
    update = {"state": state, "decided_by": by, "decided_at": approval.requested_at + MINUTE}
    return approval.model_copy(update=update)


async def test_every_field_round_trips(approval_store: ApprovalStore) -> None:
    await approval_store.save_approval(FULL)
    got = await approval_store.get_approval("a-full")
    assert got == FULL
    assert got is not None
    for at in (got.requested_at, got.expires_at, got.decided_at):
        assert at is not None
        assert at.utcoffset() == timedelta(0)
    assert got.approvers == ("alice", "group:sre", "zoë")
    minimal = make_approval("a-min")  # defaults: no approvers, params, decision or comment
    await approval_store.save_approval(minimal)
    assert await approval_store.get_approval("a-min") == minimal
    assert await approval_store.get_approval("missing") is None


async def test_save_twice_replaces(approval_store: ApprovalStore) -> None:
    await approval_store.save_approval(make_approval("a1"))
    changed = make_approval("a1", approvers=("bob",), params={"x": 1}, comment="again")
    await approval_store.save_approval(changed)
    assert await approval_store.get_approval("a1") == changed
    assert await approval_store.list_approvals() == [changed]


async def test_naive_times_and_bad_limits_are_refused(approval_store: ApprovalStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await approval_store.save_approval(make_approval("a1", requested_at=datetime(2024, 5, 1)))
    assert await approval_store.get_approval("a1") is None
    with pytest.raises(ValueError, match="limit"):
        await approval_store.list_approvals(limit=0)
    with pytest.raises(ValueError, match="limit"):
        await approval_store.expired_approvals(T0, 0)


async def test_replace_approval_if_decides_once(approval_store: ApprovalStore) -> None:
    pending = make_approval("a1")
    approved = decided(pending, ApprovalState.APPROVED)
    assert not await approval_store.replace_approval_if(approved, ApprovalState.PENDING)  # absent
    assert await approval_store.get_approval("a1") is None
    await approval_store.save_approval(pending)
    approved = approved.model_copy(update={"comment": "go", "source_ip": "10.0.0.7"})
    assert await approval_store.replace_approval_if(approved, ApprovalState.PENDING)
    assert await approval_store.get_approval("a1") == approved
    for state in (ApprovalState.APPROVED, ApprovalState.REJECTED, ApprovalState.EXPIRED):
        again = decided(pending, state, by="mallory")
        assert not await approval_store.replace_approval_if(again, ApprovalState.PENDING)
    assert await approval_store.get_approval("a1") == approved  # the first decision stands


async def test_every_state_is_storable_and_only_pending_changes(
    approval_store: ApprovalStore,
) -> None:
    for state in ApprovalState:
        await approval_store.save_approval(make_approval(f"a-{state.value}", state=state))
        assert (await approval_store.get_approval(f"a-{state.value}")) == make_approval(
            f"a-{state.value}", state=state
        )
    cancelled = make_approval("a-pending", state=ApprovalState.CANCELLED, comment="resolved")
    assert await approval_store.replace_approval_if(cancelled, ApprovalState.PENDING)
    assert not await approval_store.replace_approval_if(
        make_approval("a-pending"), ApprovalState.PENDING
    )
    assert await approval_store.get_approval("a-pending") == cancelled


async def test_concurrent_decisions_have_exactly_one_winner(
    store_harness: StoreHarness, approval_store: ApprovalStore
) -> None:
    other = await store_harness.open()  # a second replica on the same database
    for round_ in range(5):
        pending = make_approval(f"a{round_}")
        await approval_store.save_approval(pending)
        approve = decided(pending, ApprovalState.APPROVED, by="alice")
        reject = decided(pending, ApprovalState.REJECTED, by="bob")
        results = await asyncio.gather(
            approval_store.replace_approval_if(approve, ApprovalState.PENDING),
            other.replace_approval_if(reject, ApprovalState.PENDING),
        )
        assert results.count(True) == 1, results
        winner = approve if results[0] else reject
        assert await other.get_approval(pending.approval_id) == winner
        assert await approval_store.get_approval(pending.approval_id) == winner


async def test_list_approvals_filters_newest_first_with_a_limit(
    approval_store: ApprovalStore,
) -> None:
    made = [
        make_approval(f"a{i}", requested_at=T0 + i * MINUTE, run_id=run_id, state=state)
        for i, run_id, state in [
            (1, "r1", ApprovalState.APPROVED),
            (2, "r2", ApprovalState.PENDING),
            (3, "r1", ApprovalState.PENDING),
            (4, "r2", ApprovalState.REJECTED),
            (5, "r1", ApprovalState.PENDING),
        ]
    ]
    made.append(make_approval("a6", requested_at=made[-1].requested_at, run_id="r3"))  # a tie
    for approval in reversed(made):
        await approval_store.save_approval(approval)
    newest = sorted(made, key=lambda a: (a.requested_at, a.approval_id), reverse=True)
    assert [a.approval_id for a in newest] == ["a6", "a5", "a4", "a3", "a2", "a1"]
    assert await approval_store.list_approvals() == newest
    pending = await approval_store.list_approvals(ApprovalState.PENDING)
    assert [a.approval_id for a in pending] == ["a6", "a5", "a3", "a2"]
    by_run = await approval_store.list_approvals(run_id="r1")
    assert [a.approval_id for a in by_run] == ["a5", "a3", "a1"]
    both = await approval_store.list_approvals(ApprovalState.PENDING, run_id="r1")
    assert [a.approval_id for a in both] == ["a5", "a3"]
    assert [a.approval_id for a in await approval_store.list_approvals(limit=2)] == ["a6", "a5"]
    assert await approval_store.list_approvals(ApprovalState.PENDING, run_id="r2", limit=1) == [
        made[1]
    ]
    assert await approval_store.list_approvals(ApprovalState.CANCELLED) == []
    assert await approval_store.list_approvals(run_id="nope") == []


async def test_expired_approvals_are_pending_and_due_oldest_expiry_first(
    approval_store: ApprovalStore,
) -> None:
    for approval_id, state, expires_at in [
        ("now", ApprovalState.PENDING, T0 + 3 * MINUTE),  # expires exactly now: included
        ("early", ApprovalState.PENDING, T0 + MINUTE),
        ("tie-b", ApprovalState.PENDING, T0 + 2 * MINUTE),
        ("tie-a", ApprovalState.PENDING, T0 + 2 * MINUTE),
        ("future", ApprovalState.PENDING, T0 + 10 * MINUTE),
        ("approved", ApprovalState.APPROVED, T0),
        ("rejected", ApprovalState.REJECTED, T0),
        ("expired", ApprovalState.EXPIRED, T0),
        ("cancelled", ApprovalState.CANCELLED, T0),
    ]:
        await approval_store.save_approval(
            make_approval(approval_id, state=state, expires_at=expires_at)
        )
    now = (T0 + 3 * MINUTE).astimezone(CEST)
    found = await approval_store.expired_approvals(now, 10)
    assert [a.approval_id for a in found] == ["early", "tie-a", "tie-b", "now"]
    assert found[0] == make_approval("early", expires_at=T0 + MINUTE)
    assert [a.approval_id for a in await approval_store.expired_approvals(now, 2)] == [
        "early",
        "tie-a",
    ]
    assert await approval_store.expired_approvals(T0, 10) == []
