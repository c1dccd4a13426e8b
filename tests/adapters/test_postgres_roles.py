"""The PostgreSQL store's two roles: the owner migrates and prunes, the runtime role serves and
cannot rewrite the audit (responder/adapters/store/postgres/roles.py, migration 0003).

Real server (tests/postgres_service.py); each test gets a throwaway owner role, runtime role
and schema (tests/support/postgres_roles.py), dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from responder.adapters.store.postgres import migrating, roles
from responder.adapters.store.postgres.store import PostgresStore
from responder.errors import StoreUnavailableError
from responder.models.approvals import ApprovalState
from responder.models.runs import AuditEvent, AuditKind, RunQuery, RunState, StepState
from tests.support.postgres_roles import Roles, owner_and_runtime
from tests.support.records import MINUTE, T0, make_alert, make_approval, make_delivery, make_run

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def postgres_roles(postgres_dsn: str) -> Iterator[Roles]:
    """An owner role, a runtime role and an empty schema the owner owns."""
    with owner_and_runtime(postgres_dsn) as made:
        yield made


@pytest.fixture
async def granted(postgres_roles: Roles) -> Roles:
    """The schema migrated by the owner, the runtime role given its privileges."""
    await migrating.migrate(
        postgres_roles.owner_dsn, timeout_seconds=10, runtime_role=postgres_roles.runtime
    )
    return postgres_roles


def connect(dsn: str) -> Conn:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def refused(conn: Conn, statement: str, match: str) -> None:
    """`statement` fails with an error matching `match` (and changes nothing)."""
    with pytest.raises(psycopg.Error, match=match):
        conn.execute(statement.encode())


def seed_audit_and_approvals(owner_dsn: str) -> None:
    """Two audit rows, a pending approval `p` and an approved one `d`, written by the owner."""
    with connect(owner_dsn) as conn:
        conn.execute(
            "INSERT INTO audit_events (at, kind, actor, run_id) VALUES "
            "(now() - interval '200 days', 'run_planned', 'engine', 'r1'), "
            "(now(), 'run_finished', 'engine', 'r1')"
        )
        for approval_id, state in (("p", "pending"), ("d", "approved")):
            conn.execute(
                "INSERT INTO approvals (approval_id, run_id, step_id, rule_id, state, reason, "
                "requested_at, expires_at, action, decided_by) VALUES "
                "(%s, 'r1', 's', 'rule-a', %s, 'rule', now(), now() + interval '1 hour', "
                "'k8s.scale', CASE WHEN %s = 'approved' THEN 'alice' END)",
                (approval_id, state, state),
            )


async def test_the_runtime_role_can_do_what_serve_does(granted: Roles) -> None:
    store = await PostgresStore.open(granted.runtime_dsn, timeout_seconds=5, pool_max=2)
    try:
        await store.check_writable()
        [stored] = await store.record_delivery(make_delivery(make_alert(1)), T0)
        assert [a.alert_id for a in await store.unprocessed_alerts(10)] == [stored.alert_id]
        await store.mark_alert_processed(stored.alert_id, T0)
        assert await store.unprocessed_alerts(10) == []
        assert await store.get_alert(stored.alert_id) is not None

        planned = AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r1")
        alert = make_alert(1)
        run = make_run("r1", alert_id=stored.alert_id, alert_identity=alert.identity)
        await store.save_run(run, [planned])
        await store.save_run(run.model_copy(update={"steps": run.steps[:1]}))  # steps replaced
        moved = run.steps[0].model_copy(update={"state": StepState.RUNNING})
        await store.save_steps(run.model_copy(update={"steps": (moved,)}), ["state"])  # upsert
        finished = run.model_copy(update={"state": RunState.SUCCEEDED, "steps": run.steps[:1]})
        assert await store.replace_run_if(finished, RunState.RUNNING)
        assert await store.get_run("r1") == finished
        assert [r.run_id for r in await store.list_runs(RunQuery(limit=10))] == ["r1"]
        assert await store.open_runs() == []
        assert await store.due_runs(T0, 10) == []
        assert await store.has_run("rule-a", alert)

        done = AuditEvent(kind=AuditKind.RUN_FINISHED, at=T0 + MINUTE, run_id="r1")
        await store.append_audit([done])
        assert [e.kind for e in await store.audit_for_run("r1")] == [
            AuditKind.RUN_PLANNED,
            AuditKind.RUN_FINISHED,
        ]

        pending = make_approval("a1")
        await store.save_approval(pending)
        await store.save_approval(pending.model_copy(update={"comment": "re-asked"}))
        approved = pending.model_copy(
            update={"state": ApprovalState.APPROVED, "decided_by": "alice", "decided_at": T0}
        )
        assert await store.replace_approval_if(approved, ApprovalState.PENDING)  # the decision
        rejected = approved.model_copy(update={"state": ApprovalState.REJECTED})
        assert not await store.replace_approval_if(rejected, ApprovalState.PENDING)
        assert await store.get_approval("a1") == approved
        assert await store.list_approvals(ApprovalState.APPROVED) == [approved]
        assert await store.expired_approvals(T0 + timedelta(days=1), 10) == []
    finally:
        await store.close()


async def test_the_runtime_role_cannot_rewrite_the_audit(granted: Roles) -> None:
    seed_audit_and_approvals(granted.owner_dsn)
    with connect(granted.runtime_dsn) as conn:
        conn.execute(
            "INSERT INTO audit_events (at, kind, actor) VALUES (now(), 'run_planned', 'engine')"
        )
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (3,)
        denied = "permission denied"
        refused(conn, "UPDATE audit_events SET actor = 'mallory'", denied)
        refused(conn, "DELETE FROM audit_events", denied)
        refused(
            conn,
            "BEGIN; SELECT set_config('responder.audit_prune', 'on', true); "
            "DELETE FROM audit_events; COMMIT",
            denied,
        )
        conn.execute("ROLLBACK")
        refused(conn, "TRUNCATE audit_events", denied)
        owner = "must be owner"
        refused(conn, "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change", owner)
        refused(conn, "ALTER TABLE audit_events DISABLE TRIGGER ALL", owner)
        refused(conn, "DROP TRIGGER audit_events_no_change ON audit_events", owner)
        refused(conn, "ALTER TABLE approvals DISABLE TRIGGER approvals_decided_final", owner)
        refused(conn, "DROP TABLE audit_events", owner)
        replace = (
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$"
        )
        refused(conn, replace, "must be owner|denied")
        refused(conn, "DELETE FROM approvals", denied)
        refused(conn, "CREATE TABLE sneaky (x int)", denied)  # no CREATE on the schema
        refused(conn, "SET session_replication_role = replica", "permission denied")
        rows = conn.execute("SELECT kind, actor FROM audit_events ORDER BY id").fetchall()
    assert rows == [
        ("run_planned", "engine"),
        ("run_finished", "engine"),
        ("run_planned", "engine"),
    ]


async def test_a_decided_approval_cannot_change(granted: Roles) -> None:
    seed_audit_and_approvals(granted.owner_dsn)
    final = "already approved: a decided approval cannot change"
    with connect(granted.runtime_dsn) as conn:
        refused(conn, "UPDATE approvals SET decided_by = 'mallory' WHERE approval_id = 'd'", final)
        refused(conn, "UPDATE approvals SET state = 'pending' WHERE approval_id = 'd'", final)
        refused(conn, "UPDATE approvals SET decided_by = 'mallory'", final)  # all or nothing
        updated = conn.execute(  # the compare-and-set of a pending one
            "UPDATE approvals SET state = 'rejected', decided_by = 'bob' "
            "WHERE approval_id = 'p' AND state = 'pending'"
        )
        assert updated.rowcount == 1
        refused(
            conn, "UPDATE approvals SET decided_by = 'mallory' WHERE approval_id = 'p'", "rejected"
        )
    with connect(granted.owner_dsn) as conn:  # the trigger holds for the owner's sessions too
        refused(conn, "UPDATE approvals SET decided_by = 'mallory' WHERE approval_id = 'd'", final)
        assert conn.execute(
            "SELECT approval_id, state, decided_by FROM approvals ORDER BY approval_id"
        ).fetchall() == [("d", "approved", "alice"), ("p", "rejected", "bob")]
    store = await PostgresStore.open(granted.runtime_dsn, timeout_seconds=5, pool_max=1)
    try:
        again = make_approval("d", state=ApprovalState.REJECTED, decided_by="mallory")
        with pytest.raises(StoreUnavailableError, match="cannot change"):
            await store.save_approval(again)  # the upsert's DO UPDATE is refused too
    finally:
        await store.close()


async def test_prune_runs_as_the_owner_and_the_runtime_role_is_told_so(granted: Roles) -> None:
    seed_audit_and_approvals(granted.owner_dsn)
    cutoff = datetime.now(UTC) - timedelta(days=100)  # between the two seeded rows
    runtime = await PostgresStore.open(granted.runtime_dsn, timeout_seconds=5, pool_max=1)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await runtime.prune_audit(cutoff, "cli:eve@host")
    finally:
        await runtime.close()
    message = str(caught.value)
    assert "may not delete audit events" in message
    assert "`responder audit prune` as the role that owns the tables" in message
    owner = await PostgresStore.open(granted.owner_dsn, timeout_seconds=5, pool_max=1)
    try:
        assert await owner.prune_audit(cutoff, "cli:ops@host") == 1
    finally:
        await owner.close()
    with connect(granted.owner_dsn) as conn:
        kinds = conn.execute("SELECT kind, actor FROM audit_events ORDER BY id").fetchall()
    assert kinds == [("run_finished", "engine"), ("audit_pruned", "cli:ops@host")]


async def test_serve_as_the_runtime_role_never_migrates_and_says_what_to_do(
    postgres_roles: Roles,
) -> None:
    runtime = postgres_roles.runtime_dsn
    with pytest.raises(StoreUnavailableError, match="no responder schema") as missing:
        await PostgresStore.open(runtime, timeout_seconds=5)
    assert "--runtime-role" in str(missing.value)
    with postgres_roles.admin() as admin:  # what PUBLIC has on PostgreSQL 15's public schema
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(postgres_roles.schema), sql.Identifier(postgres_roles.runtime)
            )
        )
    with pytest.raises(StoreUnavailableError) as not_owner:  # RESPONDER_MIGRATE_ON_START=true
        await PostgresStore.open(runtime, timeout_seconds=5, migrate=True)
    assert "migration 0001_initial not applied: permission denied" in str(not_owner.value)
    assert "migrations run as the role that owns the tables" in str(not_owner.value)

    await migrating.migrate(postgres_roles.owner_dsn, timeout_seconds=10)  # no --runtime-role
    with pytest.raises(StoreUnavailableError, match="lacks the runtime privileges"):
        await PostgresStore.open(runtime, timeout_seconds=5)

    await migrating.migrate(
        postgres_roles.owner_dsn, timeout_seconds=10, runtime_role=postgres_roles.runtime
    )
    store = await PostgresStore.open(runtime, timeout_seconds=5, migrate=True)  # current: reads
    await store.close()
    later = migrating.Migration(
        len(migrating.shipped_migrations()) + 1, "0099_later", "ALTER TABLE runs ADD x int"
    )
    with pytest.raises(StoreUnavailableError, match=r"0099_later not applied.*owns the tables"):
        await migrating.migrate(
            runtime, timeout_seconds=10, migrations=[*migrating.shipped_migrations(), later]
        )


async def test_the_runtime_privileges_are_exactly_the_list_for_every_table(
    granted: Roles,
) -> None:
    with connect(granted.owner_dsn) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    assert {t for (t,) in tables} == set(roles.RUNTIME_PRIVILEGES)  # a new table needs a line
    assert "UPDATE" not in roles.RUNTIME_PRIVILEGES["audit_events"]
    assert "DELETE" not in roles.RUNTIME_PRIVILEGES["audit_events"]
    assert "DELETE" not in roles.RUNTIME_PRIVILEGES["approvals"]
    async with await psycopg.AsyncConnection.connect(granted.owner_dsn, autocommit=True) as aconn:
        assert await roles.runtime_problems(aconn, granted.runtime) == []
        assert await roles.runtime_problems(aconn, granted.owner) != []


async def test_migrate_regrants_and_refuses_roles_that_could_get_around(
    granted: Roles,
) -> None:
    owner_dsn = granted.owner_dsn

    async def grant(role: str) -> str:
        with pytest.raises(StoreUnavailableError) as caught:
            await migrating.migrate(owner_dsn, timeout_seconds=10, runtime_role=role)
        return str(caught.value)

    with connect(owner_dsn) as conn:  # a stray grant, then a re-run takes it back
        conn.execute(
            sql.SQL("GRANT DELETE, UPDATE ON audit_events TO {}").format(
                sql.Identifier(granted.runtime)
            )
        )
    assert (
        await migrating.migrate(owner_dsn, timeout_seconds=10, runtime_role=granted.runtime) == []
    )
    with connect(granted.runtime_dsn) as conn:
        refused(conn, "DELETE FROM audit_events", "permission denied")

    with connect(owner_dsn) as conn:  # a grant to PUBLIC reaches every role: refused
        conn.execute("GRANT DELETE ON audit_events TO PUBLIC")
    assert "it may DELETE audit_events" in await grant(granted.runtime)
    with connect(owner_dsn) as conn:
        conn.execute("REVOKE DELETE ON audit_events FROM PUBLIC")

    assert "does not exist" in await grant("responder_nobody_here")
    assert "is or acts as" in await grant(granted.owner)
    member = granted.create_role("member")
    with granted.admin() as admin:
        admin.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(granted.owner), sql.Identifier(member))
        )
    assert f"is or acts as {granted.owner!r}" in await grant(member)
    creator = granted.create_role("creator", "CREATEROLE")
    assert "has CREATEROLE" in await grant(creator)
    assert "NOCREATEROLE" in await grant(creator)
