"""The client's exception tree, built from the ``google.rpc.Status`` a failed call carries.

The gateway packs a ``google.rpc.Status`` (AIP-193) into the trailing metadata key
``grpc-status-details-bin``: ``ErrorInfo`` (reason, domain ``vigie.gateway``, metadata such as
``rule_ids`` and ``legal_refs``), ``BadRequest`` field violations, ``RetryInfo``. Every failed
call surfaces as exactly one of these classes, chosen by status code::

    VigieClientError                 base: code, message, reason, domain, metadata, details
    ├── InvalidArgumentError         INVALID_ARGUMENT (field_violations)
    │   └── LocalValidationError     refused by the SDK before anything was sent (bad NIR, ...)
    ├── FailedPreconditionError      FAILED_PRECONDITION (illegal transition, reused request id)
    ├── OutOfRangeError              OUT_OF_RANGE
    ├── PermissionDeniedError        PERMISSION_DENIED (rule_ids, legal_refs)
    ├── NotFoundError                NOT_FOUND (also what an invisible record looks like)
    ├── AlreadyExistsError           ALREADY_EXISTS
    ├── UnauthenticatedError         UNAUTHENTICATED (revoked, unknown member, ...)
    ├── ResourceExhaustedError       RESOURCE_EXHAUSTED (retry_after from RetryInfo)
    ├── UnavailableError             UNAVAILABLE (unreachable, journal down: transient)
    ├── DeadlineExceededError        DEADLINE_EXCEEDED
    ├── AbortedError                 ABORTED
    ├── CallCancelledError           CANCELLED
    ├── UnimplementedError           UNIMPLEMENTED
    ├── InternalError                INTERNAL, UNKNOWN, DATA_LOSS
    └── ClientConfigError            local set-up problem: certificate, key or key file unusable

Messages come from the server, which names fields and rules, never data; the SDK's own
messages do the same (a NIR is never quoted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "CallCancelledError",
    "ClientConfigError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "LocalValidationError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "VigieClientError",
    "error_from_rpc",
    "rpc_status_of",
]

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path and the rule it broke (never the value)."""

    field: str
    description: str


class VigieClientError(Exception):
    """Base of every error the client raises.

    Attributes:
        code: The gRPC status code (``None`` for purely local problems).
        message: The status message (names the field or rule, never the data).
        reason: ``ErrorInfo.reason`` (e.g. ``POLICY_DENIED``, ``CERT_REVOKED``), or ``""``.
        domain: ``ErrorInfo.domain`` (``vigie.gateway`` for the gateway's own errors).
        metadata: ``ErrorInfo.metadata``.
        details: Every detail message of the status, unpacked where the type is known.
        request_id: The request id of the write that failed, when there was one.
    """

    status_code: ClassVar[grpc.StatusCode | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        details: Sequence[Any] = (),
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code if code is not None else self.status_code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.details: tuple[Any, ...] = tuple(details)
        self.request_id = request_id

    def __str__(self) -> str:
        code = self.code.name if self.code is not None else "LOCAL"
        reason = f" [{self.reason}]" if self.reason else ""
        return f"{code}{reason}: {self.message}"


class InvalidArgumentError(VigieClientError):
    """The request is malformed; ``field_violations`` says which fields and which rule."""

    status_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self, message: str, *, field_violations: Sequence[FieldViolation] = (), **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)


class LocalValidationError(InvalidArgumentError):
    """Refused by the SDK itself; nothing was sent to the gateway."""


class FailedPreconditionError(VigieClientError):
    status_code = grpc.StatusCode.FAILED_PRECONDITION


class OutOfRangeError(VigieClientError):
    status_code = grpc.StatusCode.OUT_OF_RANGE


class PermissionDeniedError(VigieClientError):
    """The policy denied the call; ``rule_ids`` and ``legal_refs`` name what decided."""

    status_code = grpc.StatusCode.PERMISSION_DENIED

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """The policy rules that decided (from ``ErrorInfo.metadata["rule_ids"]``)."""
        return _split(self.metadata.get("rule_ids", ""))

    @property
    def legal_refs(self) -> tuple[str, ...]:
        """The legal references of those rules (``ErrorInfo.metadata["legal_refs"]``)."""
        return _split(self.metadata.get("legal_refs", ""))


class NotFoundError(VigieClientError):
    """Absent, or not visible to the caller: the gateway does not say which."""

    status_code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(VigieClientError):
    status_code = grpc.StatusCode.ALREADY_EXISTS


class UnauthenticatedError(VigieClientError):
    """The certificate was not accepted (``reason``: ``CERT_REVOKED``, ``UNKNOWN_MEMBER``...)."""

    status_code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhaustedError(VigieClientError):
    """Rate limited (``retry_after`` seconds from ``RetryInfo``), or a message too large."""

    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    @property
    def retry_after(self) -> float | None:
        """The server's ``RetryInfo.retry_delay`` in seconds; ``None`` when it sent none."""
        for d in self.details:
            if isinstance(d, error_details_pb2.RetryInfo):
                seconds: float = d.retry_delay.seconds + d.retry_delay.nanos / 1e9
                return seconds
        return None


class UnavailableError(VigieClientError):
    """The gateway could not be reached or could not serve (transient, retried)."""

    status_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(VigieClientError):
    status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class AbortedError(VigieClientError):
    status_code = grpc.StatusCode.ABORTED


class CallCancelledError(VigieClientError):
    status_code = grpc.StatusCode.CANCELLED


class UnimplementedError(VigieClientError):
    status_code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(VigieClientError):
    status_code = grpc.StatusCode.INTERNAL


class ClientConfigError(VigieClientError):
    """A local set-up problem (certificate, key, CA or key file); names the file and the rule."""


_BY_CODE: dict[grpc.StatusCode, type[VigieClientError]] = {
    cls.status_code: cls
    for cls in (
        InvalidArgumentError,
        FailedPreconditionError,
        OutOfRangeError,
        PermissionDeniedError,
        NotFoundError,
        AlreadyExistsError,
        UnauthenticatedError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        AbortedError,
        CallCancelledError,
        UnimplementedError,
        InternalError,
    )
    if cls.status_code is not None
}
_DETAIL_TYPES: tuple[type[Any], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.RetryInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.QuotaFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)


def _split(joined: str) -> tuple[str, ...]:
    return tuple(p for p in joined.split(",") if p)


def _unpack(packed: any_pb2.Any) -> Any:
    for kind in _DETAIL_TYPES:
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            return message
    return packed


def rpc_status_of(error: grpc.RpcError) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a failed call (from trailing metadata, else code/message)."""
    trailing: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # noqa: S112 - a garbled detail must not hide the real code
                continue
            return status
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    text = error.details() if hasattr(error, "details") else ""
    return status_pb2.Status(code=code.value[0], message=text or "")


def _code_of(number: int) -> grpc.StatusCode:
    return next((c for c in grpc.StatusCode if c.value[0] == number), grpc.StatusCode.UNKNOWN)


def error_from_rpc(error: grpc.RpcError, *, request_id: str = "") -> VigieClientError:
    """Turn a failed gRPC call into the matching :class:`VigieClientError`.

    Args:
        error: What ``grpc.aio`` raised (an ``AioRpcError``) or any ``grpc.RpcError`` with
            ``code()``, ``details()`` and ``trailing_metadata()``.
        request_id: The write's request id, kept on the error for the caller's records.

    Returns:
        The typed error; ``raise ... from error`` it.
    """
    status = rpc_status_of(error)
    code = _code_of(status.code)
    if hasattr(error, "code") and error.code() != code:
        code = error.code()  # the transport's code wins if the details disagree
    details = [_unpack(d) for d in status.details]
    info = next((d for d in details if isinstance(d, error_details_pb2.ErrorInfo)), None)
    kw: dict[str, Any] = {
        "code": code,
        "reason": info.reason if info else "",
        "domain": info.domain if info else "",
        "metadata": dict(info.metadata) if info else {},
        "details": details,
        "request_id": request_id,
    }
    message = status.message or code.name.lower()
    cls = _BY_CODE.get(code, InternalError)
    if cls is InvalidArgumentError:
        violations = [
            FieldViolation(v.field, v.description)
            for d in details
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        ]
        return InvalidArgumentError(message, field_violations=violations, **kw)
    return cls(message, **kw)
