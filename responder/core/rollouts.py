"""When a Deployment rollout is complete, decided the way `kubectl rollout status` does (pure).

Source: kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go (DeploymentStatusViewer).
In order: the controller has not observed the spec yet -> wait; the Progressing condition says
ProgressDeadlineExceeded -> failed; fewer updated replicas than wanted -> wait; old replicas
still terminating -> wait; fewer available than updated -> wait; otherwise done. The messages
are kubectl's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from responder.models.kube import Deployment

DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # the pod template annotation a restart sets


def restart_stamp(at: datetime) -> str:
    """The restartedAt value for `at`: RFC 3339, seconds precision, UTC (`...Z`), as kubectl."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RolloutStatus:
    """One look at a rollout: finished, failed (will not finish), or still going."""

    done: bool
    failed: bool
    message: str


def rollout_status(deployment: Deployment, generation: int) -> RolloutStatus:
    """The rollout of `deployment` started at `generation` (the restart or scale response's).

    A later write by someone else raises the generation; the newer one is then waited for.
    """
    name = deployment.name
    wanted = max(generation, deployment.generation)
    if deployment.observed_generation is None or deployment.observed_generation < wanted:
        return RolloutStatus(False, False, "Waiting for deployment spec update to be observed...")
    progressing = deployment.condition("Progressing")
    if progressing is not None and progressing.reason == DEADLINE_EXCEEDED:
        return RolloutStatus(False, True, f'deployment "{name}" exceeded its progress deadline')
    updated = deployment.updated_replicas
    if deployment.replicas is not None and updated < deployment.replicas:
        return RolloutStatus(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: {updated} out of '
            f"{deployment.replicas} new replicas have been updated...",
        )
    if deployment.status_replicas > updated:
        old = deployment.status_replicas - updated
        return RolloutStatus(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: {old} old replicas are '
            "pending termination...",
        )
    if deployment.available_replicas < updated:
        return RolloutStatus(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{deployment.available_replicas} of {updated} updated replicas are available...",
        )
    return RolloutStatus(True, False, f'deployment "{name}" successfully rolled out')
