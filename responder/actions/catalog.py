"""The action registry bound to this daemon's policy (allowlists): what planning consults."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from responder.actions.base import ActionRegistry, ActionSpec
from responder.models.plans import ActionClass


class PolicyCatalog:
    """Validates rendered parameters against an action's model and the allowlists."""

    def __init__(
        self,
        registry: ActionRegistry,
        *,
        allowed_hosts: tuple[str, ...],
        flag_file_dirs: tuple[str, ...] = (),
        allowed_namespaces: tuple[str, ...] = (),
    ) -> None:
        self.registry = registry
        self.allowed_hosts = allowed_hosts
        self.flag_file_dirs = flag_file_dirs
        self.allowed_namespaces = allowed_namespaces

    def spec(self, name: str) -> ActionSpec[Any]:
        """The action called `name` (PermanentError listing known names otherwise)."""
        return self.registry.get(name)

    def action_class(self, name: str) -> ActionClass:
        """Diagnostic or containment."""
        return self.registry.get(name).action_class

    def classify(self, name: str, params: Mapping[str, Any]) -> ActionClass:
        """The class of this concrete call (a GET reads, a POST may write)."""
        spec = self.registry.get(name)
        if spec.classify is None:
            return spec.action_class
        return spec.classify(spec.params_model.model_validate(dict(params)))

    def default_timeout(self, name: str) -> timedelta:
        """The action's own deadline."""
        return self.registry.get(name).default_timeout

    def best_effort(self, name: str) -> bool:
        """Whether the action's failures are tolerated by default (notifications)."""
        return self.registry.get(name).best_effort

    def model(self, name: str, params: Mapping[str, Any]) -> BaseModel:
        """Validated params model, after the action's static policy check."""
        model = self.registry.validate(name, params)
        spec = self.registry.get(name)
        if spec.check is not None:
            spec.check(model, self.allowed_hosts)
        if spec.check_files is not None:
            spec.check_files(model, self.flag_file_dirs)
        if spec.check_namespaces is not None:
            spec.check_namespaces(model, self.allowed_namespaces)
        return model

    def validate_params(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validated, normalised params as plain JSON-able data."""
        return self.model(name, params).model_dump(mode="json")

    def describe(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """What the step would send, for dry-run and `rules explain`."""
        spec = self.registry.get(name)
        return spec.describe(spec.params_model.model_validate(dict(params)))
