"""A blocking facade over :class:`VigieClient` for scripts and synchronous systems.

It owns a private event loop (``asyncio.Runner``) on which the async client and its channel
live; each method runs the async method to completion. Same arguments, same return values,
same errors. Not thread-safe: use one instance per thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

import grpc

from gateway.client._api_claims import VigieClient
from gateway.client._config import ClientConfig
from gateway.client._pseudonymise import Pseudonymiser
from gateway.client._retry import RetryEvent

__all__ = ["SyncVigieClient"]

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[VigieClient, P], Awaitable[R]],
) -> Callable[Concatenate[SyncVigieClient, P], R]:
    def run(self: SyncVigieClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._runner.run(_awaited(method(self._client, *args, **kwargs)))

    run.__name__ = method.__name__
    run.__doc__ = method.__doc__
    return run


async def _awaited(value: Awaitable[R]) -> R:
    return await value


class SyncVigieClient:
    """Blocking twin of :class:`VigieClient` (the same methods, without ``await``).

    Example::

        with SyncVigieClient(config) as client:
            print(client.get_self().name)
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        pseudonymiser: Pseudonymiser | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        interceptors: list[grpc.aio.ClientInterceptor] | None = None,
    ) -> None:
        """Start the private loop and open the channel on it.

        Raises:
            ClientConfigError: The certificate, key or CA cannot be read.
        """
        self._runner = asyncio.Runner()

        async def make() -> VigieClient:
            return VigieClient(
                config, pseudonymiser=pseudonymiser, on_retry=on_retry, interceptors=interceptors
            )

        try:
            self._client = self._runner.run(make())
        except BaseException:
            self._runner.close()
            raise

    @property
    def client(self) -> VigieClient:
        """The underlying async client (for use on :meth:`run`'s loop only)."""
        return self._client

    def run(self, awaitable: Awaitable[R]) -> R:
        """Run any coroutine of :attr:`client` on the private loop."""
        return self._runner.run(_awaited(awaitable))

    def close(self) -> None:
        """Close the channel and the loop."""
        try:
            self._runner.run(self._client.close())
        finally:
            self._runner.close()

    def __enter__(self) -> SyncVigieClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    get_self = _blocking(VigieClient.get_self)
    list_members = _blocking(VigieClient.list_members)
    create_suspicion = _blocking(VigieClient.create_suspicion)
    submit_suspicion = _blocking(VigieClient.submit_suspicion)
    get_suspicion = _blocking(VigieClient.get_suspicion)
    list_suspicions = _blocking(VigieClient.list_suspicions)
    transition_suspicion = _blocking(VigieClient.transition_suspicion)
    acknowledge_notification = _blocking(VigieClient.acknowledge_notification)
    follow_notifications = _blocking(VigieClient.follow_notifications)
    upload_claims = _blocking(VigieClient.upload_claims)
    check_claim = _blocking(VigieClient.check_claim)
    list_alerts = _blocking(VigieClient.list_alerts)
    get_alert = _blocking(VigieClient.get_alert)
    list_access_events = _blocking(VigieClient.list_access_events)
    list_person_accesses = _blocking(VigieClient.list_person_accesses)
    get_checkpoint = _blocking(VigieClient.get_checkpoint)
    get_inclusion_proof = _blocking(VigieClient.get_inclusion_proof)
    get_consistency_proof = _blocking(VigieClient.get_consistency_proof)
    export_journal = _blocking(VigieClient.export_journal)

    def __repr__(self) -> str:
        return f"SyncVigieClient({self._client.config.address!r})"
