"""Key material at start-up: created outside production, refused when missing in it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings
from gateway.services import load_keys


def _settings(tmp: Path, environment: str) -> Settings:
    return Settings(
        pseudonym_keys=tmp / "keys" / "pseudonym",
        data_keys=tmp / "keys" / "data",
        journal_key=tmp / "keys" / "journal.key",
        environment=environment,  # type: ignore[arg-type]  # the literal is checked by pydantic
    )


def test_development_creates_owner_only_rings_and_journal_key(tmp_path: Path) -> None:
    keys = load_keys(_settings(tmp_path, "development"))
    for path in (tmp_path / "keys" / "pseudonym", tmp_path / "keys" / "data"):
        assert (path / "CURRENT").is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "journal.key").stat().st_mode) == 0o600
    token1 = "A" * 43
    # The same folders give the same keys on the next start (nothing is silently replaced).
    again = load_keys(_settings(tmp_path, "development"))
    assert again.rekeyer.rekey(token1) == keys.rekeyer.rekey(token1)
    assert again.journal_key.public_key() == keys.journal_key.public_key()


def test_production_refuses_missing_key_material_and_names_each_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_keys(_settings(tmp_path, "production"))
    message = str(e.value)
    for setting in ("VIGIE_PSEUDONYM_KEYS", "VIGIE_DATA_KEYS", "VIGIE_JOURNAL_KEY"):
        assert setting in message
    assert not (tmp_path / "keys").exists()  # nothing was created


def test_a_journal_key_of_another_type_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    settings = _settings(tmp_path, "development")
    settings.journal_key.parent.mkdir(parents=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    settings.journal_key.write_bytes(pem)
    with pytest.raises(ConfigError, match=r"VIGIE_JOURNAL_KEY: .*only Ed25519"):
        load_keys(settings)


def test_key_errors_never_print_key_material(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "development")
    keys = load_keys(settings)
    key_text = (tmp_path / "keys" / "journal.key").read_text()
    shown = repr(keys) + str(keys)
    assert "PRIVATE KEY" not in shown and key_text.splitlines()[1] not in shown
