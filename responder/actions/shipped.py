"""The actions shipped with responder, assembled into the default registry.

Every family imports `base` for its types; this module alone imports the families, and nothing
in `responder.actions` imports it back (as kopf's registries never import their handlers).
"""

from __future__ import annotations

from typing import Any

from responder.actions.base import ActionRegistry, ActionSpec
from responder.actions.circuit_breakers import (
    CIRCUIT_BREAKER_FORCE_OPEN,
    CIRCUIT_BREAKER_RESET,
)
from responder.actions.databases.postgres_checks import POSTGRES_QUERY
from responder.actions.databases.postgres_signals import (
    POSTGRES_CANCEL_QUERY,
    POSTGRES_TERMINATE_BACKEND,
)
from responder.actions.databases.redis_info import REDIS_INFO
from responder.actions.feature_flags.switches import FEATURE_FLAG_DISABLE, FEATURE_FLAG_ENABLE
from responder.actions.http.probes import HTTP_PROBE
from responder.actions.http.requests import HTTP_REQUEST
from responder.actions.kubernetes.deleting import K8S_DELETE_POD
from responder.actions.kubernetes.events import K8S_EVENTS
from responder.actions.kubernetes.logs import K8S_LOGS
from responder.actions.kubernetes.pods import K8S_PODS
from responder.actions.kubernetes.rollouts import K8S_ROLLOUT_RESTART
from responder.actions.kubernetes.scaling import K8S_SCALE
from responder.actions.log_messages import LOG
from responder.actions.notify.pagerduty import NOTIFY_PAGERDUTY
from responder.actions.notify.slack import NOTIFY_SLACK
from responder.actions.notify.webhooks import NOTIFY_WEBHOOK


def shipped_actions() -> list[ActionSpec[Any]]:
    """Every action shipped with responder."""
    return [
        HTTP_REQUEST,
        HTTP_PROBE,
        LOG,
        CIRCUIT_BREAKER_RESET,
        CIRCUIT_BREAKER_FORCE_OPEN,
        NOTIFY_SLACK,
        NOTIFY_WEBHOOK,
        NOTIFY_PAGERDUTY,
        POSTGRES_QUERY,
        POSTGRES_CANCEL_QUERY,
        POSTGRES_TERMINATE_BACKEND,
        REDIS_INFO,
        FEATURE_FLAG_DISABLE,
        FEATURE_FLAG_ENABLE,
        K8S_ROLLOUT_RESTART,
        K8S_SCALE,
        K8S_PODS,
        K8S_LOGS,
        K8S_EVENTS,
        K8S_DELETE_POD,
    ]


def default_registry() -> ActionRegistry:
    """The actions shipped with responder."""
    return ActionRegistry(shipped_actions())
