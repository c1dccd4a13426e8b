"""Two throwaway PostgreSQL roles, owner and runtime, on an empty schema of their own.

`owner_and_runtime(server_dsn)` (the `postgres_roles` fixture of the tests that use it) creates,
as the server's superuser, a LOGIN owner role, a LOGIN runtime role (unique names: roles are
cluster-wide), random passwords (ignored under trust auth, used otherwise) and a schema owned
by the owner. It yields their DSNs, whose `options` set `search_path` to that schema and whose
`application_name` is the schema's name. Afterwards the sessions still open are ended, the
schema dropped CASCADE, everything the roles still own or were granted in this database
dropped, and the roles dropped.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@dataclass(frozen=True)
class Roles:
    """The DSNs and names of one owner/runtime pair."""

    server_dsn: str  # the superuser's
    schema: str
    owner: str
    runtime: str
    owner_dsn: str
    runtime_dsn: str
    created: list[str] = field(default_factory=list)  # every role to drop afterwards

    def create_role(self, kind: str, attributes: str = "") -> str:
        """Another LOGIN role, `responder_<kind>_<tag>`, with `attributes` (constant SQL such
        as "CREATEROLE"); dropped with the others."""
        role = f"responder_{kind}_{self.schema.removeprefix('responder_roles_')}"
        with self.admin() as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN {}").format(sql.Identifier(role), sql.SQL(attributes))
            )
        self.created.append(role)
        return role

    def dsn_of(self, role: str, password: str = "") -> str:
        """A DSN of `role` on the same schema."""
        given = str(conninfo_to_dict(self.server_dsn).get("options") or "")
        options = f"{given} -c search_path={self.schema}".strip()
        return make_conninfo(
            self.server_dsn,
            user=role,
            password=password or None,
            options=options,
            application_name=self.schema,
        )

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser autocommit connection to the database, searching the schema."""
        return psycopg.connect(self.dsn_of(_superuser(self.server_dsn)), autocommit=True)


def _superuser(server_dsn: str) -> str:
    return str(conninfo_to_dict(server_dsn).get("user") or "postgres")


@contextlib.contextmanager
def owner_and_runtime(server_dsn: str) -> Iterator[Roles]:
    """Create the pair (see the module docstring) and remove it afterwards."""
    tag = uuid.uuid4().hex[:10]
    schema = f"responder_roles_{tag}"
    owner, runtime = f"responder_owner_{tag}", f"responder_runtime_{tag}"
    passwords = {owner: secrets.token_hex(12), runtime: secrets.token_hex(12)}
    created: list[str] = []  # shared with the Roles yielded: create_role adds to it
    with psycopg.connect(server_dsn, connect_timeout=5, autocommit=True) as admin:
        try:
            for role, password in passwords.items():
                admin.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
                created.append(role)
            admin.execute(
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                    sql.Identifier(schema), sql.Identifier(owner)
                )
            )
            base = Roles(server_dsn, schema, owner, runtime, "", "")
            yield Roles(
                server_dsn,
                schema,
                owner,
                runtime,
                base.dsn_of(owner, passwords[owner]),
                base.dsn_of(runtime, passwords[runtime]),
                created,
            )
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE (application_name = %s OR usename = ANY(%s)) AND pid <> pg_backend_pid()",
                (schema, created),
            )
            admin.execute("SET lock_timeout = '10s'")
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
            for role in reversed(created):
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
