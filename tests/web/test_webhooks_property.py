"""Property: whatever JSON arrives over HTTP, every webhook answers 202 or a 4xx problem."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.apps import AUTH, AppFactory

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
SHAPED = st.fixed_dictionaries(
    {
        "version": st.just("4"),
        "status": st.sampled_from(["firing", "resolved", "x"]),
        "alerts": st.lists(
            st.dictionaries(
                st.sampled_from(
                    ["labels", "annotations", "status", "startsAt", "endsAt", "fingerprint"]
                ),
                JSON_VALUES,
                max_size=6,
            ),
            max_size=3,
        ),
    },
)  # grouped-payload shaped bodies with arbitrary field contents


async def test_webhooks_answer_202_or_a_4xx_problem(make_client: AppFactory) -> None:
    client = await make_client()
    base = str(client.make_url("/v1/webhooks/"))

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=JSON_VALUES | SHAPED, path=st.sampled_from(["alertmanager", "grafana", "sentry"]))
    def check(body: Any, path: str) -> None:
        raw = json.dumps(body).encode()
        signature = hmac.new(b"test-client-secret", raw, hashlib.sha256).hexdigest()
        headers = {**AUTH, "Content-Type": "application/json", "Sentry-Hook-Signature": signature}
        request = urllib.request.Request(base + path, data=raw, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, content_type = response.status, response.headers["Content-Type"]
        except urllib.error.HTTPError as exc:
            status, content_type = exc.code, exc.headers["Content-Type"]
        assert status == 202 or 400 <= status < 500, (status, body)
        if status != 202:
            assert content_type.startswith("application/problem+json")

    await asyncio.to_thread(check)
