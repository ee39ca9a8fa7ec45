"""Read google.rpc details from a failed call (what a client sees)."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return status_pb2.Status(code=error.code().value[0], message=error.details() or "")


def detail(error: grpc.aio.AioRpcError, kind: type[Any]) -> Any:
    for any_ in rich_status(error).details:
        msg = kind()
        if any_.Unpack(msg):
            return msg
    return None


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    bad = detail(error, error_details_pb2.BadRequest)
    return [] if bad is None else [(v.field, v.description) for v in bad.field_violations]


def error_info(error: grpc.aio.AioRpcError) -> Any:
    return detail(error, error_details_pb2.ErrorInfo)
