"""Server assembly: mTLS credentials, the call pipeline, services, health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.config import Settings
from gateway.server._identity import IdentityResolver
from gateway.server._pipeline import CallPipeline
from gateway.server._policy import EnginePolicyHook, PolicyHook
from gateway.server._ratelimit import RateLimiter
from gateway.store import Database, IdempotencyStore, SqlMemberRegistry, migrate

__all__ = ["Gateway", "build_gateway", "run_forever", "server_options"]

log = structlog.get_logger("vigie.server")
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def server_options(settings: Settings) -> list[tuple[str, Any]]:
    """Channel arguments: message size limits, concurrent streams, keepalive hygiene."""
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
        ("grpc.so_reuseport", 0),
    ]


@dataclass
class Gateway:
    """A built, not yet started, gateway server and what it owns."""

    settings: Settings
    db: Database
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    policy: PolicyHook
    deps: Any = None  # gateway.services.Deps (typed loosely: services import the server)
    # Why the gateway must not serve (None: serve): the journal guard; health follows it.
    gate: Callable[[], str | None] | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    on_stop: list[Callable[[], Any]] = field(default_factory=list)

    async def start(self) -> None:
        await self.server.start()
        if self.deps is not None:
            for job in self.deps.jobs:
                self.background.append(
                    asyncio.create_task(job(), name=getattr(job, "__name__", "job"))
                )
            self.on_stop.extend(self.deps.on_stop)
        # Everything built so far (modules, the policy engine, metadata, what start-up warmed)
        # lives as long as the process: keep it out of the cyclic collector's full passes,
        # which otherwise stall every call for tens of milliseconds on a large heap (the
        # pre-payment check's p99, docs/performance.md). Freezing is a list splice (no pass
        # over the heap); stop() unfreezes.
        gc.freeze()
        serving = self.gate is None or self.gate() is None
        await self.health.set("", _SERVING if serving else _NOT_SERVING)
        log.info("gateway_started", port=self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking new calls, let in-flight calls finish within ``grace``, then close."""
        gc.unfreeze()  # what start() froze may be garbage once this gateway is gone
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.shutdown_grace_s if grace is None else grace)
        for task in self.background:
            task.cancel()
        for task in self.background:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as e:
                log.warning("background_task_failed", task=task.get_name(), error=type(e).__name__)
        for fn in self.on_stop:
            result = fn()
            if asyncio.iscoroutine(result):
                await result
        self.db.close()
        log.info("gateway_stopped")


async def build_gateway(
    settings: Settings,
    *,
    db: Database | None = None,
    policy: PolicyHook | None = None,
    migrate_schema: bool = True,
) -> Gateway:
    """Assemble (but do not start) the server described by ``settings``.

    Raises:
        ConfigError: TLS files missing or unreadable.
        RuntimeError: the listen address could not be bound.
    """
    from gateway.services import load_keys, register_services

    settings.check_files()
    keys = load_keys(settings)
    db = db or Database.from_url(settings.database_url, threads=settings.db_threads)
    if migrate_schema:
        await db.call(migrate, db.engine)
    policy = policy or EnginePolicyHook.load(settings.policy_bundle)
    registry = SqlMemberRegistry()
    identities = IdentityResolver(settings.client_ca, settings.crl, registry)
    pipeline = CallPipeline(
        db,
        identities,
        policy,
        RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        IdempotencyStore(keys.envelope),
    )
    server = grpc.aio.server(
        interceptors=[pipeline],
        options=server_options(settings),
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    service_names, deps = register_services(
        server, settings=settings, db=db, policy=policy, registry=registry, keys=keys
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # Fail closed on the journal: one integration round before serving, then the guard gates
    # every call (pipeline) and drives the health status (issue 3).
    guard = deps.extras.get("journal_guard")
    if guard is not None:
        await guard.prime()
        pipeline.gate = guard.refusal

        async def _follow(serving: bool, _reason: str) -> None:
            await health_servicer.set("", _SERVING if serving else _NOT_SERVING)

        guard.listeners.append(_follow)
        await guard.notify()
    reflection.enable_server_reflection(
        [
            *service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    credentials = grpc.ssl_server_credentials(
        [(settings.server_key.read_bytes(), settings.server_cert.read_bytes())],
        root_certificates=settings.client_ca.read_bytes(),
        require_client_auth=True,  # grpcio defaults to False: mutual TLS is the point
    )
    port = server.add_secure_port(settings.listen, credentials)
    if port == 0:
        raise RuntimeError(f"could not bind {settings.listen}")
    return Gateway(
        settings=settings,
        db=db,
        server=server,
        health=health_servicer,
        port=port,
        policy=policy,
        deps=deps,
        gate=pipeline.gate,
    )


async def run_forever(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then drain in-flight calls (graceful shutdown)."""
    gateway = await build_gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gateway_draining", grace_s=settings.shutdown_grace_s)
    await gateway.stop()
