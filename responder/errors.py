"""The small error hierarchy shared by every layer; each error says what to do next."""

from __future__ import annotations


class ResponderError(Exception):
    """Base of all errors raised on purpose by responder."""


class TemporaryError(ResponderError):
    """Worth retrying after `delay` seconds (network blip, 5xx, lock held)."""

    def __init__(self, message: str, *, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class OutcomeUnknownError(TemporaryError):
    """The request may have reached the target (timeout or reset after sending): repeating a
    read is safe, repeating a write may act twice."""


class PermanentError(ResponderError):
    """Retrying will not help: bad parameters, 4xx, refused by policy."""


class NotAllowedError(PermanentError):
    """A rendered target is outside an allowlist (host, namespace, kind)."""


class StoreUnavailableError(TemporaryError):
    """The store cannot write; callers answer 503 so the sender retries."""


class CoordinationUnavailableError(TemporaryError):
    """The coordinator (Redis) cannot be reached; containment must not run."""


class RuleError(ResponderError):
    """One problem in a rule file, located at `file:line`."""

    def __init__(self, file: str, line: int, message: str, rule_id: str | None = None) -> None:
        self.file = file
        self.line = line
        self.message = message
        self.rule_id = rule_id
        where = f" (rule {rule_id})" if rule_id else ""
        super().__init__(f"{file}:{line}: {message}{where}")


class RuleSetError(ResponderError):
    """A rule set failed to load; `errors` holds every problem found, in file order."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class TemplateError(PermanentError):
    """A template failed to render (undefined variable, sandbox violation, syntax)."""


class PayloadError(PermanentError):
    """A webhook body that cannot be accepted; `field` is the JSON path at fault, if known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)
