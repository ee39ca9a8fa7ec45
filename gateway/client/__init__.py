"""Vigie client SDK for members' systems (AMO and AMC): typed, async first, NIR-safe.

- :class:`VigieClient` (``grpc.aio``) and its blocking twin :class:`SyncVigieClient`: every
  gateway method, with deadlines, retries of transient failures under one request id per
  operation, and typed errors carrying the ``google.rpc.Status`` details.
- :class:`ClientConfig`: address, member certificate/key and CA (paths or PEM bytes), server
  name override, channel options, deadlines, :class:`RetryPolicy`.
- :class:`Pseudonymiser`: validates a NIR locally and turns it into its first-level token
  under the members' shared key, so a NIR never leaves the member.
- Uploads (:meth:`VigieClient.upload_claims`) stream CSV/JSONL files or iterables in batches
  with progress callbacks (:class:`UploadProgress`, :class:`UploadResult`).
- Notifications (:meth:`VigieClient.follow_notifications`) resume from a :class:`FileCursor`
  or :class:`MemoryCursor`, acknowledge each processed notification and reconnect.

Guide with runnable examples: ``docs/sdk.md``. Exception tree: :mod:`gateway.client._errors`.
"""

from gateway.client._api_claims import ExportedJournal, VigieClient
from gateway.client._base import new_request_id
from gateway.client._config import ClientConfig
from gateway.client._errors import (
    AbortedError,
    AlreadyExistsError,
    CallCancelledError,
    ClientConfigError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    LocalValidationError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    VigieClientError,
    error_from_rpc,
)
from gateway.client._lines import (
    CLAIM_LINE_FIELDS,
    claim_line_from_mapping,
    read_claim_rows,
)
from gateway.client._notifications import CursorStore, FileCursor, MemoryCursor
from gateway.client._pseudonymise import Pseudonymiser
from gateway.client._retry import RetryEvent, RetryPolicy
from gateway.client._sync import SyncVigieClient
from gateway.client._upload import LineRejection, UploadProgress, UploadResult

__all__ = [
    "CLAIM_LINE_FIELDS",
    "AbortedError",
    "AlreadyExistsError",
    "CallCancelledError",
    "ClientConfig",
    "ClientConfigError",
    "CursorStore",
    "DeadlineExceededError",
    "ExportedJournal",
    "FailedPreconditionError",
    "FieldViolation",
    "FileCursor",
    "InternalError",
    "InvalidArgumentError",
    "LineRejection",
    "LocalValidationError",
    "MemoryCursor",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "Pseudonymiser",
    "ResourceExhaustedError",
    "RetryEvent",
    "RetryPolicy",
    "SyncVigieClient",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UploadProgress",
    "UploadResult",
    "VigieClient",
    "VigieClientError",
    "claim_line_from_mapping",
    "error_from_rpc",
    "new_request_id",
    "read_claim_rows",
]
