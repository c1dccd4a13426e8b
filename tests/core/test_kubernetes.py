"""Pure Kubernetes helpers as tables: names, selectors, the allowlist, rollout status."""

from __future__ import annotations

from typing import Any

import pytest

from responder.core.kube_names import (
    check_namespace,
    dns_label,
    dns_subdomain,
    equality_selector,
    label_key,
    label_value,
    selector_matches,
)
from responder.core.rollouts import rollout_status
from responder.errors import NotAllowedError
from responder.models.kube import Deployment, KubeCondition


@pytest.mark.parametrize("name", ["web", "a", "web-1", "0web", "a" * 63])
def test_dns_labels(name: str) -> None:
    assert dns_label(name) == name


@pytest.mark.parametrize("name", ["", "Web", "web_1", "-web", "web-", "a" * 64, "a.b", "w/b", "é"])
def test_not_dns_labels(name: str) -> None:
    with pytest.raises(ValueError, match="DNS-1123 label"):
        dns_label(name)


@pytest.mark.parametrize("name", ["web", "web.v2", "web-7d9f4-x2k8q", ".".join(["a" * 63] * 3)])
def test_object_names(name: str) -> None:
    assert dns_subdomain(name) == name


@pytest.mark.parametrize(
    "name", ["", "..", "web/..", "web?x=1", "web%2F", "web..v2", ".web", "Web", "a" * 254, "w b"]
)
def test_not_object_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes object name"):
        dns_subdomain(name)


def test_label_keys_values_and_selectors() -> None:
    assert label_key("app.kubernetes.io/name") == "app.kubernetes.io/name"
    assert label_value("") == ""
    assert equality_selector({"tier": "fe", "app": "web"}) == "app=web,tier=fe"
    for key in ("", "/name", "Bad_Prefix/name", "a=b", "a,b", "-a"):
        with pytest.raises(ValueError, match="label key"):
            label_key(key)
    for value in ("a,b=c", "a!=b", "-a", "a" * 64, "a b"):
        with pytest.raises(ValueError, match="label value"):
            label_value(value)
    with pytest.raises(ValueError, match="at least one label"):
        equality_selector({})
    assert selector_matches({"app": "web"}, {"app": "web", "pod-template-hash": "x"})
    assert not selector_matches({"app": "web", "tier": "fe"}, {"app": "web"})


def test_the_namespace_allowlist() -> None:
    check_namespace("shop", ("shop", "ops"))
    with pytest.raises(NotAllowedError, match="'payments' is not in RESPONDER_K8S_ALLOWED_NAMES"):
        check_namespace("payments", ("shop", "ops"))
    with pytest.raises(NotAllowedError, match="no namespace is allowed; set RESPONDER_K8S_ALLOWED"):
        check_namespace("shop", ())


_DONE = (
    KubeCondition(type="Available", status="True", reason="MinimumReplicasAvailable"),
    KubeCondition(type="Progressing", status="True", reason="NewReplicaSetAvailable"),
)
_STUCK = (KubeCondition(type="Progressing", status="False", reason="ProgressDeadlineExceeded"),)


def _deployment(**fields: Any) -> Deployment:
    values: dict[str, Any] = {
        "name": "web",
        "namespace": "shop",
        "uid": "u",
        "generation": 3,
        "replicas": 3,
        "observed_generation": 3,
        "status_replicas": 3,
        "updated_replicas": 3,
        "ready_replicas": 3,
        "available_replicas": 3,
        "conditions": _DONE,
    }
    values.update(fields)
    return Deployment(**values)


@pytest.mark.parametrize(
    ("fields", "generation", "done", "failed", "message"),
    [
        ({}, 3, True, False, 'deployment "web" successfully rolled out'),
        ({"observed_generation": 2}, 3, False, False, "spec update to be observed"),
        ({"observed_generation": None}, 3, False, False, "spec update to be observed"),
        ({"generation": 4}, 3, False, False, "spec update to be observed"),  # a newer change
        ({"conditions": _STUCK}, 3, False, True, 'deployment "web" exceeded its progress'),
        ({"updated_replicas": 1}, 3, False, False, "1 out of 3 new replicas have been updated"),
        ({"status_replicas": 4}, 3, False, False, "1 old replicas are pending termination"),
        ({"available_replicas": 2}, 3, False, False, "2 of 3 updated replicas are available"),
        (
            {
                "replicas": None,
                "updated_replicas": 0,
                "status_replicas": 0,
                "available_replicas": 0,
            },
            3,
            True,
            False,
            "successfully rolled out",
        ),
    ],
)
def test_rollout_status_decides_like_kubectl(
    fields: dict[str, Any], generation: int, done: bool, failed: bool, message: str
) -> None:
    status = rollout_status(_deployment(**fields), generation)
    assert (status.done, status.failed) == (done, failed)
    assert message in status.message
