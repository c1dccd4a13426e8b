"""Typed HTTP request and response values passed across the HttpApi port."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HttpRequest(BaseModel):
    """One outgoing HTTP request with its own timeout and response size cap."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes | None = None
    timeout_seconds: float = Field(gt=0)
    max_response_bytes: int = Field(default=65536, gt=0)


class HttpResponse(BaseModel):
    """What came back: status, headers, body (at most `max_response_bytes`), timing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False
    elapsed_seconds: float = 0.0
