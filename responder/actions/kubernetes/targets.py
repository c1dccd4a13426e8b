"""What every `k8s.*` action shares: its namespaced params, selectors, workloads and API paths.

Selectors rendered from alert labels are equality label maps, validated so that a label cannot
add a selector term; names and namespaces are typed in `kubernetes_access`. The namespace is
checked against RESPONDER_K8S_ALLOWED_NAMESPACES at plan time (`check_params_namespace`) and
again when the step runs (`kubernetes_access.kube_for`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from responder.actions.kubernetes_access import Namespace
from responder.core.kube_names import check_namespace, equality_selector
from responder.errors import PermanentError
from responder.ports.kubernetes import KubeApi

MAX_SELECTOR_LABELS = 10


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_SELECTOR_LABELS:
        raise ValueError(f"a selector has at most {MAX_SELECTOR_LABELS} labels")
    equality_selector(value)  # ValueError for an empty map or a bad key/value
    return value


Labels = Annotated[dict[str, str], AfterValidator(_labels)]


class NamespacedParams(BaseModel):
    """The base of every k8s.* params model: a namespace and nothing unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: Namespace


def only_one(params: BaseModel, *names: str) -> None:
    """ValueError unless exactly one of the fields `names` is set."""
    given = [name for name in names if getattr(params, name) is not None]
    if len(given) != 1:
        wanted = ", ".join(names)
        raise ValueError(f"give exactly one of {wanted} (got {', '.join(given) or 'none'})")


def check_params_namespace(params: NamespacedParams, allowed: tuple[str, ...]) -> None:
    """Plan-time check: the namespace is in RESPONDER_K8S_ALLOWED_NAMESPACES."""
    check_namespace(params.namespace, allowed)


async def workload_selector(
    kube: KubeApi, namespace: str, deployment: str | None, selector: dict[str, str] | None
) -> tuple[dict[str, str], str]:
    """(matchLabels, a name for messages) of a Deployment, or the given `selector`.

    A Deployment selecting with matchExpressions is refused: its matchLabels alone would
    select more pods than it owns.
    """
    if selector is not None:
        return dict(selector), f"pods {equality_selector(selector)}"
    if deployment is None:
        raise PermanentError("give a deployment or a selector")
    found = await kube.read_deployment(namespace, deployment)
    if found.selector_has_expressions or not found.selector:
        raise PermanentError(
            f"deployment {namespace}/{deployment} selects its pods with matchExpressions; "
            "give `selector` (its labels) instead of `deployment`"
        )
    return dict(found.selector), f"deployment {namespace}/{deployment}"


def deployment_path(namespace: str, name: str) -> str:
    """The API path of a Deployment."""
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def pods_path(namespace: str, name: str | None = None) -> str:
    """The API path of the pods of a namespace, or of one Pod."""
    base = f"/api/v1/namespaces/{namespace}/pods"
    return f"{base}/{name}" if name else base
