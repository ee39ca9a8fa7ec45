"""A real gateway per test: mutual TLS with a PKI made for the run, on SQLite and PostgreSQL.

``gateway_env`` starts ``build_gateway`` exactly as ``vigie serve`` does (127.0.0.1:0) and
hands out ``grpc.aio`` secure channels per member certificate (ADR 0007).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway import pki
from gateway.config import Settings
from gateway.server import Decision, Gateway, PolicyHook, build_gateway
from gateway.store import Database, Member, SqlMemberRegistry, migrate

MEMBERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cpam-75": ("AMO", ("submitter", "analyst")),
    "mut-alpha": ("AMC", ("submitter", "analyst")),
    "mut-beta": ("AMC", ("submitter", "analyst")),
    "cpam-audit": ("AMO", ("compliance_officer",)),
}


@dataclass
class AllowList:
    """A test policy hook: allows exactly the (member, action, purpose) it is told to."""

    allowed: set[tuple[str, str, str]] = field(default_factory=set)
    bundle_hash: str = "test-bundle"

    def decide(
        self,
        member: Member,
        action: str,
        purpose: str,
        resource_type: str,
        resource_id: str = "",
        attributes: Mapping[str, Any] | None = None,
    ) -> Decision:
        if (member.member_id, action, purpose) in self.allowed or (
            "*",
            action,
            purpose,
        ) in self.allowed:
            return Decision(True, ("test-allow",), ("test",), self.bundle_hash)
        return Decision(False, ("default-deny",), (), self.bundle_hash)


@dataclass
class GatewayEnv:
    gateway: Gateway
    db: Database
    pki_dir: Path
    target: str
    policy: PolicyHook
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def credentials(
        self, member_id: str | None, *, pki_dir: Path | None = None
    ) -> grpc.ChannelCredentials:
        d = pki_dir or self.pki_dir
        root = (self.pki_dir / "ca.crt").read_bytes()  # trust the gateway's CA
        if member_id is None:
            return grpc.ssl_channel_credentials(root_certificates=root)
        key = (d / "members" / f"{member_id}.key").read_bytes()
        cert = (d / "members" / f"{member_id}.crt").read_bytes()
        return grpc.ssl_channel_credentials(root, key, cert)

    def channel(self, member_id: str | None, *, pki_dir: Path | None = None) -> grpc.aio.Channel:
        ch = grpc.aio.secure_channel(self.target, self.credentials(member_id, pki_dir=pki_dir))
        self.channels.append(ch)
        return ch


def make_pki(directory: Path) -> Path:
    pki.init_ca(directory)
    for member_id, (kind, roles) in MEMBERS.items():
        pki.issue_member(directory, member_id, kind, roles)
    return directory


def register_members(
    db: Database, directory: Path, members: Mapping[str, tuple[str, tuple[str, ...]]] = MEMBERS
) -> None:
    reg = SqlMemberRegistry()
    for member_id, (kind, roles) in members.items():
        cert = pki.load_certificate((directory / "members" / f"{member_id}.crt").read_bytes())
        member = Member(
            member_id=member_id,
            display_name=member_id.upper(),
            kind=kind,  # type: ignore[arg-type]
            roles=frozenset(roles),
        )
        db.run_sync(lambda s, m=member, c=cert: reg.register_certificate(s, m, c))


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def settings_for(pki_dir: Path, db_url: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"environment": "test", "shutdown_grace_s": 1.0, **overrides}
    return Settings.local(pki_dir, tmp, database_url=db_url, **values)


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def gateway_factory(
    pki_dir: Path, db_url: str, tmp_path: Path
) -> AsyncIterator[GatewayFactory]:
    """Start gateways on demand (``await factory(policy=...)``); all stopped at the end."""
    envs: list[GatewayEnv] = []

    async def start(
        policy: PolicyHook | None = None, *, pki: Path | None = None, **overrides: Any
    ) -> GatewayEnv:
        d = pki or pki_dir
        settings = settings_for(d, db_url, tmp_path, **overrides)
        db = Database.from_url(db_url, threads=4)
        migrate(db.engine)
        register_members(db, d)
        policy = policy or AllowList()
        gw = await build_gateway(settings, db=db, policy=policy, migrate_schema=False)
        await gw.start()
        env = GatewayEnv(gateway=gw, db=db, pki_dir=d, target=f"127.0.0.1:{gw.port}", policy=policy)
        envs.append(env)
        return env

    yield start
    for env in envs:
        for ch in env.channels:
            await ch.close()
        await env.gateway.stop(grace=0.5)


@pytest.fixture
async def gateway_env(gateway_factory: GatewayFactory) -> GatewayEnv:
    env: GatewayEnv = await gateway_factory()
    return env


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
