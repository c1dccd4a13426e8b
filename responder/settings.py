"""One frozen Settings object, grouped by concern, read from `RESPONDER_*` env vars and a file.

Every setting has one flat name: `RESPONDER_<NAME>` in the environment, `<name>` in the YAML
file named by `RESPONDER_CONFIG` and as a keyword of `Settings(...)`. In code it is read from
its group: `RESPONDER_WEBHOOK_TOKEN` is `settings.access.webhook_token`. `SETTING_GROUPS` (flat
name -> group) is derived from the group models' fields, so a field is declared once.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from responder.core.file_allowlists import normalise_dir
from responder.core.host_allowlists import parse_patterns
from responder.core.kube_names import dns_label

DEFAULT_SEVERITY_LEVELS: dict[str, int] = {
    # generic ladder (Alertmanager/Grafana labels, Sentry levels)
    "debug": 0,
    "info": 10,
    "informational": 10,
    "low": 20,
    "notice": 20,
    "warning": 30,
    "warn": 30,
    "medium": 40,
    "error": 50,
    "high": 60,
    "critical": 70,
    "fatal": 80,
    "page": 70,
    "emergency": 90,
    # priority ladders
    "p4": 20,
    "p3": 40,
    "p2": 60,
    "p1": 70,
    "p0": 90,
    "sev4": 20,
    "sev3": 40,
    "sev2": 60,
    "sev1": 90,
}


def _split_commas(value: Any) -> Any:
    """`"a, b,"` -> `("a", "b")`; lists from the YAML file or from code pass unchanged."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A comma list in the environment (`a,b`), a list in the file or in code; never JSON-decoded.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]


def _default_instance_id() -> str:
    """This replica's name in run ownership: the pod name (HOSTNAME) plus the process id."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{os.getpid()}"


class NotifySinkSetting(BaseModel):
    """One approval-notice sink: a notify action and its fixed params (secrets by env name)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    action: str = Field(pattern=r"^notify\.[a-z_]+$", description="a notify.* action")
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="its fixed params (secrets by env name)"
    )


class HttpSettings(BaseModel):
    """The HTTP server: where it listens and how long it drains on SIGTERM."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    listen: str = Field(default="127.0.0.1:8080", description="host:port to serve on")
    drain_seconds: float = Field(
        default=20.0, ge=0, description="grace on SIGTERM for open requests and running alerts"
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"listen must be host:port, e.g. 127.0.0.1:8080 (got {value!r})")
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        """`listen` split into host and port."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


class AccessSettings(BaseModel):
    """Who may call: webhook senders, approvers, readers, an authenticating proxy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_token: SecretStr | None = Field(
        default=None, description="bearer token of Alertmanager/Grafana; also reads the API"
    )
    sentry_client_secret: SecretStr | None = Field(
        default=None, description="Sentry integration client secret (verifies each delivery)"
    )
    approver_tokens: SecretStr | None = Field(
        default=None, description='who may approve: "name:token[:group|group],..."'
    )
    approver_tokens_file: Path | None = Field(
        default=None, description='file of approvers, one "name:token[:group|group]" per line'
    )
    reader_tokens: SecretStr | None = Field(
        default=None, description='who may read the operator API, never decide: "name:token,..."'
    )
    trusted_identity_header: str | None = Field(
        default=None, description="opt-in identity header of a proxy, e.g. X-Forwarded-User"
    )
    trusted_groups_header: str | None = Field(
        default=None, description="that proxy's groups header (comma separated values)"
    )
    trusted_proxies: CommaList = Field(
        default=(), description="comma list of proxy IPs/CIDRs whose identity headers count"
    )
    insecure_no_auth: bool = Field(
        default=False, description="accept any caller (warned at every start; never in production)"
    )

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _header_needs_proxies(self) -> AccessSettings:
        if self.trusted_identity_header and not self.trusted_proxies:
            raise ValueError(
                "RESPONDER_TRUSTED_IDENTITY_HEADER needs RESPONDER_TRUSTED_PROXIES (the addresses "
                "of the authenticating proxy); otherwise anyone could send the header"
            )
        return self


class IntakeSettings(BaseModel):
    """Alerts in: body limit, the bounded queue, the workers, deduplication."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body accepted (413 above)"
    )
    queue_size: int = Field(default=1000, ge=1, description="alerts queued before 503s")
    retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After of a 503 sent while the queue is full"
    )
    # Steps mostly wait (an HTTP probe, a rollout being watched), so a worker is cheap; 32 keeps
    # slow steps from stalling the queue, and under a storm of matching alerts took 2-3x what 4
    # did (docs/performance.md).
    workers: int = Field(default=32, ge=1, le=256, description="alerts processed at once")
    dedup_ttl_seconds: float = Field(
        default=86400.0, gt=0, description="how long one alert occurrence stays deduplicated"
    )


class RuleSettings(BaseModel):
    """The rule files and the severity ladder their `severity:` conditions use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules_dir: Path = Field(default=Path("rules"), description="directory of the rule files")
    rules_poll_seconds: float = Field(
        default=2.0, gt=0, description="how often the rules directory is checked for changes"
    )
    severity_levels: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_LEVELS),
        description="JSON map of severity level name to rank (names compared in lower case)",
    )

    @field_validator("severity_levels", mode="after")
    @classmethod
    def _lower_levels(cls, value: dict[str, int]) -> dict[str, int]:
        return {k.lower(): v for k, v in value.items()}


class RunSettings(BaseModel):
    """How runs execute: dry run, step attempts and outputs, `for:` timers, the storm brake."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dry_run: bool = Field(default=False, description="record what would run, run nothing")
    step_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="accepted but unused: a step's deadline is its `timeout:` or its action's",
    )
    step_max_attempts: int = Field(
        default=3, ge=1, le=10, description="tries of a step that fails with a temporary error"
    )
    output_max_bytes: int = Field(
        default=16384, ge=256, description="largest step output kept (cut to fit above)"
    )
    timer_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often `for:` delays and approval expiries are checked"
    )
    storm_max: int = Field(
        default=20, ge=1, description="containment steps across all rules per window"
    )
    storm_window_seconds: float = Field(
        default=300.0, gt=0, description="the window STORM_MAX counts in"
    )
    storm_action: Literal["approval", "skip"] = Field(
        default="approval", description="what further containment steps do past STORM_MAX"
    )


class ApprovalSettings(BaseModel):
    """Approval requests: the links in them and where they are announced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_url: str | None = Field(
        default=None, description="base URL people use to reach the API (approve links)"
    )
    approval_notify: tuple[NotifySinkSetting, ...] = Field(
        default=(), description="JSON list of notify sinks for approval requests: {action, with}"
    )


class StoreSettings(BaseModel):
    """The durable store: SQLite in DATA_DIR, or PostgreSQL when DATABASE_URL is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(
        default=Path("./var"), description="where the SQLite store lives (responder.sqlite3)"
    )
    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL DSN of the store (unset: the SQLite file)"
    )
    database_pool_max: int = Field(
        default=10, ge=1, le=200, description="most PostgreSQL connections per replica"
    )
    database_runtime_role: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="role `responder migrate` grants serve's privileges to (runs as the owner)",
    )
    migrate_on_start: bool = Field(
        default=False, description="apply PostgreSQL migrations at start (else `responder migrate`)"
    )
    store_timeout_seconds: float = Field(
        default=5.0, gt=0, description="deadline of every store call"
    )
    store_batch_max: int = Field(
        default=256,
        ge=1,
        description="most concurrent writes joined in one SQLite commit or PostgreSQL statement",
    )

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file used when no DATABASE_URL is set."""
        return self.data_dir / "responder.sqlite3"


class CoordinationSettings(BaseModel):
    """Replicas agreeing: Redis (or in-process), this replica's name, run leases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    redis_url: SecretStr | None = Field(
        default=None, description="Redis URL of the coordinator (unset: in-process, one replica)"
    )
    redis_prefix: str = Field(
        default="responder:", min_length=1, description="prefix of every Redis key written"
    )
    coordination_timeout_seconds: float = Field(
        default=2.0, gt=0, description="deadline of every coordinator call"
    )
    instance_id: str = Field(
        default_factory=_default_instance_id,
        min_length=1,
        description="this replica's name in run ownership (default: pod name and pid)",
    )
    lease_seconds: float = Field(
        default=15.0, ge=1, description="how long a replica's runs stay its own without a renewal"
    )


class KubernetesSettings(BaseModel):
    """The cluster the `k8s.*` actions act on, and where they may."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kubeconfig: Path | None = Field(default=None, description="kubeconfig file of the cluster")
    k8s_context: str | None = Field(
        default=None, description="a context of that file (default: its current-context)"
    )
    k8s_in_cluster: bool = Field(
        default=False, description="use the pod's ServiceAccount instead of a kubeconfig"
    )
    k8s_allowed_namespaces: CommaList = Field(
        default=(), description="comma list of namespaces k8s.* steps may touch; empty: none"
    )
    k8s_request_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="deadline of every Kubernetes API call"
    )

    @field_validator("k8s_allowed_namespaces", mode="after")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            dns_label(entry)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _one_kube_config(self) -> KubernetesSettings:
        if self.kubeconfig is not None and self.k8s_in_cluster:
            raise ValueError("set RESPONDER_KUBECONFIG or RESPONDER_K8S_IN_CLUSTER, not both")
        if self.k8s_context and self.kubeconfig is None:
            raise ValueError("RESPONDER_K8S_CONTEXT needs RESPONDER_KUBECONFIG (its file): set it")
        return self


class TargetSettings(BaseModel):
    """What the other actions may reach: HTTP hosts, flag files, monitored databases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    http_allowed_hosts: CommaList = Field(
        default=(), description="comma list of hosts actions may call (`*.svc`); empty: none"
    )
    flagd_file_dirs: CommaList = Field(
        default=(), description="comma list of absolute dirs of flag files feature_flag.* may edit"
    )
    postgres_targets: dict[str, SecretStr] = Field(
        default_factory=dict, description="JSON map of name to DSN of databases postgres.* reads"
    )
    redis_targets: dict[str, SecretStr] = Field(
        default_factory=dict, description="JSON map of name to URL of the Redis redis.info reads"
    )

    @field_validator("http_allowed_hosts", mode="after")
    @classmethod
    def _valid_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_patterns(value)  # a bad pattern fails at start-up, not at the first request
        return value

    @field_validator("flagd_file_dirs", mode="after")
    @classmethod
    def _absolute_dirs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_dir(entry) for entry in value)


class LoggingSettings(BaseModel):
    """The daemon's own log lines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="json, console, or auto (console when stderr is a TTY)"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="lowest level logged"
    )


class Settings(BaseSettings):
    """Every knob of the daemon, one group per concern. Durations are in seconds (`*_seconds`)."""

    model_config = SettingsConfigDict(
        env_prefix="RESPONDER_", frozen=True, extra="forbid", env_nested_delimiter="__"
    )

    http: HttpSettings = Field(default_factory=HttpSettings, description="the HTTP server")
    access: AccessSettings = Field(default_factory=AccessSettings, description="who may call")
    intake: IntakeSettings = Field(default_factory=IntakeSettings, description="alerts in")
    rules: RuleSettings = Field(default_factory=RuleSettings, description="the rule files")
    runs: RunSettings = Field(default_factory=RunSettings, description="how runs execute")
    approvals: ApprovalSettings = Field(
        default_factory=ApprovalSettings, description="approval requests"
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="the durable store")
    coordination: CoordinationSettings = Field(
        default_factory=CoordinationSettings, description="replicas agreeing"
    )
    kubernetes: KubernetesSettings = Field(
        default_factory=KubernetesSettings, description="the cluster of k8s.* actions"
    )
    targets: TargetSettings = Field(
        default_factory=TargetSettings, description="what the other actions may reach"
    )
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="own logs")

    def __init__(self, **values: Any) -> None:
        """Flat names as keywords (`Settings(webhook_token=...)`), or whole groups."""
        super().__init__(**values)

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """Put each flat name (from env, file or keywords) into its group, over a whole group."""
        if not isinstance(data, Mapping):
            return data
        grouped: dict[str, Any] = {}
        for key, value in data.items():
            if key in SETTING_GROUPS:
                continue
            if key in cls.model_fields and isinstance(value, BaseModel | Mapping):
                grouped[key] = dict(value)  # a group given whole; flat names may refine it
            else:
                grouped[key] = value  # extra="forbid" names an unknown key
        for key, value in data.items():
            group = SETTING_GROUPS.get(key)
            if group is not None:
                grouped.setdefault(group, {})[key] = value
        return grouped

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order: explicit arguments, env, then the YAML file named by RESPONDER_CONFIG.

        Each source reads the flat names, decoded as pydantic-settings decodes top-level
        fields (JSON for maps and lists, comma lists as they are, `NAME__KEY` into maps).
        """
        flat = _flat_schema(settings_cls)
        config = settings_cls.model_config
        assert isinstance(init_settings, InitSettingsSource)
        sources: list[PydanticBaseSettingsSource] = [
            InitSettingsSource(flat, init_kwargs=init_settings.init_kwargs),
            EnvSettingsSource(
                flat,
                case_sensitive=config.get("case_sensitive"),
                env_prefix=config.get("env_prefix"),
                env_nested_delimiter=config.get("env_nested_delimiter"),
            ),
        ]
        config_file = os.environ.get("RESPONDER_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(flat, yaml_file=config_file))
        return tuple(sources)


def _group_models(settings_cls: type[BaseSettings]) -> dict[str, type[BaseModel]]:
    """Each group field of `settings_cls` and the model it holds."""
    models: dict[str, type[BaseModel]] = {}
    for group, info in settings_cls.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{settings_cls.__name__}.{group} is no group of settings")
        models[group] = model
    return models


def _group_table(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """Flat setting name -> the group field of `settings_cls` that holds it."""
    table: dict[str, str] = {}
    for group, model in _group_models(settings_cls).items():
        for name in model.model_fields:
            if name in table or name in settings_cls.model_fields:
                raise TypeError(f"setting {name!r} is declared twice or names a group")
            table[name] = group
    return table


@functools.cache
def _flat_schema(settings_cls: type[BaseSettings]) -> type[BaseSettings]:
    """A model of the flat names with the group fields' types: what the sources read against."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for model in _group_models(settings_cls).values()
        for name, info in model.model_fields.items()
    }
    return create_model(f"Flat{settings_cls.__name__}", __base__=BaseSettings, **fields)


SETTING_GROUPS: Mapping[str, str] = MappingProxyType(_group_table(Settings))


def error_lines(exc: ValidationError) -> list[str]:
    """`name: message` per invalid setting, by its flat name; pydantic's input is left out."""
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        if loc and loc[0] in Settings.model_fields:
            loc = loc[1:]  # the group is ours, the user set the flat name
        lines.append(f"{'.'.join(map(str, loc))}: {error['msg']}")
    return lines
