"""Map Vigie's exceptions to gRPC statuses with ``google.rpc`` details (AIP-193).

Messages name the field and the rule, never the data. Unexpected exceptions become INTERNAL
with a generic message; their text never reaches the client.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    VigieError,
)

__all__ = ["DOMAIN", "status_code_for", "to_rpc_status"]

DOMAIN = "vigie.gateway"

_CODES: list[tuple[type[VigieError], grpc.StatusCode]] = [
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
]


def status_code_for(error: BaseException) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    if isinstance(error, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED  # a handler a later issue fills in
    return grpc.StatusCode.INTERNAL


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_rpc_status(error: BaseException) -> status_pb2.Status:
    """Build the ``google.rpc.Status`` for ``error`` (details: ErrorInfo, BadRequest, RetryInfo)."""
    code = status_code_for(error)
    if isinstance(error, NotImplementedError):
        return status_pb2.Status(code=code_pb2.UNIMPLEMENTED, message="method not implemented yet")
    if not isinstance(error, VigieError):
        return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
    details = []
    metadata: dict[str, str] = {}
    if isinstance(error, PermissionDeniedError):
        metadata = {"rule_ids": ",".join(error.rule_ids), "legal_refs": ",".join(error.legal_refs)}
    details.append(
        _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata))
    )
    if isinstance(error, InvalidArgumentError) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, ResourceExhaustedError):
        details.append(
            _pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
        )
    return status_pb2.Status(code=code.value[0], message=error.message, details=details)
