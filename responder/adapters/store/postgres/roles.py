"""The two PostgreSQL roles of a production store: the owner migrates, the runtime role serves.

The owning role (the one `responder migrate` and `responder audit prune` connect as) owns the
tables, so it can do anything to them, disabling the audit triggers included. `serve` should
connect as a runtime role that owns nothing and holds exactly `RUNTIME_PRIVILEGES`: it can
record and read alerts, runs and approvals, append and read the audit, decide a pending
approval; it cannot UPDATE, DELETE or TRUNCATE audit rows (no privilege), ALTER a table or
disable a trigger (not the owner), delete an approval (no privilege) or change a decided one
(the `approvals_decided_final` trigger of migration 0003).

`grant_runtime` gives a role those privileges (run by `responder migrate --runtime-role NAME`
inside the migration lock): it first refuses a role that could get around them (a superuser,
one with CREATEROLE or BYPASSRLS, one that is or can become a table owner), then, table by
table, revokes what the role held and grants the list, then reads back what the role can
effectively do (grants to PUBLIC and inherited from other roles included) and fails if that
is more or less than the list. Only this store's tables are touched: other tables of the same
schema keep their grants.

The privileges are those of the statements in `queries.py` and `approvals.py`; a migration
that adds a table adds it here (a test compares this list with the migrated schema).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from psycopg import sql

from responder.adapters.store.postgres.connections import Conn

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

RUNTIME_PRIVILEGES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # record_delivery (INSERT ... RETURNING), unprocessed_alerts, mark_alert_processed
        "alerts": frozenset({"SELECT", "INSERT", "UPDATE"}),
        # save_run (upsert), replace_run_if (compare-and-set), the run queries
        "runs": frozenset({"SELECT", "INSERT", "UPDATE"}),
        # save_run replaces a run's steps: DELETE of the run's rows, then INSERT; save_steps
        # upserts only the steps that changed (INSERT ... ON CONFLICT DO UPDATE)
        "steps": frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),
        # save_approval, replace_approval_if (only a pending row: 0003's trigger), the listings
        "approvals": frozenset({"SELECT", "INSERT", "UPDATE"}),
        # append_audit, audit_for_run: append and read, nothing else
        "audit_events": frozenset({"SELECT", "INSERT"}),
        # check_writable upserts its one row
        "writable_probe": frozenset({"SELECT", "INSERT", "UPDATE"}),
        # the schema check at start
        "schema_migrations": frozenset({"SELECT"}),
    }
)


class RoleProblemError(Exception):
    """The runtime role cannot be given the runtime privileges safely; the message says why."""


async def grant_runtime(conn: Conn, role: str) -> None:
    """Give `role` exactly RUNTIME_PRIVILEGES on this store's tables (in the current schema).

    Runs in the caller's transaction. Raises RoleProblemError when the role is missing, could
    get around the privileges, or ends up with more or less than the list.
    """
    schema = await _current_schema(conn)
    await _refuse_unsafe(conn, role, schema)
    who = sql.Identifier(role)
    await conn.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), who)
    )
    for table, privileges in RUNTIME_PRIVILEGES.items():
        target = sql.Identifier(schema, table)
        await conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(target, who))
        granted = sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges))
        await conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(granted, target, who))
    await _check_effective(conn, role, schema)


async def runtime_problems(conn: Conn, role: str) -> list[str]:
    """How `role`'s effective privileges differ from RUNTIME_PRIVILEGES (empty: exactly)."""
    schema = await _current_schema(conn)
    problems: list[str] = []
    for table, wanted in RUNTIME_PRIVILEGES.items():
        qualified = f"{_quote(schema)}.{_quote(table)}"
        for privilege in TABLE_PRIVILEGES:
            cur = await conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (role, qualified, privilege)
            )
            row = await cur.fetchone()
            has = bool(row and row[0])
            if has and privilege not in wanted:
                problems.append(f"it may {privilege} {table}")
            elif not has and privilege in wanted:
                problems.append(f"it may not {privilege} {table}")
    return problems


async def _current_schema(conn: Conn) -> str:
    cur = await conn.execute("SELECT current_schema()")
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise RoleProblemError("no current schema: check search_path in RESPONDER_DATABASE_URL")
    return str(row[0])


async def _refuse_unsafe(conn: Conn, role: str, schema: str) -> None:
    cur = await conn.execute(
        "SELECT rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)
    )
    row = await cur.fetchone()
    if row is None:
        raise RoleProblemError(
            f"role {role!r} does not exist: create it first (CREATE ROLE {role} LOGIN PASSWORD "
            "...; docs/deployment.md)"
        )
    superuser, createrole, bypassrls = row
    named = (("SUPERUSER", superuser), ("CREATEROLE", createrole), ("BYPASSRLS", bypassrls))
    flags = [name for name, on in named if on]
    if flags:
        raise RoleProblemError(
            f"role {role!r} has {', '.join(flags)}, so no privilege binds it; the runtime role "
            f"must be a plain LOGIN role (ALTER ROLE {role} NO{' NO'.join(flags)})"
        )
    cur = await conn.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "WHERE c.relnamespace = %s::regnamespace AND c.relname = ANY(%s) "
        "AND pg_has_role(%s, c.relowner, 'MEMBER')",
        (_quote(schema), list(RUNTIME_PRIVILEGES), role),
    )
    owned = await cur.fetchall()
    if owned:
        owner = owned[0][1]
        raise RoleProblemError(
            f"role {role!r} is or acts as {owner!r}, the owner of {owned[0][0]}: as owner it "
            "could disable the audit triggers; give serve a role of its own that is not a "
            f"member of {owner!r} (docs/deployment.md)"
        )


async def _check_effective(conn: Conn, role: str, schema: str) -> None:
    problems = await runtime_problems(conn, role)
    if problems:
        raise RoleProblemError(
            f"after the grants, role {role!r} still differs from the runtime privileges: "
            f"{'; '.join(problems)} (granted to PUBLIC or to a role it belongs to? "
            f"see \\dp in schema {schema})"
        )


def _quote(identifier: str) -> str:
    """`identifier` as a quoted SQL identifier, for the regclass/regnamespace text casts."""
    return '"' + identifier.replace('"', '""') + '"'
