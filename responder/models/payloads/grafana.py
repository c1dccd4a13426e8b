"""Grafana-managed alerting webhook (`version: "1"`): the Alertmanager shape plus Grafana's keys.

Adds the top-level `orgId`, `title`, `state` (`alerting` | `ok`) and `message`, and per alert
`silenceURL`, `dashboardURL`, `panelURL`, `imageURL`, `values` (map of numbers, or null),
`valueString`, `orgId` and `ruleUID`. Unknown keys (`embeddedImage`, `enrichments`, ...) are
ignored.
"""

from __future__ import annotations

from pydantic import Field

from responder.models.payloads.alertmanager import AlertGroupEnvelope, AlertmanagerAlert


class GrafanaAlert(AlertmanagerAlert):
    """One element of `alerts` in a Grafana webhook body."""

    silence_url: str = Field(default="", alias="silenceURL")
    dashboard_url: str = Field(default="", alias="dashboardURL")
    panel_url: str = Field(default="", alias="panelURL")
    image_url: str = Field(default="", alias="imageURL")
    values: dict[str, float] | None = None
    value_string: str = Field(default="", alias="valueString")
    org_id: int | None = Field(default=None, alias="orgId")
    rule_uid: str | None = Field(default=None, alias="ruleUID")


class GrafanaPayload(AlertGroupEnvelope):
    """The whole Grafana webhook body."""

    org_id: int | None = Field(default=None, alias="orgId")
    title: str = ""
    state: str = ""
    message: str = ""
    alerts: list[GrafanaAlert]
