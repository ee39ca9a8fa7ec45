"""Fixtures for the suspicion exchange: keys and both policy bundles (data: suspicion_support)."""

from __future__ import annotations

import pytest

from gateway.crypto import Envelope, KeyRing, Rekeyer
from policy import BUNDLED, PolicyEngine, bundle_path


@pytest.fixture(scope="session")
def engines() -> dict[str, PolicyEngine]:
    return {name: PolicyEngine.load(bundle_path(name)) for name in BUNDLED}


@pytest.fixture(params=list(BUNDLED))
def engine(request: pytest.FixtureRequest, engines: dict[str, PolicyEngine]) -> PolicyEngine:
    return engines[request.param]


@pytest.fixture(scope="session")
def envelope() -> Envelope:
    return Envelope(KeyRing({"aead-1": bytes(range(32))}, "aead-1"))


@pytest.fixture(scope="session")
def rekeyer() -> Rekeyer:
    return Rekeyer(KeyRing({"gw-1": bytes(range(1, 33))}, "gw-1"))
