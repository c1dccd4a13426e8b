"""Settings: every `RESPONDER_*` name lands in its group, decoded as before the grouping."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from responder.settings import (
    SETTING_GROUPS,
    AccessSettings,
    NotifySinkSetting,
    Settings,
    StoreSettings,
    error_lines,
)
from tests.support.paths import REPO

# Every name read today: env value -> (group, value read back). Secrets compare by their value.
ENV: dict[str, tuple[str, str, Any]] = {
    "LISTEN": ("0.0.0.0:9090", "http", "0.0.0.0:9090"),
    "DRAIN_SECONDS": ("0", "http", 0.0),
    "WEBHOOK_TOKEN": ("hook", "access", "hook"),
    "SENTRY_CLIENT_SECRET": ("sentry", "access", "sentry"),
    "APPROVER_TOKENS": ("alice:t1:sre", "access", "alice:t1:sre"),
    "APPROVER_TOKENS_FILE": ("/etc/approvers", "access", Path("/etc/approvers")),
    "READER_TOKENS": ("rita:r1", "access", "rita:r1"),
    "TRUSTED_IDENTITY_HEADER": ("X-Forwarded-User", "access", "X-Forwarded-User"),
    "TRUSTED_GROUPS_HEADER": ("X-Forwarded-Groups", "access", "X-Forwarded-Groups"),
    "TRUSTED_PROXIES": (" 10.0.0.0/8 , 127.0.0.1,", "access", ("10.0.0.0/8", "127.0.0.1")),
    "INSECURE_NO_AUTH": ("true", "access", True),
    "MAX_BODY_BYTES": ("2048", "intake", 2048),
    "QUEUE_SIZE": ("3", "intake", 3),
    "RETRY_AFTER_SECONDS": ("7", "intake", 7),
    "WORKERS": ("5", "intake", 5),
    "DEDUP_TTL_SECONDS": ("60", "intake", 60.0),
    "RULES_DIR": ("/etc/rules", "rules", Path("/etc/rules")),
    "RULES_POLL_SECONDS": ("0.5", "rules", 0.5),
    "SEVERITY_LEVELS": ('{"P5": 5, "page": 70}', "rules", {"p5": 5, "page": 70}),
    "DRY_RUN": ("1", "runs", True),
    "STEP_TIMEOUT_SECONDS": ("4", "runs", 4.0),
    "STEP_MAX_ATTEMPTS": ("2", "runs", 2),
    "OUTPUT_MAX_BYTES": ("512", "runs", 512),
    "TIMER_POLL_SECONDS": ("0.2", "runs", 0.2),
    "STORM_MAX": ("4", "runs", 4),
    "STORM_WINDOW_SECONDS": ("30", "runs", 30.0),
    "STORM_ACTION": ("skip", "runs", "skip"),
    "PUBLIC_URL": ("https://responder.example", "approvals", "https://responder.example"),
    "APPROVAL_NOTIFY": (
        '[{"action": "notify.slack", "with": {"webhook_url_env": "SLACK_URL"}}]',
        "approvals",
        (NotifySinkSetting(action="notify.slack", with_={"webhook_url_env": "SLACK_URL"}),),
    ),
    "DATA_DIR": ("/var/lib/responder", "store", Path("/var/lib/responder")),
    "DATABASE_URL": ("postgresql://db/responder", "store", "postgresql://db/responder"),
    "DATABASE_POOL_MAX": ("20", "store", 20),
    "DATABASE_RUNTIME_ROLE": ("responder_runtime", "store", "responder_runtime"),
    "MIGRATE_ON_START": ("yes", "store", True),
    "STORE_TIMEOUT_SECONDS": ("1.5", "store", 1.5),
    "STORE_BATCH_MAX": ("8", "store", 8),
    "REDIS_URL": ("redis://redis:6379/0", "coordination", "redis://redis:6379/0"),
    "REDIS_PREFIX": ("test:", "coordination", "test:"),
    "COORDINATION_TIMEOUT_SECONDS": ("0.5", "coordination", 0.5),
    "INSTANCE_ID": ("pod-1", "coordination", "pod-1"),
    "LEASE_SECONDS": ("3", "coordination", 3.0),
    "KUBECONFIG": ("/etc/kubeconfig", "kubernetes", Path("/etc/kubeconfig")),
    "K8S_CONTEXT": ("prod", "kubernetes", "prod"),
    "K8S_IN_CLUSTER": ("false", "kubernetes", False),
    "K8S_ALLOWED_NAMESPACES": (" shop , payments,", "kubernetes", ("shop", "payments")),
    "K8S_REQUEST_TIMEOUT_SECONDS": ("4.5", "kubernetes", 4.5),
    "HTTP_ALLOWED_HOSTS": ("*.svc, 10.0.0.1:8080", "targets", ("*.svc", "10.0.0.1:8080")),
    "FLAGD_FILE_DIRS": ("/srv/flags/, /var/lib/flagd", "targets", ("/srv/flags", "/var/lib/flagd")),
    "POSTGRES_TARGETS": ('{"orders": "postgresql://o"}', "targets", {"orders": "postgresql://o"}),
    "REDIS_TARGETS": ('{"cache": "redis://c"}', "targets", {"cache": "redis://c"}),
    "LOG_FORMAT": ("json", "logging", "json"),
    "LOG_LEVEL": ("debug", "logging", "debug"),
}


def _plain(value: Any) -> Any:
    """Secrets as their values, so a table can name what was read."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("RESPONDER_"):
            monkeypatch.delenv(name)


def test_the_table_names_every_setting() -> None:
    assert {name.lower() for name in ENV} == set(SETTING_GROUPS)


def test_every_env_name_lands_in_its_group_with_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, (raw, _, _) in ENV.items():
        monkeypatch.setenv(f"RESPONDER_{name}", raw)
    settings = Settings()
    for name, (_, group, expected) in ENV.items():
        assert SETTING_GROUPS[name.lower()] == group, name
        assert _plain(getattr(getattr(settings, group), name.lower())) == expected, name
    assert isinstance(settings.access.webhook_token, SecretStr)
    assert isinstance(settings.store.database_url, SecretStr)
    assert all(isinstance(v, SecretStr) for v in settings.targets.postgres_targets.values())


def test_nested_names_fill_maps_and_names_are_case_insensitive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESPONDER_POSTGRES_TARGETS", '{"orders": "postgresql://o"}')
    monkeypatch.setenv("RESPONDER_POSTGRES_TARGETS__BILLING", "postgresql://b")
    monkeypatch.setenv("RESPONDER_REDIS_TARGETS__CACHE", "redis://c")
    monkeypatch.setenv("RESPONDER_SEVERITY_LEVELS__P9", "9")
    monkeypatch.setenv("responder_workers", "3")
    settings = Settings()
    assert _plain(settings.targets.postgres_targets) == {
        "orders": "postgresql://o",
        "billing": "postgresql://b",
    }
    assert _plain(settings.targets.redis_targets) == {"cache": "redis://c"}
    assert settings.rules.severity_levels == {"p9": 9}
    assert settings.intake.workers == 3


def test_defaults() -> None:
    settings = Settings()
    assert settings.http.host_port == ("127.0.0.1", 8080)
    assert settings.store.sqlite_path == Path("var/responder.sqlite3")
    assert settings.store.database_url is None
    assert settings.coordination.instance_id.endswith(f"-{os.getpid()}")
    assert settings.rules.severity_levels["critical"] == 70
    assert settings.runs.storm_action == "approval"
    assert settings.targets.http_allowed_hosts == ()


def test_the_config_file_reads_flat_names_below_env_and_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "responder.yaml"
    config.write_text(
        "listen: 127.0.0.1:9999\nworkers: 3\nqueue_size: 9\n"
        "http_allowed_hosts: ['*.svc']\npostgres_targets: {orders: 'postgresql://o'}\n"
        "approval_notify: [{action: notify.webhook, with: {url: 'https://hook'}}]\n"
    )
    monkeypatch.setenv("RESPONDER_CONFIG", str(config))
    monkeypatch.setenv("RESPONDER_WORKERS", "7")
    monkeypatch.setenv("RESPONDER_QUEUE_SIZE", "8")
    settings = Settings(queue_size=5)
    assert settings.http.listen == "127.0.0.1:9999"
    assert settings.intake.workers == 7
    assert settings.intake.queue_size == 5
    assert settings.targets.http_allowed_hosts == ("*.svc",)
    assert _plain(settings.targets.postgres_targets) == {"orders": "postgresql://o"}
    assert settings.approvals.approval_notify[0].with_ == {"url": "https://hook"}
    config.write_text("bogus: 1\n")
    with pytest.raises(ValidationError, match="bogus"):
        Settings()


def test_keywords_take_flat_names_or_whole_groups() -> None:
    flat = Settings(webhook_token=SecretStr("t"), k8s_allowed_namespaces="shop,ops")
    assert flat.access.webhook_token == SecretStr("t")
    assert flat.kubernetes.k8s_allowed_namespaces == ("shop", "ops")
    whole = Settings(store=StoreSettings(data_dir=Path("/d")), store_batch_max=4)
    assert whole.store.sqlite_path == Path("/d/responder.sqlite3")
    assert whole.store.store_batch_max == 4
    with pytest.raises(ValidationError, match="bogus"):
        Settings(bogus=1)


def test_groups_are_frozen_and_checked_as_before() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.access.insecure_no_auth = True  # type: ignore[misc]
    with pytest.raises(ValidationError, match="RESPONDER_TRUSTED_PROXIES"):
        AccessSettings(trusted_identity_header="X-Forwarded-User")
    with pytest.raises(ValidationError, match="'approval' or 'skip'"):
        Settings(storm_action="later")
    with pytest.raises(ValidationError, match="'debug', 'info', 'warning' or 'error'"):
        Settings(log_level="INFO")


def test_errors_name_the_flat_setting_not_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONDER_LISTEN", "nonsense")
    monkeypatch.setenv("RESPONDER_K8S_CONTEXT", "prod")
    monkeypatch.setenv("RESPONDER_WEBHOOK_TOKEN", "s3cret-value")
    monkeypatch.setenv("RESPONDER_WORKERS", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    lines = error_lines(caught.value)
    assert any(line.startswith("listen: ") for line in lines), lines
    assert any(line.startswith("workers: ") for line in lines), lines
    assert any("RESPONDER_K8S_CONTEXT needs RESPONDER_KUBECONFIG" in line for line in lines)
    assert not any("s3cret" in line for line in lines)


def test_every_setting_says_what_it_is() -> None:
    for group, info in Settings.model_fields.items():
        assert info.description, group
        model = info.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        assert model.model_config.get("frozen") is True, group
        for name, field in model.model_fields.items():
            assert field.description, f"{group}.{name}"


def test_the_readme_table_names_every_setting_in_its_group() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Settings\n", 1)[1].split("\n## ", 1)[0]
    seen: set[str] = set()
    for row in re.findall(r"^\| `([a-z]+)` \|(.*)$", section, re.M):
        group, rest = row
        for name in re.findall(r"`([A-Z0-9_]+)`", rest):
            if name.lower() in SETTING_GROUPS:
                assert SETTING_GROUPS[name.lower()] == group, name
                seen.add(name.lower())
    assert seen == set(SETTING_GROUPS)
