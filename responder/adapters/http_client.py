"""The HttpApi port over aiohttp: one request per call, timeout, size cap, no redirects.

Every request has `aiohttp.ClientTimeout(total=request.timeout_seconds)` (connect, send and
the whole body read), is sent with `allow_redirects=False` (a 3xx is returned as is, so a
redirect can never lead to a host outside the allowlist), and reads at most
`max_response_bytes` of the (decompressed) body. Errors are translated: timeouts and
connection problems -> TemporaryError, an invalid request -> PermanentError. Messages name the
host and what to check, never header values or the full URL (its query may hold a token).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from responder.errors import OutcomeUnknownError, PermanentError, TemporaryError
from responder.models.http import HttpRequest, HttpResponse

USER_AGENT = "responder/0.1"
_CHUNK = 64 * 1024


def _where(url: str) -> str:
    """`host:port` of `url` for messages, or a placeholder when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    shown = ascii(host)[1:-1][:100]
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{shown}:{port}" if port else shown


def _join_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Response headers as a dict with lower-case names; repeated headers joined by ', '."""
    joined: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


class AiohttpHttpApi:
    """HttpApi over an aiohttp ClientSession (the session is shared by every request)."""

    def __init__(self, session: aiohttp.ClientSession, *, owns_session: bool = False) -> None:
        self._session = session
        self._owns_session = owns_session

    @classmethod
    async def create(
        cls,
        *,
        limit: int = 64,
        limit_per_host: int = 8,
        dns_cache_seconds: int = 30,
        trust_env: bool = False,
    ) -> Self:
        """A client with its own session: bounded connections, no cookie jar, no env proxies.

        `trust_env=False` by default so that neither proxy variables nor ~/.netrc credentials
        are applied behind the allowlist's back. Close it with `close()` or `async with`.
        """
        connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=dns_cache_seconds
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
            trust_env=trust_env,
            raise_for_status=False,
        )
        return cls(session, owns_session=True)

    async def close(self) -> None:
        """Close the session if this client created it (a session passed in is the caller's)."""
        if self._owns_session and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request; see the module docstring for limits and error translation."""
        where = _where(request.url)
        what = f"HTTP {request.method} to {where}"
        timeout = aiohttp.ClientTimeout(total=request.timeout_seconds)
        started = time.perf_counter()
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                body, truncated = await _read_capped(response, request.max_response_bytes)
                return HttpResponse(
                    status=response.status,
                    headers=_join_headers(response.headers),
                    body=body,
                    truncated=truncated,
                    elapsed_seconds=time.perf_counter() - started,
                )
        except TimeoutError as exc:  # also aiohttp.ServerTimeoutError and its subclasses
            raise OutcomeUnknownError(
                f"{what} timed out after {request.timeout_seconds:g}s; check that the service "
                "is up and answering, or raise timeout_seconds"
            ) from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError):
            # `from None`: aiohttp's message and traceback carry the whole URL (query tokens).
            raise PermanentError(
                f"{what}: invalid URL; fix the url parameter of the step (http(s)://host/path)"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise TemporaryError(
                f"{what}: cannot connect ({reason}); check the host name, that the service is "
                "running and that network policy lets responder reach it"
            ) from exc
        except aiohttp.ClientError as exc:  # after connecting: the request may have arrived
            raise OutcomeUnknownError(
                f"{what} failed ({type(exc).__name__}); check that the service is healthy "
                "and speaks HTTP on that port"
            ) from exc
        except ValueError as exc:
            # e.g. a header value aiohttp refuses: `from None` so that no traceback echoes it.
            raise PermanentError(
                f"{what}: the request is invalid ({type(exc).__name__}); check the method, "
                "url and header names of the step"
            ) from None


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes, bool]:
    """At most `max_bytes` of the body, and whether more was available."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False
