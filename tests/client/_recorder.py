"""A stand-in gateway over mTLS that records the exact bytes each request carried.

It serves every Vigie method with raw (undeserialised) requests, keeps the bytes, and answers an
empty response of the right type (UploadClaims: a committed final summary). What it records is
what crossed the wire, so "the NIR is absent from these bytes" is a statement about the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory

from gateway._proto.vigie.v1 import (  # noqa: F401 - registers the descriptors in the pool
    claims_pb2,
    journal_pb2,
    members_pb2,
    suspicions_pb2,
)

__all__ = ["RecordingGateway"]

_SERVICES = ("vigie.v1.MemberService", "vigie.v1.SuspicionService", "vigie.v1.ClaimService",
             "vigie.v1.JournalService")  # fmt: skip


@dataclass
class RecordingGateway:
    pki_dir: Path
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    server: grpc.aio.Server | None = None
    target: str = ""

    def wire(self) -> bytes:
        return b"".join(raw for _, raw in self.requests)

    def _handler(self, method: Any) -> grpc.RpcMethodHandler:
        response = message_factory.GetMessageClass(method.output_type)
        name = method.name

        if method.client_streaming:

            async def upload(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
                n = 0
                async for raw in requests:
                    self.requests.append((name, raw))
                    n += len(claims_pb2.UploadClaimsRequest.FromString(raw).lines)
                yield claims_pb2.UploadClaimsResponse(
                    lines_received=n,
                    lines_accepted=n,
                    final=True,
                    outcome=claims_pb2.UPLOAD_OUTCOME_COMMITTED,
                ).SerializeToString()

            return grpc.stream_stream_rpc_method_handler(upload)

        if method.server_streaming:

            async def stream(raw: bytes, context: Any) -> AsyncIterator[bytes]:
                self.requests.append((name, raw))
                if False:  # pragma: no cover - an empty stream
                    yield b""

            return grpc.unary_stream_rpc_method_handler(stream)

        async def unary(raw: bytes, context: Any) -> bytes:
            self.requests.append((name, raw))
            return bytes(response().SerializeToString())

        return grpc.unary_unary_rpc_method_handler(unary)

    async def start(self) -> str:
        pool = descriptor_pool.Default()
        handlers = []
        for full_name in _SERVICES:
            service = pool.FindServiceByName(full_name)
            methods = {m.name: self._handler(m) for m in service.methods}
            handlers.append(grpc.method_handlers_generic_handler(full_name, methods))
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers(handlers)
        key, cert = (self.pki_dir / "server.key").read_bytes(), (self.pki_dir / "server.crt")
        credentials = grpc.ssl_server_credentials(
            [(key, cert.read_bytes())],
            root_certificates=(self.pki_dir / "ca.crt").read_bytes(),
            require_client_auth=True,
        )
        port = self.server.add_secure_port("127.0.0.1:0", credentials)
        await self.server.start()
        self.target = f"127.0.0.1:{port}"
        return self.target

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
