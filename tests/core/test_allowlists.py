"""Allowlist parsing and matching: the patterns operators write and the URLs attackers render."""

from __future__ import annotations

import pytest

from responder.core.host_allowlists import check_url, host_allowed, parse_pattern, parse_target
from responder.errors import NotAllowedError

PATTERNS = (
    "*.svc.cluster.local",
    "checkout.shop.svc",
    "good.svc",
    "127.0.0.1",
    "localhost:8080",
    "[::1]",
    "api.example.com:443",
)


@pytest.mark.parametrize(
    "url",
    [
        "http://checkout.shop.svc/actuator/health",
        "http://checkout.shop.svc:8080/actuator/circuitbreakers",
        "https://checkout.shop.svc",
        "HTTP://Checkout.Shop.SVC/x",
        "http://a.svc.cluster.local/",
        "http://checkout.shop.svc.cluster.local:8080/",
        "http://a.b.c.svc.cluster.local/x?y=1#frag",
        "http://127.0.0.1:9090/metrics",
        "http://localhost:8080/",
        "http://[::1]:8080/",
        "http://[0:0:0:0:0:0:0:1]/",
        "https://api.example.com/v2",
        "http://api.example.com:443/",
        "http://good.svc?x=@evil.com",
    ],
)
def test_allowed(url: str) -> None:
    assert host_allowed(url, PATTERNS)
    check_url(url, PATTERNS)


@pytest.mark.parametrize(
    "url",
    [
        # userinfo, fragment and suffix tricks
        "http://evil.com#@good.svc",
        "http://evil.com?@good.svc",
        "http://evil.com/@good.svc",
        "http://good.svc@evil.com",
        "http://good.svc:80@evil.com/",
        "http://user:pass@good.svc/",
        "http://good.svc.evil.com/",
        "http://good.svc\\@evil.com/",
        "http://evil.com\\.good.svc/",
        "http://evilgood.svc/",
        "http://svc.cluster.local/",  # the wildcard needs at least one label
        "http://cluster.local.svc/",
        # unicode and encoding tricks
        "http://\uff47ood.svc/",  # fullwidth g
        "http://good.svc\u3002evil.com/",  # ideographic full stop
        "http://g\u043e\u043ed.svc/",  # Cyrillic o
        "http://good.svc%2eevil.com/",
        "http://good%2esvc/",
        "http://go\tod.svc/",
        "http://good.svc\n.evil.com/",
        "http://good.svc /",
        "http://good\u200b.svc/",
        # not a DNS name or IP
        "http://good.svc./",
        "http://good..svc/",
        "http://-good.svc/",
        "http://good_x.svc/",
        "http:///good.svc",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://2130706433/",
        "http://127.000.000.001/",
        "http://[::1%25eth0]/",
        "http://[::1/",
        # schemes, ports, shapes
        "ftp://good.svc/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "//good.svc/",
        "good.svc",
        "http:/good.svc",
        "http://localhost/",  # pattern requires :8080
        "http://localhost:8081/",
        "http://localhost:/",
        "http://good.svc:99999/",
        "http://good.svc:0/",
        "http://good.svc:-1/",
        "http://api.example.com/",  # http default port 80, pattern says 443
        "",
    ],
)
def test_refused(url: str) -> None:
    assert not host_allowed(url, PATTERNS)
    with pytest.raises(NotAllowedError):
        check_url(url, PATTERNS)


def test_no_patterns_allows_nothing() -> None:
    assert not host_allowed("http://127.0.0.1/", [])
    with pytest.raises(NotAllowedError, match="RESPONDER_HTTP_ALLOWED_HOSTS is empty"):
        check_url("http://127.0.0.1/", ())


def test_refusal_tells_operator_what_to_do() -> None:
    with pytest.raises(NotAllowedError) as caught:
        check_url("http://payments.shop.svc:8080/x?token=secret", PATTERNS)
    message = str(caught.value)
    assert "payments.shop.svc" in message
    assert "add 'payments.shop.svc'" in message
    assert "RESPONDER_HTTP_ALLOWED_HOSTS" in message
    assert "secret" not in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://good.svc/", "only http and https"),
        ("http://u@good.svc/", "userinfo"),
        ("http://\uff47ood.svc/", "printable ASCII"),
        ("http://good..svc/", "valid DNS name"),
        ("http://good.svc:70000/", "1-65535"),
    ],
)
def test_refusal_reasons(url: str, reason: str) -> None:
    with pytest.raises(NotAllowedError, match=reason):
        check_url(url, PATTERNS)


def test_target_normalises_host_and_default_port() -> None:
    target = parse_target("HTTPS://Checkout.SHOP.svc/x")
    assert (target.scheme, target.host, target.port) == ("https", "checkout.shop.svc", 443)
    assert parse_target("http://[0::1]:81").host == "::1"


@pytest.mark.parametrize(
    "pattern",
    ["*", "*.", "*.*.svc", "foo.*.svc", "*foo.svc", "good.svc:0", "good.svc:x", "*.10.0.0.1", ""],
)
def test_invalid_patterns_are_configuration_errors(pattern: str) -> None:
    with pytest.raises(ValueError, match="RESPONDER_HTTP_ALLOWED_HOSTS"):
        parse_pattern(pattern)
    with pytest.raises(ValueError, match="RESPONDER_HTTP_ALLOWED_HOSTS"):
        host_allowed("http://good.svc/", [pattern])


def test_pattern_shapes() -> None:
    assert parse_pattern("*.svc.cluster.local").wildcard
    assert parse_pattern(" localhost:8080 ").port == 8080
    assert parse_pattern("[::1]:9").host == "::1"
    assert parse_pattern("Good.SVC").host == "good.svc"
