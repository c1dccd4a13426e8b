"""One typed `web.AppKey` per resource held by the application."""

from __future__ import annotations

from aiohttp import web

from responder.actions.catalog import PolicyCatalog
from responder.engine.approvals import ApprovalDesk
from responder.engine.intake import AlertQueue, Intake
from responder.engine.pipeline import Pipeline
from responder.engine.rulebook import RuleBook
from responder.engine.workers import WorkerPool
from responder.metrics import Metrics
from responder.ports.clock import Clock
from responder.ports.coordination import Coordinator
from responder.ports.http import HttpApi
from responder.ports.kubernetes import KubeApi
from responder.ports.store import Store
from responder.settings import Settings
from responder.web.identities import Approver
from responder.web.received_log import ReceivedLog

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
CLOCK = web.AppKey("clock", Clock)
STORE = web.AppKey("store", Store)
COORDINATOR = web.AppKey("coordinator", Coordinator)
HTTP = web.AppKey("http", HttpApi)
KUBE = web.AppKey("kube", KubeApi)  # set only when a cluster is configured
CATALOG = web.AppKey("catalog", PolicyCatalog)
RULEBOOK = web.AppKey("rulebook", RuleBook)
QUEUE = web.AppKey("queue", AlertQueue)
INTAKE = web.AppKey("intake", Intake)
RECEIVED_LOG = web.AppKey("received_log", ReceivedLog)
PIPELINE = web.AppKey("pipeline", Pipeline)
WORKERS = web.AppKey("workers", WorkerPool)
DESK = web.AppKey("desk", ApprovalDesk)
APPROVERS = web.AppKey("approvers", tuple[Approver, ...])
READERS = web.AppKey("readers", tuple[Approver, ...])
