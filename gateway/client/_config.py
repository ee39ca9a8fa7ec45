"""How a member's system reaches the gateway: mTLS material, channel options, deadlines.

Certificates, keys and the CA are given as paths or as PEM bytes. Channel options follow the
gateway's own limits (``gateway.server.server_options``): same message sizes, keepalive no more
often than the server tolerates (it refuses pings closer than 30 s without data), no built-in
gRPC retry policy (the SDK retries itself, with the same request id; see ``_retry``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from gateway.client._errors import ClientConfigError
from gateway.client._retry import RetryPolicy

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "ClientConfig", "PemSource"]

PemSource = str | os.PathLike[str] | bytes
"""A PEM file path, or the PEM bytes themselves."""

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_ENV_FILES = {
    "certificate": "VIGIE_CLIENT_CERT",
    "private_key": "VIGIE_CLIENT_KEY",
    "ca": "VIGIE_CLIENT_CA",
}
_PEM_MARK = b"-----BEGIN "
_MAX_PEM_BYTES = 1 << 20


def _read_pem(source: PemSource, what: str) -> bytes:
    """PEM bytes from a path or from bytes; the error names the file and the rule, not the key."""
    if isinstance(source, bytes):
        data, name = source, f"{what} (bytes)"
    else:
        path = Path(source)
        name = f"{what} {path}"
        try:
            if path.stat().st_size > _MAX_PEM_BYTES:
                raise ClientConfigError(f"{name}: too large for a PEM file")
            data = path.read_bytes()
        except FileNotFoundError:
            raise ClientConfigError(f"{name}: file not found") from None
        except OSError as e:
            raise ClientConfigError(f"{name}: cannot read ({e.strerror})") from None
    if _PEM_MARK not in data:
        raise ClientConfigError(f"{name}: not PEM (no -----BEGIN line)")
    return data


@dataclass(frozen=True)
class ClientConfig:
    """Everything needed to open a channel to the gateway.

    Attributes:
        address: ``host:port`` of the gateway (or of a gRPC-aware load balancer).
        certificate: The member's client certificate (path or PEM bytes).
        private_key: Its private key (path or PEM bytes; keep the file 0600).
        ca: The CA certificate that signed the gateway's server certificate.
        server_name: Expected server name when it differs from the address host (SNI and
            certificate check), e.g. when connecting through an IP or a tunnel.
        timeout: Default overall deadline of a unary call in seconds, retries included.
        attempt_timeout: Optional deadline of one attempt (a shorter per-attempt deadline lets
            a hung attempt be retried within ``timeout``).
        retry: The retry policy for transient failures.
        max_message_bytes: Largest message sent or received (the server's limit by default).
        keepalive_s: HTTP/2 keepalive ping interval while calls are open (>= 30 s: the server
            answers closer pings with GOAWAY ``too_many_pings``).
        user_agent: Sent as the primary user agent.
        extra_options: More gRPC channel arguments, appended last.
    """

    address: str
    certificate: PemSource
    private_key: PemSource = field(repr=False)  # PEM bytes must never reach a log line
    ca: PemSource
    server_name: str | None = None
    timeout: float | None = 30.0
    attempt_timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    keepalive_s: float = 60.0
    user_agent: str = "vigie-client/1"
    extra_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ClientConfigError(f"address {self.address!r}: expected host:port")
        if self.keepalive_s < 30:
            raise ClientConfigError("keepalive_s: must be at least 30 (the server's minimum)")
        if self.timeout is not None and self.timeout <= 0:
            raise ClientConfigError("timeout: must be positive (or None for no deadline)")
        if self.attempt_timeout is not None and self.attempt_timeout <= 0:
            raise ClientConfigError("attempt_timeout: must be positive (or None)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Build a configuration from ``VIGIE_CLIENT_*`` variables (``vigie upload`` reads them).

        ``VIGIE_CLIENT_ADDRESS`` (default ``127.0.0.1:50051``), ``VIGIE_CLIENT_CERT``,
        ``VIGIE_CLIENT_KEY``, ``VIGIE_CLIENT_CA`` (paths), ``VIGIE_CLIENT_SERVER_NAME``
        (optional); keyword arguments override them.

        Raises:
            ClientConfigError: A required variable is missing.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "address": env.get("VIGIE_CLIENT_ADDRESS") or "127.0.0.1:50051",
            "server_name": env.get("VIGIE_CLIENT_SERVER_NAME") or None,
        }
        for name, var in _ENV_FILES.items():
            if env.get(var):
                values[name] = env[var]
        values.update(overrides)
        missing = [var for name, var in _ENV_FILES.items() if name not in values]
        if missing:
            raise ClientConfigError(f"missing configuration: set {', '.join(missing)}")
        return cls(**values)

    def credentials(self) -> grpc.ChannelCredentials:
        """mTLS channel credentials from the configured PEM material.

        Raises:
            ClientConfigError: A file is missing, unreadable or not PEM.
        """
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca, "CA certificate"),
            private_key=_read_pem(self.private_key, "private key"),
            certificate_chain=_read_pem(self.certificate, "certificate"),
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        """gRPC channel arguments: sizes, keepalive, server name, no built-in retries."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", int(self.keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.enable_retries", 0),  # the SDK retries, with the same request id
            ("grpc.primary_user_agent", self.user_agent),
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 5_000),
        ]
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
            options.append(("grpc.default_authority", self.server_name))
        options.extend(self.extra_options)
        return options
