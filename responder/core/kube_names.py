"""Kubernetes names, label selectors and the namespace allowlist (pure).

Rendered names come from alert labels, which are attacker input: a value is accepted only when
it is a valid Kubernetes name of its kind, so it cannot add a path segment (`../secrets`), a
query (`?watch=1`) or a second selector term (`app=web,tier!=x`) to a request.

- DNS-1123 label (namespaces, container names): 1-63 of `a-z 0-9 -`, starting and ending with
  an alphanumeric;
- DNS-1123 subdomain (deployments, pods, ConfigMaps): dot-separated labels, at most 253;
- label key: an optional DNS-subdomain prefix and `/`, then a name of 1-63 of `A-Z a-z 0-9 - _ .`
  starting and ending with an alphanumeric; label value: empty or such a name.

The namespace allowlist is RESPONDER_K8S_ALLOWED_NAMESPACES: exact names, no patterns, and an
empty list allows nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from responder.errors import NotAllowedError

NAMESPACES_SETTING = "RESPONDER_K8S_ALLOWED_NAMESPACES"

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SUBDOMAIN_PART = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


def _shown(value: str) -> str:
    return repr(value[:80] + ("…" if len(value) > 80 else ""))


def dns_label(value: str) -> str:
    """`value` if it is a DNS-1123 label, else ValueError saying what one looks like."""
    if not _LABEL.match(value):
        raise ValueError(
            f"{_shown(value)} is not a DNS-1123 label: 1-63 of a-z 0-9 '-', starting and "
            "ending with a letter or digit"
        )
    return value


def dns_subdomain(value: str) -> str:
    """`value` if it is a DNS-1123 subdomain (a Deployment or Pod name), else ValueError."""
    parts = value.split(".")
    if not 0 < len(value) <= 253 or not all(_SUBDOMAIN_PART.match(part) for part in parts):
        raise ValueError(
            f"{_shown(value)} is not a Kubernetes object name (DNS-1123 subdomain): at most 253 "
            "of a-z 0-9 '-' '.', each dot-separated part starting and ending with a letter or digit"
        )
    return value


def label_key(value: str) -> str:
    """`value` if it is a valid label key (`[prefix/]name`), else ValueError."""
    prefix, slash, name = value.rpartition("/")
    if slash:
        try:
            dns_subdomain(prefix)
        except ValueError:
            msg = f"label key {_shown(value)}: the prefix is not a DNS subdomain"
            raise ValueError(msg) from None
    if not _QUALIFIED.match(name):
        raise ValueError(
            f"label key {_shown(value)}: the name must be 1-63 of A-Z a-z 0-9 - _ ., starting "
            "and ending with a letter or digit"
        )
    return value


def label_value(value: str) -> str:
    """`value` if it is a valid label value (possibly empty), else ValueError."""
    if value and not _QUALIFIED.match(value):
        raise ValueError(
            f"label value {_shown(value)} must be empty or 1-63 of A-Z a-z 0-9 - _ ., starting "
            "and ending with a letter or digit"
        )
    return value


def equality_selector(labels: Mapping[str, str]) -> str:
    """`k1=v1,k2=v2` (sorted) for validated labels; ValueError for an invalid key or value."""
    if not labels:
        raise ValueError("a label selector needs at least one label")
    return ",".join(f"{label_key(k)}={label_value(v)}" for k, v in sorted(labels.items()))


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether an object with `labels` is selected by the equality `selector`."""
    return all(labels.get(key) == value for key, value in selector.items())


def check_namespace(namespace: str, allowed: Sequence[str]) -> None:
    """NotAllowedError unless `namespace` is in the allowlist (which must not be empty)."""
    if not allowed:
        raise NotAllowedError(
            f"Kubernetes actions are refused: no namespace is allowed; set {NAMESPACES_SETTING} "
            f"(comma list, e.g. 'shop,payments') to the namespaces responder may act in"
        )
    if namespace not in allowed:
        raise NotAllowedError(
            f"namespace {_shown(namespace)} is not in {NAMESPACES_SETTING} "
            f"(allowed: {', '.join(allowed)})"
        )
