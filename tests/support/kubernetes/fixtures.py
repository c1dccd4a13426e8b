"""Fixtures for the k8s.* tests: the fake API server, a kubeconfig for it, the real adapter.

`fake_kube` serves 127.0.0.1 on a free port; `kube_api` is the production KubernetesApi built
from a kubeconfig file naming that server (namespaces `shop` and `ops` allowed, 2 s request
timeout); `kube_ctx` is an ActionContext carrying it, as the engine builds one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responder.actions.base import ActionContext
from responder.adapters.kubernetes.api import KubernetesApi
from responder.models.http import HttpRequest, HttpResponse
from tests.support.kubernetes.server import FakeKube

NAMESPACES = ("shop", "ops")


class NoHttp:
    """An HttpApi that k8s actions must never use."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError(f"k8s actions send no plain HTTP (got {request.url})")


@pytest.fixture
async def fake_kube() -> AsyncIterator[FakeKube]:
    """A running fake Kubernetes API server."""
    fake = FakeKube()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
def kubeconfig(fake_kube: FakeKube, tmp_path: Path) -> Path:
    """A kubeconfig file pointing at the fake."""
    return fake_kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
async def kube_api(kubeconfig: Path) -> AsyncIterator[KubernetesApi]:
    """The real adapter over the real client, talking HTTP to the fake."""
    api = KubernetesApi.from_kubeconfig(
        kubeconfig,
        allowed_namespaces=NAMESPACES,
        request_timeout_seconds=2.0,
        instance_id="responder-test-1",
    )
    try:
        yield api
    finally:
        await api.close()


def context_for(
    kube: KubernetesApi | None,
    *,
    namespaces: tuple[str, ...] = NAMESPACES,
    output_max_bytes: int = 65536,
    step_id: str = "contain",
) -> ActionContext:
    """An ActionContext as the engine builds one for a step."""
    return ActionContext(
        http=NoHttp(),
        allowed_hosts=(),
        run_id="run-42",
        rule_id="web-broken",
        step_id=step_id,
        output_max_bytes=output_max_bytes,
        kube=kube,
        allowed_namespaces=namespaces,
    )


@pytest.fixture
def kube_ctx(kube_api: KubernetesApi) -> ActionContext:
    """An ActionContext with the adapter and the allowed namespaces."""
    return context_for(kube_api)
