"""KubernetesApi (the adapter) over the real client: configuration, timeouts, error translation,
ConfigMap compare-and-swap, and the in-cluster loader against a TLS fake."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from responder.adapters.kubernetes.api import KubernetesApi
from responder.errors import PermanentError, TemporaryError
from responder.settings import Settings
from responder.web.services import open_kube
from tests.support.kubernetes.fixtures import NAMESPACES
from tests.support.kubernetes.server import TOKEN, FakeKube
from tests.support.loopback import free_port

DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"
FLAGS = "/api/v1/namespaces/shop/configmaps/flags"


async def test_config_map_replace_is_compare_and_swap(
    fake_kube: FakeKube, kube_api: KubernetesApi
) -> None:
    fake_kube.add_config_map("shop", "flags", {"checkout-v2": "on", "search": "on"})
    read = await kube_api.get_config_map("shop", "flags")
    assert read.data == {"checkout-v2": "on", "search": "on"}
    written = await kube_api.replace_config_map(
        "shop", "flags", {"checkout-v2": "off"}, read.resource_version
    )
    assert written.data == {"checkout-v2": "off"}
    assert written.resource_version != read.resource_version
    stored = fake_kube.must("", "configmaps", "shop", "flags")
    assert stored["metadata"]["labels"] == {"app": "flags"}  # the rest of the object is kept
    [put] = fake_kube.seen("PUT", FLAGS)
    assert put.json()["metadata"]["resourceVersion"] == read.resource_version
    with pytest.raises(TemporaryError, match="changed since it was read"):
        await kube_api.replace_config_map("shop", "flags", {"x": "1"}, read.resource_version)
    fake_kube.fail("PUT", FLAGS, 409, message='configmaps "flags": the object has been modified')
    with pytest.raises(TemporaryError, match=r"conflict \(409\).*read it again"):
        await kube_api.replace_config_map("shop", "flags", {"x": "1"}, written.resource_version)


async def test_a_stale_resource_version_is_a_409_from_the_server(
    fake_kube: FakeKube, kube_api: KubernetesApi
) -> None:
    """The server enforces it too: a PUT carrying an old resourceVersion is refused."""
    fake_kube.add_config_map("shop", "flags", {"a": "1"})
    first = await kube_api.get_config_map("shop", "flags")
    await kube_api.replace_config_map("shop", "flags", {"a": "2"}, first.resource_version)
    stale = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {"a": "3"},
        "metadata": {
            "name": "flags",
            "namespace": "shop",
            "resourceVersion": first.resource_version,
        },
    }
    reply = await asyncio.to_thread(_put, fake_kube.url + FLAGS, stale)
    assert reply["code"] == 409
    assert reply["reason"] == "Conflict"


def _put(url: str, body: dict[str, Any]) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            loaded: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        loaded = json.loads(exc.read())
    return loaded


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (500, TemporaryError, "answered 500"),
        (503, TemporaryError, "answered 503"),
        (429, TemporaryError, "answered 429"),
        (404, PermanentError, r"not found \(404\)"),
        (422, PermanentError, r"rejected \(422\)"),
        (403, PermanentError, r'RBAC verb "get" on resource "deployments" \(apiGroup "apps"\)'),
    ],
)
async def test_errors_are_translated(
    fake_kube: FakeKube,
    kube_api: KubernetesApi,
    status: int,
    error: type[Exception],
    message: str,
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.fail("GET", DEPLOYMENT, status)
    with pytest.raises(error, match=message):
        await kube_api.read_deployment("shop", "web")
    assert (await kube_api.read_deployment("shop", "web")).name == "web"  # the next one works


async def test_a_hung_server_times_out_once_without_retrying_the_read(
    fake_kube: FakeKube, kube_api: KubernetesApi
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.hang("GET", DEPLOYMENT, 4.0, times=5)
    started = time.monotonic()
    with pytest.raises(TemporaryError, match=r"did not answer within 0.5 s"):
        await kube_api.read_deployment("shop", "web", timeout_seconds=0.5)
    assert time.monotonic() - started < 1.5
    assert len(fake_kube.seen("GET", DEPLOYMENT)) == 1


async def test_an_unreachable_server_is_temporary(tmp_path: Path) -> None:
    fake = FakeKube(port=free_port())  # never started: nothing listens there
    config = fake.write_kubeconfig(tmp_path / "kubeconfig")
    api = KubernetesApi.from_kubeconfig(
        config, allowed_namespaces=NAMESPACES, request_timeout_seconds=2.0
    )
    try:
        with pytest.raises(TemporaryError, match="cannot reach the API server"):
            await api.read_deployment("shop", "web")
    finally:
        await api.close()


async def test_a_wrong_token_is_a_permanent_unauthorized(
    fake_kube: FakeKube, tmp_path: Path
) -> None:
    config = fake_kube.write_kubeconfig(tmp_path / "kubeconfig", token="wrong")
    api = KubernetesApi.from_kubeconfig(
        config, allowed_namespaces=NAMESPACES, request_timeout_seconds=2.0
    )
    try:
        with pytest.raises(PermanentError, match=r"unauthorized \(401\).*RESPONDER_KUBECONFIG"):
            await api.read_deployment("shop", "web")
    finally:
        await api.close()


async def test_field_selector_values_are_checked(kube_api: KubernetesApi) -> None:
    with pytest.raises(PermanentError, match="field selector"):
        await kube_api.list_events("shop", name="web,involvedObject.kind=Secret")


def test_settings_name_the_kubeconfig_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not load"):
        open_kube(Settings(kubeconfig=tmp_path / "missing", k8s_allowed_namespaces=("shop",)))
    assert open_kube(Settings()) is None
    with pytest.raises(ValidationError, match="not both"):
        Settings(kubeconfig=tmp_path / "k", k8s_in_cluster=True)
    with pytest.raises(ValidationError, match="RESPONDER_K8S_CONTEXT needs RESPONDER_KUBECONFIG"):
        Settings(k8s_context="prod")
    with pytest.raises(ValidationError, match="not a DNS-1123 label"):
        Settings(k8s_allowed_namespaces="shop,Kube_System")
    with pytest.raises(ValueError, match="no ServiceAccount is mounted"):
        open_kube(Settings(k8s_in_cluster=True))


def test_allowed_namespaces_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONDER_K8S_ALLOWED_NAMESPACES", " shop , payments,")
    monkeypatch.setenv("RESPONDER_K8S_REQUEST_TIMEOUT_SECONDS", "4.5")
    settings = Settings()
    assert settings.kubernetes.k8s_allowed_namespaces == ("shop", "payments")
    assert settings.kubernetes.k8s_request_timeout_seconds == 4.5


async def test_a_kubeconfig_context_is_honoured(fake_kube: FakeKube, tmp_path: Path) -> None:
    config = json.loads(fake_kube.write_kubeconfig(tmp_path / "base").read_text())
    config["contexts"].append({"name": "other", "context": {"cluster": "fake", "user": "nobody"}})
    config["users"].append({"name": "nobody", "user": {"token": "nope"}})
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    fake_kube.add_deployment("shop", "web")
    api = open_kube(
        Settings(kubeconfig=path, k8s_context="other", k8s_allowed_namespaces=("shop",))
    )
    assert api is not None
    try:
        with pytest.raises(PermanentError, match="401"):
            await api.read_deployment("shop", "web")
    finally:
        await api.close()


@pytest.fixture
async def tls_fake(tmp_path: Path) -> AsyncIterator[tuple[FakeKube, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test CA")
    cert, key = tmp_path / "ca.crt", tmp_path / "ca.key"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    made = await asyncio.create_subprocess_exec(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        *subject,
        "-keyout",
        str(key),
        "-out",
        str(cert),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await asyncio.wait_for(made.wait(), 60) == 0
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    fake = FakeKube()
    await fake.start(tls=context)
    try:
        yield fake, cert
    finally:
        await fake.close()


async def test_in_cluster_configuration_uses_the_service_account(
    tls_fake: tuple[FakeKube, Path], tmp_path: Path
) -> None:
    fake, cert = tls_fake
    token = tmp_path / "token"
    token.write_text(TOKEN)
    fake.add_deployment("shop", "web")
    api = KubernetesApi.in_cluster(
        allowed_namespaces=NAMESPACES,
        request_timeout_seconds=2.0,
        token_file=str(token),
        cert_file=str(cert),
        environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(fake.port)},
    )
    try:
        assert (await api.read_deployment("shop", "web")).replicas == 2
    finally:
        await api.close()
    [seen] = fake.seen("GET", DEPLOYMENT)
    assert seen.authorization is not None
    assert seen.authorization.lower() == f"bearer {TOKEN}"


async def test_the_fake_stores_schema_valid_objects(
    fake_kube: FakeKube, kube_api: KubernetesApi
) -> None:
    """What the fake serves (and what responder writes) passes the 1.33 schemas, strictly."""
    import kubernetes_validate

    from responder.models.kube import NewEvent, ObjectRef

    fake_kube.add_deployment("shop", "web", replicas=2)
    fake_kube.add_config_map("shop", "flags", {"a": "1"})
    ref = ObjectRef(api_version="apps/v1", kind="Deployment", name="web", namespace="shop")
    await kube_api.create_event(
        "shop",
        NewEvent(regarding=ref, reason="ResponderScale", message="rule r, run 1", action="Scale"),
    )
    stored = [
        *fake_kube.listed("apps", "deployments", "shop"),
        *fake_kube.listed("", "pods", "shop"),
        *fake_kube.listed("", "events", "shop"),
        *fake_kube.listed("", "configmaps", "shop"),
    ]
    assert len(stored) == 5
    for obj in stored:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)
