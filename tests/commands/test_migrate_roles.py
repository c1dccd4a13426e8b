"""`responder migrate --runtime-role` and `responder audit prune` with the two database roles,
run as an operator runs them: the CLI in a subprocess, settings from RESPONDER_* variables.

Real PostgreSQL (tests/support/postgres_service.py) with a throwaway owner role, runtime role
and schema (tests/support/postgres_roles.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.paths import REPO
from tests.support.postgres_roles import Roles, owner_and_runtime


@pytest.fixture
def postgres_roles(postgres_dsn: str) -> Iterator[Roles]:
    """An owner role, a runtime role and an empty schema the owner owns."""
    with owner_and_runtime(postgres_dsn) as made:
        yield made


def responder(*args: str, tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`python -m responder ARGS` with only these RESPONDER_* settings (and a data dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env["RESPONDER_DATA_DIR"] = str(tmp_path / "data")
    env.update({f"RESPONDER_{name}": value for name, value in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "responder", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )


def test_migrate_help_explains_the_two_roles(tmp_path: Path) -> None:
    result = responder("migrate", "--help", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for words in (
        "--runtime-role NAME",
        "RESPONDER_DATABASE_RUNTIME_ROLE",
        "owner owns the tables; runs `responder migrate` and `responder audit prune`",
        "runtime owns nothing; `serve` connects as it",
        "may not update or delete audit rows, disable triggers or alter tables, or change a "
        "decided approval",
        "RESPONDER_DATABASE_URL=<owner DSN> responder migrate --runtime-role responderd",
        "docs/deployment.md",
    ):
        assert words in text, words


def test_migrate_as_owner_grants_and_prune_needs_the_owner(
    postgres_roles: Roles, tmp_path: Path
) -> None:
    owner, runtime = postgres_roles.owner_dsn, postgres_roles.runtime_dsn
    role = postgres_roles.runtime

    bare = responder("migrate", tmp_path=tmp_path, DATABASE_URL=owner)
    assert bare.returncode == 0, bare.stderr
    assert "no runtime role given (--runtime-role)" in bare.stdout
    assert "could rewrite the audit" in bare.stdout

    as_runtime = responder("migrate", tmp_path=tmp_path, DATABASE_URL=runtime)
    assert as_runtime.returncode == 1
    assert "responder migrate failed" in as_runtime.stderr
    assert "migrations run as the role that owns the tables" in as_runtime.stderr

    granted = responder("migrate", "--runtime-role", role, tmp_path=tmp_path, DATABASE_URL=owner)
    assert granted.returncode == 0, granted.stderr
    assert f"runtime role {role}: may read and append the audit" in granted.stdout
    assert "up to date" in granted.stdout
    by_setting = responder(
        "migrate", tmp_path=tmp_path, DATABASE_URL=owner, DATABASE_RUNTIME_ROLE=role
    )
    assert by_setting.returncode == 0, by_setting.stderr
    assert f"runtime role {role}:" in by_setting.stdout

    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_events (at, kind, actor) VALUES "
            "(now() - interval '200 days', 'run_planned', 'engine'), (now(), 'run_planned', 'e')"
        )
    refused = responder(
        "audit", "prune", "--older-than", "90d", tmp_path=tmp_path, DATABASE_URL=runtime
    )
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "responder audit prune failed" in message
    assert "this role may not delete audit events" in message
    assert "as the role that owns the tables" in message
    pruned = responder(
        "audit", "prune", "--older-than", "90d", tmp_path=tmp_path, DATABASE_URL=owner
    )
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 1 audit event older than" in pruned.stdout
