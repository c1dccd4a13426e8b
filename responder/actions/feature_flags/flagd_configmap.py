"""`feature_flag.disable`/`enable` with `provider: flagd` on a ConfigMap source (verified).

flagd has no write API and reads a ConfigMap as a file of the volume it is mounted as, so the
kill switch edits the ConfigMap: `data[key]` holds the whole flagd JSON document. One run,
through the KubeApi port:
1. GET the ConfigMap (namespace in RESPONDER_K8S_ALLOWED_NAMESPACES, checked at plan time,
   here, and by the adapter before any request) and take `data[key]` and resourceVersion;
2. `switch_flag` (core/flagd_documents.py), as for a flag file: `defaultVariant` -> the
   variant, `targeting` removed, `state: ENABLED` (never DISABLED); an unknown flag or variant
   is refused; a flag already serving the variant to everyone is left alone (nothing written);
3. PUT the ConfigMap with only `data[key]` changed, at the resourceVersion read (the adapter
   sends the object as read, so labels, annotations, binaryData and the other keys stay);
   a conflict (someone else changed it: 409, or the adapter saw a newer resourceVersion)
   means read again and redo the edit on what is there now, at most MAX_ATTEMPTS writes, then
   a TemporaryError. A failed write is told from a conflict by the re-read: the same
   resourceVersion means nobody wrote, so the error itself is raised (the engine retries);
4. record a `ResponderFeatureFlag` Event on the ConfigMap (a failing Event never fails it);
5. GET it again: the flag must serve the variant.

The ConfigMap is verified, not flagd: a flagd reading it through a volume mount sees the
change after the kubelet's sync period plus its ConfigMap cache TTL (about a minute); a
`subPath` mount or environment variables never see it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from responder.actions.base import ActionContext, StepResult
from responder.actions.calls import fitted
from responder.actions.feature_flags.flagd import FlagdParams, flag_output
from responder.actions.kubernetes_access import describe_event, kube_for, record_event
from responder.core.flagd_documents import read_flag, switch_flag
from responder.errors import PermanentError, TemporaryError
from responder.models.kube import ConfigMap, ObjectRef
from responder.ports.kubernetes import KubeApi

REASON = "ResponderFeatureFlag"
MAX_ATTEMPTS = 4  # writes per run; each conflict re-reads and edits the newer document
_SHOWN_KEYS = 20
_PROPAGATION = (
    "flagd reads a ConfigMap through a volume mount: the kubelet updates the mounted file "
    "after its sync period plus the ConfigMap cache TTL (about a minute); a subPath mount or "
    "environment variables never update"
)


@dataclass(frozen=True)
class _Source:
    """The ConfigMap source of one step, and how messages name it."""

    namespace: str
    name: str
    key: str
    flag: str

    @property
    def shown(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name} key {self.key!r}"

    @property
    def where(self) -> str:
        return f"flagd flag {self.flag} in ConfigMap {self.namespace}/{self.name} ({self.key})"


def _source(params: FlagdParams) -> _Source:
    if params.namespace is None or params.config_map is None or params.key is None:
        raise PermanentError("this flagd step names a flag file, not a ConfigMap")
    return _Source(params.namespace, params.config_map, params.key, params.flag)


def config_map_path(namespace: str, name: str) -> str:
    """The API path of a ConfigMap."""
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


def _document(found: ConfigMap, key: str, source: str) -> str:
    text = found.data.get(key)
    if text is None:
        keys = sorted(found.data)
        shown = ", ".join(keys[:_SHOWN_KEYS]) + (" ..." if len(keys) > _SHOWN_KEYS else "")
        raise PermanentError(
            f"{source}: the ConfigMap has no data key {key!r} (keys: {shown or 'none'}); set "
            "`key` to the key holding the flagd JSON document (the file name flagd reads)"
        )
    return text


async def switch(params: FlagdParams, ctx: ActionContext, on: bool) -> StepResult:
    """Make the flag serve the variant to every client, then read the ConfigMap back."""
    src = _source(params)
    kube = kube_for(ctx, src.namespace)
    variant = params.variant_for(on)
    seconds = params.timeout_seconds
    output: dict[str, Any] = {
        "provider": "flagd",
        "namespace": src.namespace,
        "config_map": src.name,
        "key": src.key,
        "flag": params.flag,
        "variant": variant,
        "written": False,
        "conflicts": 0,
    }
    failed: TemporaryError | None = None
    read_version = ""
    for attempt in range(MAX_ATTEMPTS + 1):
        current = await kube.get_config_map(src.namespace, src.name, timeout_seconds=seconds)
        if failed is not None:
            if current.resource_version == read_version:
                raise failed  # not a conflict: nobody wrote since the read
            output["conflicts"] += 1
            output["conflict"] = str(failed)
        text = _document(current, src.key, src.shown)
        change = switch_flag(text, params.flag, variant, src.shown)
        output.setdefault("before", flag_output(change.before))
        output["after"] = flag_output(change.after)
        if not change.changed:
            output["note"] = f"already serves {variant!r} to every client; ConfigMap not written"
            summary = f"{src.where} already serves {variant}; not written"
            return fitted(ctx, True, summary, output, True, {"not_sent": output["note"]})
        if attempt == MAX_ATTEMPTS:
            break
        if attempt:
            await asyncio.sleep(0.05 * attempt)
        read_version = current.resource_version
        data = {**current.data, src.key: change.text}
        try:
            written = await kube.replace_config_map(
                src.namespace, src.name, data, read_version, timeout_seconds=seconds
            )
        except TemporaryError as exc:
            failed = exc
            continue
        output["written"] = True
        output["resource_version"] = {"read": read_version, "written": written.resource_version}
        if change.removed_targeting is not None:
            output["removed_targeting"] = change.removed_targeting  # to restore it by hand
        output["event"] = await _event(kube, ctx, src, current, variant, on, output)
        sent = {
            "json": {"metadata": {"resourceVersion": read_version}, "data": {src.key: change.text}}
        }
        return await _verify(kube, ctx, src, variant, seconds, output, sent)
    raise TemporaryError(
        f"{src.shown} changed {output['conflicts']} times while responder was editing it; "
        "retrying the step later",
        delay=2.0,
    )


async def _event(
    kube: KubeApi,
    ctx: ActionContext,
    src: _Source,
    read: ConfigMap,
    variant: str,
    on: bool,
    output: dict[str, Any],
) -> dict[str, Any]:
    """Record the change on the ConfigMap (the outcome goes in the output, never raises)."""
    regarding = ObjectRef(
        api_version="v1",
        kind="ConfigMap",
        name=src.name,
        namespace=src.namespace,
        uid=read.uid or None,
    )
    removed = "; targeting removed" if "removed_targeting" in output else ""
    what = (
        f"feature_flag.{'enable' if on else 'disable'}: flagd flag {src.flag} (data key "
        f"{src.key}) serves variant {variant} to every client (default was "
        f"{output['before']['default_variant']}{removed})"
    )
    action = "FeatureFlagEnable" if on else "FeatureFlagDisable"
    return await record_event(kube, ctx, regarding, REASON, action, what)


async def _verify(
    kube: KubeApi,
    ctx: ActionContext,
    src: _Source,
    variant: str,
    seconds: float,
    output: dict[str, Any],
    sent: dict[str, Any],
) -> StepResult:
    """Read the ConfigMap back: the flag must serve the variant (`sent`: what the PUT
    carried that `describe` could not know)."""
    again = await kube.get_config_map(src.namespace, src.name, timeout_seconds=seconds)
    after = read_flag(_document(again, src.key, src.shown), src.flag, src.shown)
    output["after"] = flag_output(after)
    old = output["before"]["default_variant"]
    tried = f" after {output['conflicts']} conflicting change(s)" if output["conflicts"] else ""
    if after.serves(variant):
        summary = f"{src.where}: {old} -> {variant} (verified){tried}"
        return fitted(ctx, True, summary, output, True, sent)
    summary = (
        f"{src.where}: written, but it reads default {after.default_variant} (expected {variant})"
    )
    return fitted(ctx, False, summary, output, False, sent)


def describe(params: FlagdParams, on: bool) -> dict[str, Any]:
    """The requests it would send: GET, PUT with the edited document, GET, the Event."""
    src = _source(params)
    namespace, name, key = src.namespace, src.name, src.key
    variant = params.variant_for(on)
    path = config_map_path(namespace, name)
    regarding = ObjectRef(api_version="v1", kind="ConfigMap", name=name, namespace=namespace)
    return {
        "provider": "flagd",
        "config_map": {"namespace": namespace, "name": name, "key": key},
        "flag": params.flag,
        "before": {
            "method": "GET",
            "path": path,
            "read": f"data[{key!r}] (the flagd JSON document) and metadata.resourceVersion",
        },
        "method": "PUT",
        "path": f"{path}?fieldManager=responder",
        "json": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "<as read>"},
            "data": {key: f"<the document as read, flags.{params.flag} edited>"},
        },
        "unchanged": "labels, annotations, binaryData and the other data keys, as read",
        "set": {"state": "ENABLED", "defaultVariant": variant},
        "remove": ["targeting"],
        "conflict": f"409 or a newer resourceVersion: read again and redo the edit, at most "
        f"{MAX_ATTEMPTS} writes, then retry the step later",
        "skip": f"no PUT when flags.{params.flag} already serves {variant!r} to every client",
        "verify": {
            "method": "GET",
            "path": path,
            "expect": {"state": "ENABLED", "defaultVariant": variant, "targeting": None},
        },
        "event": describe_event(regarding, REASON),
        "propagation": _PROPAGATION,
    }
