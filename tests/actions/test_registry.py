"""The action registry: lookup, parameter validation errors, and the `log` action."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from responder.actions.base import ActionContext, ActionRegistry, ActionSpec, StepResult
from responder.actions.http.requests import HttpRequestParams
from responder.actions.log_messages import LOG, LogParams
from responder.actions.shipped import default_registry
from responder.errors import NotAllowedError, PermanentError
from responder.models.http import HttpRequest, HttpResponse
from responder.models.plans import ActionClass


class _NoHttp:
    async def send(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError("the log action must not send HTTP")


def _context() -> ActionContext:
    return ActionContext(
        http=_NoHttp(),
        allowed_hosts=(),
        run_id="run-1",
        rule_id="rule-1",
        step_id="step-1",
        output_max_bytes=4096,
    )


def test_default_registry_names() -> None:
    registry = default_registry()
    assert registry.names() == (
        "circuit_breaker.force_open",
        "circuit_breaker.reset",
        "feature_flag.disable",
        "feature_flag.enable",
        "http.probe",
        "http.request",
        "k8s.delete_pod",
        "k8s.events",
        "k8s.logs",
        "k8s.pods",
        "k8s.rollout_restart",
        "k8s.scale",
        "log",
        "notify.pagerduty",
        "notify.slack",
        "notify.webhook",
        "postgres.cancel_query",
        "postgres.query",
        "postgres.terminate_backend",
        "redis.info",
    )
    assert registry.get("http.request").params_model is HttpRequestParams
    assert registry.get("log").action_class is ActionClass.DIAGNOSTIC


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("GET", ActionClass.DIAGNOSTIC),
        ("HEAD", ActionClass.DIAGNOSTIC),
        ("POST", ActionClass.CONTAINMENT),
        ("PUT", ActionClass.CONTAINMENT),
        ("DELETE", ActionClass.CONTAINMENT),
    ],
)
def test_http_request_is_containment_unless_it_only_reads(
    method: str, expected: ActionClass
) -> None:
    spec = default_registry().get("http.request")
    assert spec.action_class is ActionClass.CONTAINMENT  # assumed before params are known
    assert spec.classify is not None
    params = HttpRequestParams.model_validate({"url": "http://a.svc/", "method": method})
    assert spec.classify(params) is expected


def test_unknown_action_lists_known_names() -> None:
    with pytest.raises(PermanentError) as caught:
        default_registry().get("k8s.delete_everything")
    assert str(caught.value) == (
        "unknown action 'k8s.delete_everything'; known actions: "
        + ", ".join(default_registry().names())
    )


def test_validate_returns_the_params_model() -> None:
    params = default_registry().validate("http.request", {"url": "http://a.svc/", "json": None})
    assert isinstance(params, HttpRequestParams)
    assert params.method == "GET"
    assert params.timeout_seconds == 10.0


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("http.request", {}, "with.url: Field required"),
        ("http.request", {"url": "http://a/", "verb": "GET"}, "with.verb: Extra inputs"),
        ("http.request", {"url": "http://a/", "method": "TRACE"}, "with.method: Input should be"),
        ("http.request", {"url": "http://a/", "timeout_seconds": 121}, "with.timeout_seconds:"),
        ("http.request", {"url": "http://a/", "timeout_seconds": 0}, "with.timeout_seconds:"),
        ("http.request", {"url": "http://a/", "expect_status": [200, 700]}, "with.expect_status:"),
        ("http.request", {"url": "http://a/", "expect_status": []}, "with.expect_status:"),
        ("http.request", {"url": "http://a/", "headers": {"X": 1}}, "with.headers.X:"),
        ("http.request", {"url": "http://a/", "headers": {"Host": "evil"}}, "with.headers:"),
        ("http.request", {"url": "http://a/", "headers": {"A B": "x"}}, "with.headers:"),
        ("http.request", {"url": "http://a/", "headers": {"X": "a\r\nB: c"}}, "with.headers:"),
        ("http.request", {"url": "http://a/", "json": {"a": 1}}, "json body cannot be sent"),
        ("log", {}, "with.message: Field required"),
        ("log", {"message": ""}, "with.message: String should have at least 1"),
        ("log", {"message": "x" * 2001}, "with.message: String should have at most 2000"),
        ("log", {"message": "m", "level": "debug"}, "with.level: Input should be"),
        ("log", {"message": "m", "fields": {"a": 1}}, "with.fields.a: Input should be"),
        ("log", {"message": "m", "fields": {"bad key": "v"}}, "with.fields: Value error"),
    ],
)
def test_validate_errors_name_the_field(name: str, params: dict[str, Any], expected: str) -> None:
    with pytest.raises(PermanentError) as caught:
        default_registry().validate(name, params)
    message = str(caught.value)
    assert message.startswith(f"action {name!r}: invalid parameters: ")
    assert expected in message


def test_validate_errors_do_not_echo_values() -> None:
    with pytest.raises(PermanentError) as caught:
        default_registry().validate(
            "http.request", {"url": "http://a/", "headers": {"Authorization": "Bearer s3cr3t\n"}}
        )
    assert "s3cr3t" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_params_models_are_frozen_and_strict() -> None:
    params = LogParams(message="m")
    with pytest.raises(ValidationError):
        params.message = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        LogParams.model_validate({"message": "m", "colour": "red"})


def test_http_request_params_round_trip_by_alias() -> None:
    params = HttpRequestParams.model_validate(
        {"method": "post", "url": "http://a/", "json": {"x": [1]}, "expect_status": [201]}
    )
    dumped = params.model_dump(mode="json")
    assert dumped["method"] == "POST"
    assert dumped["json"] == {"x": [1]}
    assert HttpRequestParams.model_validate(dumped) == params


def test_check_applies_the_allowlist_at_plan_time() -> None:
    spec = default_registry().get("http.request")
    assert spec.check is not None
    params = spec.params_model.model_validate({"url": "http://evil.com/"})
    with pytest.raises(NotAllowedError, match="RESPONDER_HTTP_ALLOWED_HOSTS"):
        spec.check(params, ("*.svc",))
    spec.check(spec.params_model.model_validate({"url": "http://a.svc/"}), ("*.svc",))


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        ActionRegistry([LOG, LOG])


def test_custom_spec_is_registered() -> None:
    class Params(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        n: int

    async def run(params: Params, ctx: ActionContext) -> StepResult:
        return StepResult(ok=True, summary=str(params.n))

    spec = ActionSpec(
        name="count",
        params_model=Params,
        action_class=ActionClass.CONTAINMENT,
        default_timeout=timedelta(seconds=1),
        blast_radius="none",
        description="test",
        run=run,
        describe=lambda p: {"n": p.n},
    )
    registry = ActionRegistry([spec, LOG])
    assert registry.names() == ("count", "log")
    assert registry.validate("count", {"n": "3"}) == Params(n=3)


async def test_log_action_returns_its_message() -> None:
    params = LogParams(message="breaker open\non checkout", level="warning", fields={"svc": "c"})
    result = await LOG.run(params, _context())
    assert result == StepResult(
        ok=True,
        summary="breaker open on checkout",
        output={"message": "breaker open\non checkout", "level": "warning", "fields": {"svc": "c"}},
    )


def test_log_describe_is_redacted() -> None:
    params = LogParams(message="token=abc123", fields={"password": "p"})
    assert LOG.describe(params) == {
        "message": "token=[REDACTED]",
        "level": "info",
        "fields": {"password": "[REDACTED]"},
    }


def test_step_result_is_frozen_and_strict() -> None:
    result = StepResult(ok=True, summary="s")
    assert result.output == {}
    assert result.verified is None
    with pytest.raises(ValidationError):
        StepResult.model_validate({"ok": True, "summary": "s", "extra": 1})


def test_log_module_does_not_import_structlog() -> None:
    import responder.actions.log_messages as module

    assert "structlog" not in vars(module)
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    assert "import structlog" not in source
