"""Fixtures of the SDK tests: a real gateway over mTLS (tests/service), clients per member.

``sdk`` starts a gateway with the ``current-law`` bundle and hands out
:class:`gateway.client.VigieClient` instances configured exactly as a member would configure
one (certificate, key and CA files of the test PKI). ``members_key`` is a members' shared key
file. ``fault_injection`` wraps every gateway started afterwards with a server interceptor the
test controls (to lose an answer after the server committed, for instance).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.client import ClientConfig, Pseudonymiser, RetryEvent, RetryPolicy, VigieClient
from gateway.crypto import generate_key_file
from gateway.server._policy import EnginePolicyHook
from tests.client._proxy import TcpProxy
from tests.service.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    GatewayEnv,
    GatewayFactory,
    gateway_factory,
    pki_dir,
)

FAST_RETRIES = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)


def client_config(pki: Path, address: str, **overrides: Any) -> ClientConfig:
    member = overrides.pop("member")
    values: dict[str, Any] = dict(
        address=address,
        certificate=pki / "members" / f"{member}.crt",
        private_key=pki / "members" / f"{member}.key",
        ca=pki / "ca.crt",
        timeout=15.0,
        retry=FAST_RETRIES,
    )
    values.update(overrides)
    return ClientConfig(**values)


@dataclass
class Sdk:
    """A running gateway and a factory of clients for it."""

    env: GatewayEnv
    key_file: Path
    retries: list[RetryEvent] = field(default_factory=list)
    clients: list[VigieClient] = field(default_factory=list)

    def client(
        self,
        member: str = "mut-alpha",
        *,
        address: str | None = None,
        pseudonymise: bool = True,
        **overrides: Any,
    ) -> VigieClient:
        config = client_config(
            self.env.pki_dir, address or self.env.target, member=member, **overrides
        )
        client = VigieClient(
            config,
            pseudonymiser=Pseudonymiser.from_key_file(self.key_file) if pseudonymise else None,
            on_retry=self.retries.append,
        )
        self.clients.append(client)
        return client


SdkFactory = Callable[..., Awaitable[Sdk]]


@pytest.fixture
def members_key(tmp_path: Path) -> Path:
    path = tmp_path / "members.key"
    generate_key_file(path)
    return path


@pytest.fixture
async def sdk_factory(
    gateway_factory: GatewayFactory,  # noqa: F811 - the fixture imported above
    members_key: Path,
) -> AsyncIterator[Callable[..., Awaitable[Sdk]]]:
    made: list[Sdk] = []

    async def start(policy: Any = None, **overrides: Any) -> Sdk:
        env: GatewayEnv = await gateway_factory(
            policy=policy or EnginePolicyHook.load("current-law"), **overrides
        )
        sdk = Sdk(env=env, key_file=members_key)
        made.append(sdk)
        return sdk

    yield start
    for sdk in made:
        for client in sdk.clients:
            await client.close()


@pytest.fixture
async def sdk(sdk_factory: SdkFactory) -> Sdk:
    return await sdk_factory()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    p = TcpProxy()
    yield p
    await p.close()


class FaultInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Outermost server interceptor: lets a test act before or after the real handler ran.

    ``before_unary[action]`` is awaited before the gateway sees the request (to hold an attempt
    past its deadline, deterministically). ``after_unary[action]`` is called with the request
    and the response the gateway produced (its write and journal event already committed);
    returning a status code makes the call fail with it instead, as if the answer had been lost
    on the way back.
    """

    def __init__(self) -> None:
        self.before_unary: dict[str, Callable[[Any], Awaitable[None]]] = {}
        self.after_unary: dict[str, Callable[[Any, Any], grpc.StatusCode | None]] = {}
        self.seen: list[tuple[str, Any]] = []

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        action = details.method.rsplit("/", 1)[-1]
        hook = self.after_unary.get(action)
        before = self.before_unary.get(action)
        if handler is None or (hook is None and before is None) or handler.request_streaming:
            return handler
        inner = handler.unary_unary
        if inner is None:
            return handler

        async def wrapped(request: Any, context: Any) -> Any:
            self.seen.append((action, request))
            if before is not None:
                await before(request)
            response = await inner(request, context)
            code = hook(request, response) if hook is not None else None
            if code is not None:
                await context.abort(code, "injected fault: the answer was lost")
            return response

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@pytest.fixture
def fault_injection(monkeypatch: pytest.MonkeyPatch) -> FaultInterceptor:
    """Every gateway built after this fixture gets the interceptor outermost."""
    fault = FaultInterceptor()
    original = grpc.aio.server

    def server(*args: Any, interceptors: Any = None, **kwargs: Any) -> Any:
        return original(*args, interceptors=[fault, *(interceptors or [])], **kwargs)

    monkeypatch.setattr(grpc.aio, "server", server)
    return fault
