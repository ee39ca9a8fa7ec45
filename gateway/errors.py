"""Vigie's exception tree.

Domain, store, policy and crypto code raise these; one server interceptor maps them to
gRPC status codes with ``google.rpc`` details (see ``gateway.server._errors``). Messages
name the field and the rule, never the data::

    VigieError
    ├── InvalidArgumentError      -> INVALID_ARGUMENT (google.rpc.BadRequest field violations)
    ├── NotFoundError             -> NOT_FOUND
    ├── AlreadyExistsError        -> ALREADY_EXISTS
    ├── PermissionDeniedError     -> PERMISSION_DENIED (rule ids in google.rpc.ErrorInfo)
    ├── UnauthenticatedError      -> UNAUTHENTICATED
    ├── FailedPreconditionError   -> FAILED_PRECONDITION (e.g. an illegal state transition)
    ├── ResourceExhaustedError    -> RESOURCE_EXHAUSTED
    └── UnavailableError          -> UNAVAILABLE (store or journal down: fail closed)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AlreadyExistsError",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "VigieError",
]


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: its path (``claim.lines[3].rpps``) and the rule it broke (never the value)."""

    field: str
    description: str


class VigieError(Exception):
    """Base of every error Vigie raises on purpose."""

    reason: str = "VIGIE_ERROR"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class InvalidArgumentError(VigieError):
    """The request is malformed; ``violations`` says which fields and which rule."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        violations: list[FieldViolation] | tuple[FieldViolation, ...] = (),
        *,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations: tuple[FieldViolation, ...] = tuple(violations)

    @classmethod
    def for_field(cls, field: str, description: str) -> InvalidArgumentError:
        """Shortcut for the common one-field refusal."""
        return cls(f"invalid {field}: {description}", [FieldViolation(field, description)])


class NotFoundError(VigieError):
    """The resource does not exist *or the caller may not know that it exists*."""

    reason = "NOT_FOUND"


class AlreadyExistsError(VigieError):
    reason = "ALREADY_EXISTS"


class PermissionDeniedError(VigieError):
    """The policy denied; ``rule_ids`` and ``legal_refs`` name what decided (never the data)."""

    reason = "POLICY_DENIED"

    def __init__(
        self,
        message: str,
        rule_ids: tuple[str, ...] = (),
        legal_refs: tuple[str, ...] = (),
        *,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.rule_ids = tuple(rule_ids)
        self.legal_refs = tuple(legal_refs)


class UnauthenticatedError(VigieError):
    reason = "UNAUTHENTICATED"


class FailedPreconditionError(VigieError):
    reason = "FAILED_PRECONDITION"


class ResourceExhaustedError(VigieError):
    reason = "RESOURCE_EXHAUSTED"


class UnavailableError(VigieError):
    reason = "UNAVAILABLE"
