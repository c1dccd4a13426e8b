"""One frozen Settings object, read from `RESPONDER_*` env vars and an optional config file."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from responder.core.allowlists import parse_patterns
from responder.core.file_allowlists import normalise_dir
from responder.core.kube_names import dns_label

DEFAULT_SEVERITY_LEVELS: dict[str, int] = {
    # generic ladder (Alertmanager/Grafana labels, Sentry levels)
    "debug": 0, "info": 10, "informational": 10, "low": 20, "notice": 20,
    "warning": 30, "warn": 30, "medium": 40, "error": 50, "high": 60,
    "critical": 70, "fatal": 80, "page": 70, "emergency": 90,
    # priority ladders
    "p4": 20, "p3": 40, "p2": 60, "p1": 70, "p0": 90,
    "sev4": 20, "sev3": 40, "sev2": 60, "sev1": 90,
}  # fmt: skip


class NotifySinkSetting(BaseModel):
    """One approval-notice sink: a notify action and its fixed params (secrets by env name)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    action: str = Field(pattern=r"^notify\.[a-z_]+$")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


def _default_instance_id() -> str:
    """This replica's name in run ownership: the pod name (HOSTNAME) plus the process id."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Every knob of the daemon. Durations are in seconds (`*_seconds`)."""

    model_config = SettingsConfigDict(
        env_prefix="RESPONDER_", frozen=True, extra="forbid", env_nested_delimiter="__"
    )

    listen: str = "127.0.0.1:8080"
    rules_dir: Path = Path("rules")
    data_dir: Path = Path("./var")
    database_url: SecretStr | None = None
    database_pool_max: int = Field(default=10, ge=1, le=200)
    migrate_on_start: bool = False
    redis_url: SecretStr | None = None
    redis_prefix: str = Field(default="responder:", min_length=1)
    instance_id: str = Field(default_factory=_default_instance_id, min_length=1)

    webhook_token: SecretStr | None = None
    sentry_client_secret: SecretStr | None = None
    approver_tokens: SecretStr | None = None  # "name:token[:group|group],..."
    approver_tokens_file: Path | None = None  # one "name:token[:group|group]" per line
    public_url: str | None = None  # base URL people use to reach the API (approve links)
    approval_notify: tuple[NotifySinkSetting, ...] = ()  # JSON list of {action, with}
    postgres_targets: dict[str, SecretStr] = Field(default_factory=dict)  # monitored, by name
    redis_targets: dict[str, SecretStr] = Field(default_factory=dict)  # monitored, by name
    kubeconfig: Path | None = None  # kubeconfig file for the k8s.* actions
    k8s_context: str | None = None  # a context of that file (default: its current-context)
    k8s_in_cluster: bool = False  # use the pod's ServiceAccount instead of a kubeconfig
    k8s_allowed_namespaces: Annotated[tuple[str, ...], NoDecode] = ()  # k8s.* act only here
    k8s_request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    reader_tokens: SecretStr | None = None  # "name:token,..." may read, never decide
    trusted_identity_header: str | None = None  # e.g. X-Forwarded-User (oauth2-proxy); opt-in
    trusted_groups_header: str | None = None  # e.g. X-Forwarded-Groups (comma separated)
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()  # proxy IPs/CIDRs sending them
    insecure_no_auth: bool = False

    dry_run: bool = False
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    queue_size: int = Field(default=1000, ge=1)
    # Alerts processed at once. Steps mostly wait (an HTTP probe, a rollout being watched),
    # so a worker is cheap; 32 keeps slow steps from stalling the queue, and under a storm of
    # matching alerts took 2-3x what 4 did (docs/performance.md).
    workers: int = Field(default=32, ge=1, le=256)
    retry_after_seconds: int = Field(default=5, ge=1)

    store_timeout_seconds: float = Field(default=5.0, gt=0)
    # most concurrent writes joined into one commit (SQLite) or one statement (PostgreSQL:
    # deliveries and processed marks)
    store_batch_max: int = Field(default=256, ge=1)
    dedup_ttl_seconds: float = Field(default=86400.0, gt=0)
    step_timeout_seconds: float = Field(default=30.0, gt=0)
    step_max_attempts: int = Field(default=3, ge=1, le=10)
    drain_seconds: float = Field(default=20.0, ge=0)
    output_max_bytes: int = Field(default=16384, ge=256)
    rules_poll_seconds: float = Field(default=2.0, gt=0)
    timer_poll_seconds: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=15.0, ge=1)
    coordination_timeout_seconds: float = Field(default=2.0, gt=0)

    storm_max: int = Field(default=20, ge=1)
    storm_window_seconds: float = Field(default=300.0, gt=0)
    storm_action: str = Field(default="approval", pattern="^(approval|skip)$")

    http_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    flagd_file_dirs: Annotated[tuple[str, ...], NoDecode] = ()  # dirs of writable flag files
    severity_levels: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_LEVELS))

    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")

    @field_validator("http_allowed_hosts", "trusted_proxies", "flagd_file_dirs", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"listen must be host:port, e.g. 127.0.0.1:8080 (got {value!r})")
        return value

    @field_validator("http_allowed_hosts", mode="after")
    @classmethod
    def _valid_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_patterns(value)  # a bad pattern fails at start-up, not at the first request
        return value

    @field_validator("flagd_file_dirs", mode="after")
    @classmethod
    def _absolute_dirs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_dir(entry) for entry in value)

    @field_validator("k8s_allowed_namespaces", mode="before")
    @classmethod
    def _namespace_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("k8s_allowed_namespaces", mode="after")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            dns_label(entry)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _one_kube_config(self) -> Settings:
        if self.kubeconfig is not None and self.k8s_in_cluster:
            raise ValueError("set RESPONDER_KUBECONFIG or RESPONDER_K8S_IN_CLUSTER, not both")
        if self.k8s_context and self.kubeconfig is None:
            raise ValueError("RESPONDER_K8S_CONTEXT needs RESPONDER_KUBECONFIG (its file): set it")
        return self

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _header_needs_proxies(self) -> Settings:
        if self.trusted_identity_header and not self.trusted_proxies:
            raise ValueError(
                "RESPONDER_TRUSTED_IDENTITY_HEADER needs RESPONDER_TRUSTED_PROXIES (the addresses "
                "of the authenticating proxy); otherwise anyone could send the header"
            )
        return self

    @field_validator("severity_levels", mode="after")
    @classmethod
    def _lower_levels(cls, value: dict[str, int]) -> dict[str, int]:
        return {k.lower(): v for k, v in value.items()}

    @property
    def host_port(self) -> tuple[str, int]:
        """`listen` split into host and port."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file used when no DATABASE_URL is set."""
        return self.data_dir / "responder.sqlite3"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order: explicit arguments, env, then the YAML file named by RESPONDER_CONFIG."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("RESPONDER_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)
