"""`k8s.logs`: the tail of a pod's log, optionally filtered by a bounded regex.

Give one of `pod`, `deployment` or `selector`; with the latter two the `max_pods` least healthy
pods are read (not ready, then most restarts first). Every read is bounded by the server
(`tailLines`, `limitBytes`); `previous: true` reads the terminated instance (what a crash-looping
container printed before it died). Without `container`, a pod with several containers is read
for its first one.

`grep` is a Python regex applied to each line (the first 1024 characters of it), run off the
event loop. To keep it from backtracking for ever it is refused when it has a backreference, a
quantified group that itself contains a quantifier or an alternation (`(a+)+`, `(a|b)*`), or
more than two unbounded quantifiers. Output lines keep the end of the log: when they do not
fit the output cap, the oldest are dropped (`dropped_lines`). Lines are redacted.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import fitted
from responder.actions.kubernetes.pods import least_healthy_first, select_pods
from responder.actions.kubernetes.targets import (
    Labels,
    NamespacedParams,
    check_params_namespace,
    only_one,
    pods_path,
)
from responder.actions.kubernetes_access import ContainerName, ObjectName, kube_for
from responder.core.redaction import json_size
from responder.errors import PermanentError
from responder.models.kube import Pod
from responder.models.plans import ActionClass
from responder.ports.kubernetes import KubeApi

MATCH_CHARS = 1024
_QUANTIFIERS = "*+?{"


def safe_pattern(pattern: str) -> str:
    """`pattern` if it compiles and cannot backtrack catastrophically, else ValueError."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"grep is not a valid regex: {exc}") from None
    if re.search(r"\\[1-9]|\(\?P=", pattern):
        raise ValueError("grep may not use backreferences")
    stack: list[list[bool]] = [[False, False]]  # per open group: [has quantifier, has "|"]
    unbounded, index = 0, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            index = _class_end(pattern, index)
        elif char == "(":
            stack.append([False, False])
        elif char == "|":
            stack[-1][1] = True
        elif char == ")" and len(stack) > 1:
            inner = stack.pop()
            following = pattern[index + 1 : index + 2]
            if following and following in _QUANTIFIERS and (inner[0] or inner[1]):
                raise ValueError(
                    "grep may not quantify a group that contains a quantifier or '|' "
                    "(like (a+)+ or (a|b)*): it can backtrack for ever"
                )
            stack[-1][0] = stack[-1][0] or inner[0]
        elif char in _QUANTIFIERS and index > 0 and pattern[index - 1] != "(":
            stack[-1][0] = True
            if char in "*+" or re.match(r"\{\d*,\}", pattern[index:]):
                unbounded += 1
        index += 1
    if unbounded > 2:
        raise ValueError("grep may use at most two unbounded quantifiers (*, +, {n,})")
    return pattern


def _class_end(pattern: str, start: int) -> int:
    """The index of the `]` closing the character class opened at `start`."""
    index = start + 1
    if pattern[index : index + 1] == "^":
        index += 1
    if pattern[index : index + 1] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index


class LogsParams(NamespacedParams):
    """Parameters of `k8s.logs`."""

    pod: ObjectName | None = None
    deployment: ObjectName | None = None
    selector: Labels | None = None
    container: ContainerName | None = None
    previous: bool = False
    tail_lines: int = Field(default=100, ge=1, le=1000)
    limit_bytes: int = Field(default=65536, ge=1024, le=262144)
    grep: str | None = Field(default=None, min_length=1, max_length=200)
    max_pods: int = Field(default=1, ge=1, le=5)

    @field_validator("grep")
    @classmethod
    def _bounded_regex(cls, value: str | None) -> str | None:
        return safe_pattern(value) if value is not None else None

    @model_validator(mode="after")
    def _one_target(self) -> LogsParams:
        only_one(self, "pod", "deployment", "selector")
        return self


def _filter(text: str, grep: str | None) -> tuple[list[str], int]:
    lines = text.splitlines()
    if grep is None:
        return lines, len(lines)
    pattern = re.compile(grep)
    return [line for line in lines if pattern.search(line[:MATCH_CHARS])], len(lines)


def _tail(lines: list[str], budget: int) -> tuple[list[str], int]:
    """The last lines that fit in `budget` bytes of JSON, and how many were dropped."""
    kept: list[str] = []
    used = 2
    for line in reversed(lines):
        cost = json_size(line) + 1
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return kept[::-1], len(lines) - len(kept)


def _container(pod: Pod, wanted: str | None) -> str | None:
    if wanted is not None:
        return wanted
    regular = [c.name for c in pod.containers if not c.init]
    return regular[0] if len(regular) > 1 else None


async def _read(kube: KubeApi, params: LogsParams, pod: Pod, budget: int) -> dict[str, Any]:
    container = _container(pod, params.container)
    entry: dict[str, Any] = {"pod": pod.name, "container": container, "previous": params.previous}
    try:
        text = await kube.read_pod_log(
            params.namespace,
            pod.name,
            container=container,
            tail_lines=params.tail_lines,
            limit_bytes=params.limit_bytes,
            previous=params.previous,
        )
    except PermanentError as exc:
        return {**entry, "error": str(exc)}
    lines, total = await asyncio.to_thread(_filter, text, params.grep)
    kept, dropped = _tail(lines, budget)
    entry.update(line_count=total, lines=kept, dropped_lines=dropped)
    if params.grep is not None:
        entry["matched"] = len(lines)
    return entry


async def _run(params: LogsParams, ctx: ActionContext) -> StepResult:
    kube = kube_for(ctx, params.namespace)
    found, what = await select_pods(
        kube, params.namespace, params.pod, params.deployment, params.selector
    )
    chosen = least_healthy_first(found)[: params.max_pods]
    budget = max(512, ctx.output_max_bytes // max(1, len(chosen)) - 512)
    logs = [await _read(kube, params, pod, budget) for pod in chosen]
    read = [entry for entry in logs if "error" not in entry]
    output: dict[str, Any] = {"namespace": params.namespace, "selected": what, "logs": logs}
    if not chosen:
        return fitted(ctx, False, f"{what}: no pods", output)
    lines = sum(len(entry["lines"]) for entry in read)
    kind = f"line(s) matching {params.grep!r}" if params.grep else "line(s)"
    summary = f"{what}: {lines} {kind} from {len(read)} of {len(chosen)} pod(s)"
    # the pods chosen at run time: one GET each
    sent = {"path": [_log_path(params, e["pod"], e["container"]) for e in logs]}
    if not read:
        return fitted(ctx, False, f"{summary}; {logs[0]['error']}", output, sent=sent)
    return fitted(ctx, True, summary, output, sent=sent)


def _log_path(params: LogsParams, pod: str, container: str | None) -> str:
    query = f"tailLines={params.tail_lines}&limitBytes={params.limit_bytes}"
    if container:
        query += f"&container={container}"
    if params.previous:
        query += "&previous=true"
    return f"{pods_path(params.namespace, pod)}/log?{query}"


def _describe(params: LogsParams) -> dict[str, Any]:
    pod = params.pod or "<the least healthy selected pods>"
    described: dict[str, Any] = {
        "method": "GET",
        "path": _log_path(params, pod, params.container),
        "grep": params.grep,
    }
    if params.pod is None:
        described["pods"] = {
            "max_pods": params.max_pods,
            "deployment": params.deployment,
            "selector": params.selector,
        }
    return described


K8S_LOGS: ActionSpec[LogsParams] = ActionSpec(
    name="k8s.logs",
    params_model=LogsParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="reads the log tail of at most 5 pods in an allowlisted namespace",
    description="Tail a pod's log (or the least healthy pods of a workload), optionally the "
    "previous instance and a bounded regex filter; truncated and redacted.",
    run=_run,
    describe=_describe,
    check_namespaces=check_params_namespace,
)
