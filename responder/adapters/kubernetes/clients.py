"""Building the official client's ApiClient from a kubeconfig file or the pod's ServiceAccount.

Nothing touches the library's global default configuration, and a kubeconfig is never written
back. urllib3 gets one connect retry and no read retry: a request that may have reached the
API server is never sent twice behind the engine's back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)


def _configuration() -> Configuration:
    cfg = Configuration()
    # One connect retry; never re-send a request that may have reached the server.
    cfg.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
    return cfg


def from_kubeconfig(path: Path, context: str | None = None) -> ApiClient:
    """An ApiClient for a kubeconfig file (ValueError naming the file when it does not load)."""
    cfg = _configuration()
    try:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path),
            context=context,
            client_configuration=cfg,
            persist_config=False,
        )
    except (OSError, kube_config.ConfigException) as exc:
        raise ValueError(f"RESPONDER_KUBECONFIG {str(path)!r} does not load: {exc}") from None
    return ApiClient(cfg)


def in_cluster(
    token_file: str = SERVICE_TOKEN_FILENAME,
    cert_file: str = SERVICE_CERT_FILENAME,
    environ: Mapping[str, str] | None = None,
) -> ApiClient:
    """An ApiClient from the ServiceAccount token and CA (the token is re-read every minute)."""
    cfg = _configuration()
    loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
        token_filename=token_file,
        cert_filename=cert_file,
        environ=dict(environ) if environ is not None else os.environ,
    )
    try:
        loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
    except kube_config.ConfigException as exc:
        raise ValueError(
            "RESPONDER_K8S_IN_CLUSTER is set but no ServiceAccount is mounted here "
            f"(KUBERNETES_SERVICE_HOST/PORT, token and CA): {exc}"
        ) from None
    return ApiClient(cfg)
