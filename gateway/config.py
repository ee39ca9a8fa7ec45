"""Gateway configuration: environment (``VIGIE_*``) and an optional TOML/YAML-free ``.env`` file.

Validated once at start-up; every problem is reported with the setting's name and what is wrong
(missing certificate file, unreadable key, bad database URL), never with a secret's value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["ConfigError", "Settings", "load_settings"]


class ConfigError(Exception):
    """The configuration is unusable; the message lists every bad setting."""


class Settings(BaseSettings):
    """Everything the gateway reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="VIGIE_", env_file=None, extra="forbid", frozen=True
    )

    # Network
    listen: str = Field(default="127.0.0.1:50051", description="host:port the server binds")
    # Storage
    database_url: str = Field(
        default="sqlite:///var/vigie.db", description="SQLAlchemy URL (sqlite or postgresql)"
    )
    # TLS / PKI
    server_cert: Path = Field(default=Path("var/pki/server.crt"))
    server_key: Path = Field(default=Path("var/pki/server.key"))
    client_ca: Path = Field(default=Path("var/pki/ca.crt"))
    crl: Path = Field(default=Path("var/pki/crl.pem"))
    # Keys
    pseudonym_keys: Path = Field(
        default=Path("var/keys/pseudonym"), description="key ring folder: second-level pseudonyms"
    )
    data_keys: Path = Field(
        default=Path("var/keys/data"), description="key ring folder: AES-GCM at rest"
    )
    journal_key: Path = Field(default=Path("var/keys/journal.key"))
    journal_origin: str = "vigie.example/journal"
    checkpoint_interval_s: float = Field(default=5.0, gt=0)
    # Events per integration transaction. Each batch holds the interpreter (hashing, proofs,
    # signing) and, on SQLite, the write lock: small batches keep every call's latency tail
    # short while the sequencer catches up (docs/performance.md, pre-payment check).
    journal_batch_size: int = Field(default=256, ge=1, le=100_000)
    # Policy
    policy_bundle: str = Field(default="current-law", description="bundled name or a folder path")
    # Limits
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    max_concurrent_rpcs: int = Field(default=256, ge=1)
    max_concurrent_streams: int = Field(default=100, ge=1)
    rate_limit_per_s: float = Field(default=200.0, gt=0, description="per member, sustained")
    rate_limit_burst: int = Field(default=400, ge=1)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    db_threads: int = Field(default=8, ge=1, le=64)
    # Logging
    log_format: Literal["json", "console"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    environment: Literal["development", "production", "test"] = "development"
    admin_token: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as e:
            raise ValueError("not a valid SQLAlchemy database URL") from e
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("only sqlite and postgresql databases are supported")
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected host:port")
        return value

    @classmethod
    def local(cls, pki_dir: Path, state_dir: Path, **overrides: Any) -> Settings:
        """A gateway on local files, on a free port of 127.0.0.1.

        ``pki_dir`` is a folder made by ``vigie pki init``; the key rings and the journal key
        live under ``state_dir/keys``. Used by the demo, ``vigie evaluate``, the benchmarks and
        the tests; ``overrides`` are any other settings.
        """
        values: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "server_cert": pki_dir / "server.crt",
            "server_key": pki_dir / "server.key",
            "client_ca": pki_dir / "ca.crt",
            "crl": pki_dir / "crl.pem",
            "pseudonym_keys": state_dir / "keys" / "pseudonym",
            "data_keys": state_dir / "keys" / "data",
            "journal_key": state_dir / "keys" / "journal.key",
        }
        values.update(overrides)
        return cls(**values)

    def check_files(self) -> None:
        """Check that the TLS files the server needs exist and are readable.

        Raises:
            ConfigError: listing every missing or unreadable file by setting name.
        """
        problems = []
        for name in ("server_cert", "server_key", "client_ca", "crl"):
            path: Path = getattr(self, name)
            if not path.is_file():
                problems.append(f"VIGIE_{name.upper()}: file not found: {path}")
            elif not os.access(path, os.R_OK):
                problems.append(f"VIGIE_{name.upper()}: file not readable: {path}")
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides.

    Raises:
        ConfigError: with one line per invalid setting.
    """
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # overrides are validated by pydantic
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"VIGIE_{loc.upper()}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
