"""The `notify.slack` action: one Block Kit message through a Slack incoming webhook.

The webhook URL is the secret (it alone grants posting to the channel), so it is read at run
time from the environment variable named by `webhook_url_env` and its host must still be in
RESPONDER_HTTP_ALLOWED_HOSTS (`hooks.slack.com`). describe() shows `[from env NAME]`.

The message has `text` (the notification fallback) and blocks: a header (`title`), a section
with `text` and up to 10 `fields` (more fields continue in further sections), a context line
`responder · rule <rule_id> · run <run_id>`, and an "Open" button when `link` is given. Text
from alerts is escaped (`&`, `<`, `>`), so a label cannot mention `<!channel>` or forge links.

Outcome: 200 with body `ok` -> ok. 429 and 5xx -> TemporaryError (after `Retry-After`). Any
other answer -> StepResult(ok=False) carrying Slack's plain-text error (`invalid_payload`,
`no_text`, `channel_not_found`, ...).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import check_env_name
from responder.actions.notify.sending import (
    answer_text,
    check_secret_url,
    json_post,
    raise_if_retryable,
    read_env_secret,
)
from responder.core.host_allowlists import parse_target
from responder.core.redaction import redact, truncate
from responder.errors import NotAllowedError
from responder.models.plans import ActionClass

MAX_BLOCKS = 50
_FIELDS_PER_SECTION = 10
_MAX_FIELDS = 40


def escape_mrkdwn(text: str) -> str:
    """Text safe inside Slack mrkdwn: `&`, `<` and `>` escaped (no mentions, no links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackParams(BaseModel):
    """Parameters of `notify.slack` (the `with:` block of a step)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_url_env: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=3000)
    title: str | None = Field(default=None, min_length=1, max_length=150)
    fields: dict[str, str] = Field(default_factory=dict, max_length=_MAX_FIELDS)
    link: str | None = Field(default=None, min_length=1, max_length=3000)
    link_text: str = Field(default="Open", min_length=1, max_length=75)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("webhook_url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return check_env_name(value)

    @field_validator("fields")
    @classmethod
    def _field_sizes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not name or len(name) > 100:
                raise ValueError("field names must have 1-100 characters")
            if len(item) > 1800:
                raise ValueError(f"field {name[:64]!r} is longer than 1800 characters")
        return value

    @field_validator("link")
    @classmethod
    def _link_is_http(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_target(value)
            except NotAllowedError:
                raise ValueError("link must be a plain http(s) URL") from None
        return value


def _text(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def build_message(params: SlackParams, rule_id: str, run_id: str) -> dict[str, Any]:
    """The webhook body: `text` fallback plus at most 50 blocks."""
    blocks: list[dict[str, Any]] = []
    if params.title is not None:
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": params.title}})
    fields = [
        _text(f"*{escape_mrkdwn(name)}:*\n{escape_mrkdwn(value)}")
        for name, value in params.fields.items()
    ]
    section: dict[str, Any] = {"type": "section", "text": _text(escape_mrkdwn(params.text))}
    if fields:
        section["fields"] = fields[:_FIELDS_PER_SECTION]
    blocks.append(section)
    for start in range(_FIELDS_PER_SECTION, len(fields), _FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + _FIELDS_PER_SECTION]})
    context = f"responder · rule {escape_mrkdwn(rule_id)} · run {escape_mrkdwn(run_id)}"
    blocks.append({"type": "context", "elements": [_text(context)]})
    if params.link is not None:
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": params.link_text},
            "url": params.link,
        }
        blocks.append({"type": "actions", "elements": [button]})
    return {"text": escape_mrkdwn(params.text), "blocks": blocks[:MAX_BLOCKS]}


async def _run(params: SlackParams, ctx: ActionContext) -> StepResult:
    url = read_env_secret(params.webhook_url_env)
    check_secret_url(url, params.webhook_url_env, ctx.allowed_hosts)
    message = build_message(params, ctx.rule_id, ctx.run_id)
    response = await ctx.http.send(json_post(url, message, params.timeout_seconds))
    where = f"POST Slack webhook (from env {params.webhook_url_env})"
    secrets = (url, url.rsplit("/", 1)[-1])  # the URL, and its last path part (the token)
    raise_if_retryable(response, where, secrets)
    answer = answer_text(response, secrets, 300)
    ok = response.status == 200 and answer == "ok"
    summary = f"{where} -> {response.status} {answer!r}"
    output = {"status": response.status, "response": answer, "blocks": len(message["blocks"])}
    return StepResult(ok=ok, summary=summary, output=truncate(output, ctx.output_max_bytes))


def _describe(params: SlackParams) -> dict[str, Any]:
    return {
        "method": "POST",
        "webhook_url": f"[from env {params.webhook_url_env}]",
        "headers": {"Content-Type": "application/json"},
        "json": redact(build_message(params, "{rule_id}", "{run_id}")),
    }


NOTIFY_SLACK: ActionSpec[SlackParams] = ActionSpec(
    name="notify.slack",
    params_model=SlackParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="one message to the Slack channel fixed by the webhook; nothing under repair",
    description="Post a Block Kit message to a Slack incoming webhook (URL read from env).",
    run=_run,
    describe=_describe,
    check=None,  # the URL is only known at run time (from the env); allowlisted there
    best_effort=True,
)
