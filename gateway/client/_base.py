"""The channel, the stubs and the one unary call path (deadline, retries, typed errors)."""

# ruff: noqa: ASYNC109 - `timeout` is the gRPC deadline sent to the server, not a local timer

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from gateway._proto.vigie.v1 import (
    claims_pb2_grpc,
    journal_pb2_grpc,
    members_pb2_grpc,
    suspicions_pb2_grpc,
)
from gateway.client._config import ClientConfig
from gateway.client._errors import ClientConfigError, UnavailableError
from gateway.client._pseudonymise import Pseudonymiser
from gateway.client._retry import RetryEvent, call_with_retries

__all__ = ["UNSET", "ClientBase", "Timeout", "new_request_id"]

R = TypeVar("R")


class _Unset:
    """Marks "use the configured default" (``None`` means "no deadline")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()
Timeout = float | None | _Unset


async def follow_pages(
    list_page: Callable[..., Awaitable[Any]], items: str, **filters: Any
) -> AsyncIterator[Any]:
    """Every item of a paginated list (AIP-158): call ``list_page`` until no next page token.

    Args:
        list_page: One of the client's ``list_*`` methods.
        items: The response's repeated field (``"alerts"``, ``"suspicions"``...).
        filters: The ``list_*`` method's keyword arguments (``page_token`` excepted).
    """
    token = ""
    while True:
        page = await list_page(page_token=token, **filters)
        for item in getattr(page, items):
            yield item
        token = page.next_page_token
        if not token:
            return


def new_request_id() -> str:
    """A fresh request id (UUID4, AIP-155): one per logical operation, reused by its retries."""
    return str(uuid.uuid4())


class ClientBase:
    """Holds the mTLS channel to the gateway and the generated stubs.

    Use it as an async context manager (or call :meth:`close`). The channel is created on the
    running event loop.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        pseudonymiser: Pseudonymiser | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
    ) -> None:
        """Open a channel (lazily connected) with the member's certificate.

        Args:
            config: Address, TLS material, deadlines, retry policy.
            pseudonymiser: Needed by the methods that take a NIR.
            on_retry: Called before each retry (logging, metrics).
            interceptors: Extra ``grpc.aio`` client interceptors.

        Raises:
            ClientConfigError: The certificate, key or CA cannot be read.
        """
        self.config = config
        self.pseudonymiser = pseudonymiser
        self._on_retry = on_retry
        self._channel = grpc.aio.secure_channel(
            config.address,
            config.credentials(),
            options=config.channel_options(),
            interceptors=list(interceptors) if interceptors else None,
        )
        self._members = members_pb2_grpc.MemberServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._suspicions = suspicions_pb2_grpc.SuspicionServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._claims = claims_pb2_grpc.ClaimServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._journal = journal_pb2_grpc.JournalServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        """Close the channel (in-flight calls get ``grace`` seconds, then are cancelled)."""
        await self._channel.close(grace)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the channel is connected (TLS handshake done).

        Raises:
            UnavailableError: Not connected within ``timeout``.
        """
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except TimeoutError:
            raise UnavailableError(
                f"{self.config.address}: not reachable within {timeout} s"
            ) from None

    def _pseudo(self) -> Pseudonymiser:
        if self.pseudonymiser is None:
            raise ClientConfigError(
                "this call takes a NIR: give the client a Pseudonymiser "
                "(Pseudonymiser.from_key_file(<members' key file>))"
            )
        return self.pseudonymiser

    def _timeout(self, timeout: Timeout) -> float | None:
        return self.config.timeout if isinstance(timeout, _Unset) else timeout

    async def _unary(
        self,
        method: str,
        fn: Callable[..., Awaitable[R]],
        request: Any,
        *,
        timeout: Timeout,
        request_id: str = "",
    ) -> R:
        """One logical unary call: the same ``request`` object is re-sent by every attempt."""

        async def attempt(per_attempt: float | None) -> R:
            return await fn(request, timeout=per_attempt)

        return await call_with_retries(
            attempt,
            method=method,
            policy=self.config.retry,
            timeout=self._timeout(timeout),
            attempt_timeout=self.config.attempt_timeout,
            idempotent=True,  # reads, and writes with a request id (AIP-155)
            request_id=request_id,
            on_retry=self._on_retry,
        )
