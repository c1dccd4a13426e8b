"""`k8s.logs` against the fake API server: bounded tails, previous instances, a safe grep."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actions.base import ActionContext, StepResult
from responder.actions.kubernetes.logs import K8S_LOGS, LogsParams, safe_pattern
from responder.actions.shipped import default_registry
from responder.core.redaction import json_size
from responder.errors import PermanentError
from tests.support.kubernetes import objects
from tests.support.kubernetes.fixtures import context_for
from tests.support.kubernetes.server import FakeKube

LOG = "".join(f"line {i} ok\n" for i in range(1, 201)) + "ERROR db timeout password=hunter2\n"


def _pod(
    name: str, *, ready: bool = True, restarts: int = 0, containers: int = 1
) -> dict[str, Any]:
    statuses = [
        objects.container_status(
            f"c{i}" if containers > 1 else "app", "shop/web:1.4", ready=ready, restarts=restarts
        )
        for i in range(containers)
    ]
    return objects.pod("shop", name, {"app": "web"}, statuses, ready=ready)


async def _logs(ctx: ActionContext, **params: Any) -> StepResult:
    return await K8S_LOGS.run(LogsParams.model_validate({"namespace": "shop", **params}), ctx)


async def test_tail_of_one_pod_is_bounded_by_the_server_and_redacted(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_pod(_pod("web-1"))
    fake_kube.set_log("shop", "web-1", LOG)
    result = await _logs(kube_ctx, pod="web-1", tail_lines=3)
    assert result.ok
    [entry] = result.output["logs"]
    assert entry["lines"] == ["line 199 ok", "line 200 ok", "ERROR db timeout password=[REDACTED]"]
    assert entry["dropped_lines"] == 0
    [request] = fake_kube.seen("GET", "/api/v1/namespaces/shop/pods/web-1/log")
    assert request.query == {"tailLines": "3", "limitBytes": "65536"}
    assert result.summary == "pod shop/web-1: 3 line(s) from 1 of 1 pod(s)"


async def test_grep_filters_lines_and_previous_reads_the_dead_instance(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_pod(_pod("web-1"))
    fake_kube.set_log("shop", "web-1", "fresh start\n")
    fake_kube.set_log("shop", "web-1", LOG, previous=True)
    grep = r"ERROR|line 19\d "
    result = await _logs(kube_ctx, pod="web-1", previous=True, grep=grep, tail_lines=60)
    [entry] = result.output["logs"]
    assert entry["previous"] is True
    assert entry["line_count"] == 60
    assert entry["matched"] == len(entry["lines"]) == 11
    assert entry["lines"][0] == "line 190 ok"
    assert entry["lines"][-1].startswith("ERROR db timeout")
    [request] = fake_kube.seen("GET", "/api/v1/namespaces/shop/pods/web-1/log")
    assert request.query["previous"] == "true"


async def test_least_healthy_pods_of_a_deployment_and_a_multi_container_pod(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    fake_kube.add_pod(_pod("web-sick", ready=False, restarts=4, containers=2))
    fake_kube.set_log("shop", "web-sick", "oom\n", container="c0")
    result = await _logs(kube_ctx, deployment="web", max_pods=2)
    first, second = result.output["logs"]
    assert (first["pod"], first["container"], first["lines"]) == ("web-sick", "c0", ["oom"])
    assert second["lines"] == []  # a healthy pod with an empty log
    assert result.ok


async def test_the_oldest_lines_are_dropped_to_fit_the_output(
    fake_kube: FakeKube, kube_api: Any
) -> None:
    fake_kube.add_pod(_pod("web-1"))
    fake_kube.set_log("shop", "web-1", LOG)
    ctx = context_for(kube_api, output_max_bytes=2048)
    result = await _logs(ctx, pod="web-1", tail_lines=201)
    [entry] = result.output["logs"]
    assert entry["lines"][-1].startswith("ERROR db timeout")
    assert entry["dropped_lines"] > 50
    assert json_size(result.output) <= 2048  # fitted by dropping the oldest lines, not cut
    assert len(entry["lines"]) + entry["dropped_lines"] == 201


async def test_a_missing_previous_instance_is_reported_not_raised(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_pod(_pod("web-1"))
    result = await _logs(kube_ctx, pod="web-1", previous=True)
    assert result.ok is False
    assert 'previous terminated container "app" in pod "web-1" not found' in result.summary


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a|aa)*", "(.*a){10}", r"(\w+\s?)*x", "(a)\\1", "(?P<x>a)(?P=x)", ".*a.*b.*c", "("],
)
def test_grep_patterns_that_can_backtrack_for_ever_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="grep"):
        safe_pattern(pattern)
    with pytest.raises(PermanentError, match=r"with\.grep"):
        default_registry().validate("k8s.logs", {"namespace": "shop", "pod": "p", "grep": pattern})


@pytest.mark.parametrize(
    "pattern", ["ERROR|WARN", r"timeout after \d+ ms", "(?:db|cache) down", "[(]+x", r"\(a+\)+"]
)
def test_ordinary_grep_patterns_are_accepted(pattern: str) -> None:
    assert safe_pattern(pattern) == pattern


def test_describe_renders_the_request() -> None:
    params = LogsParams.model_validate(
        {
            "namespace": "shop",
            "pod": "web-1",
            "container": "app",
            "previous": True,
            "tail_lines": 50,
        }
    )
    shown = K8S_LOGS.describe(params)
    assert shown["path"] == (
        "/api/v1/namespaces/shop/pods/web-1/log?tailLines=50&limitBytes=65536&container=app"
        "&previous=true"
    )
    for bad in ("../etc", "App", "a_b"):
        with pytest.raises(PermanentError, match=r"with\.container"):
            default_registry().validate(
                "k8s.logs", {"namespace": "shop", "pod": "p", "container": bad}
            )
