"""The baseline: a bare ``grpc.aio`` mTLS echo server (no interceptor, no store, no policy)."""

from __future__ import annotations

from pathlib import Path

import grpc

__all__ = ["ECHO_METHOD", "start_echo_server"]

ECHO_METHOD = "/bench.Echo/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    return request


async def start_echo_server(pki_dir: Path) -> tuple[grpc.aio.Server, int]:
    """Start the echo server with the same TLS set-up as the gateway (client auth required)."""
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(_echo)},  # raw bytes in and out
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials(
        [((pki_dir / "server.key").read_bytes(), (pki_dir / "server.crt").read_bytes())],
        root_certificates=(pki_dir / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    return server, port
