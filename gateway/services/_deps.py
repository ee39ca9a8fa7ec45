"""What servicers need from the server, built once at start-up.

Key material is loaded here, from the folders the settings name (``gateway.keys``):

1. the pseudonymisation ring (second-level re-keying, DESIGN flow 3);
2. the data ring (AES-256-GCM sealing of free text at rest);
3. the journal's Ed25519 checkpoint signing key (C2SP signed notes);
4. the page-token MAC key, derived from the current data key with HKDF-SHA-256 (RFC 5869) so
   that every replica accepts the page tokens of every other (AIP-158 tokens are opaque to the
   client but must survive a load balancer sending the next page elsewhere).

In the ``development`` and ``test`` environments a missing ring or journal key is created
(owner-only files); in ``production`` a missing one is a configuration error, never silently
replaced: a new pseudonymisation key would unlink every stored pseudonym.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.config import ConfigError, Settings
from gateway.crypto import CryptoError, Envelope, Rekeyer
from gateway.errors import VigieError
from gateway.journal import JournalError, load_signing_key
from gateway.keys import init_ring, load_ring
from gateway.server import PolicyHook
from gateway.services._paging import PageTokens
from gateway.store import Database, SqlMemberRegistry

__all__ = ["Deps", "GatewayKeys", "load_keys"]


@dataclass(frozen=True)
class GatewayKeys:
    """The gateway's own secrets (never logged: the crypto types redact their repr)."""

    rekeyer: Rekeyer
    envelope: Envelope
    journal_key: Ed25519PrivateKey = field(repr=False)
    page_token_key: bytes = field(repr=False)


def _create_journal_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def load_keys(settings: Settings) -> GatewayKeys:
    """Load (or, outside production, create) the key rings and the journal key.

    Raises:
        ConfigError: a key folder or file is missing in production, or unreadable/unsafe.
    """
    create = settings.environment != "production"
    problems: list[str] = []
    rings = {}
    for name in ("pseudonym_keys", "data_keys"):
        folder: Path = getattr(settings, name)
        try:
            if create:
                init_ring(folder)
            rings[name] = load_ring(folder)
        except (VigieError, CryptoError, OSError) as e:
            problems.append(f"VIGIE_{name.upper()}: {type(e).__name__}: {_reason(e)}")
    journal_key = None
    try:
        if create and not settings.journal_key.exists():
            _create_journal_key(settings.journal_key)
        journal_key = load_signing_key(settings.journal_key.read_bytes())
    except (JournalError, OSError) as e:
        problems.append(f"VIGIE_JOURNAL_KEY: {type(e).__name__}: {_reason(e)}")
    if problems or journal_key is None:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    data_ring = rings["data_keys"]
    page_token_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"vigie/v1/page-token"
    ).derive(data_ring.current.reveal())
    return GatewayKeys(
        rekeyer=Rekeyer(rings["pseudonym_keys"]),
        envelope=Envelope(data_ring),
        journal_key=journal_key,
        page_token_key=page_token_key,
    )


def _reason(e: BaseException) -> str:
    # Messages of our own errors name paths and rules, never key bytes; OSError: its strerror.
    if isinstance(e, OSError):
        return f"{e.strerror}: {e.filename}"
    return str(e)


@dataclass
class Deps:
    settings: Settings
    db: Database
    policy: PolicyHook
    registry: SqlMemberRegistry
    keys: GatewayKeys
    page_tokens: PageTokens = field(default_factory=PageTokens)
    # Background jobs started with the server and cancelled at stop (e.g. the sequencer).
    jobs: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Called once at stop, after the server has drained (sync or async).
    on_stop: list[Callable[[], Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
