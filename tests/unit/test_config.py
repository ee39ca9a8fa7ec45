"""Configuration is validated at start-up with messages naming the setting, never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings


def test_defaults_are_the_embedded_sqlite_store() -> None:
    s = load_settings()
    assert s.database_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"database_url": "mysql://x/y"}, "VIGIE_DATABASE_URL"),
        ({"database_url": "::not a url::"}, "VIGIE_DATABASE_URL"),
        ({"listen": "nowhere"}, "VIGIE_LISTEN"),
        ({"rate_limit_per_s": 0}, "VIGIE_RATE_LIMIT_PER_S"),
        ({"unknown_setting": 1}, "VIGIE_UNKNOWN_SETTING"),
    ],
)
def test_bad_setting_is_named_in_the_error(override: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_settings(**override)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_DATABASE_URL", "postgresql://u@h/db")
    assert load_settings().database_url == "postgresql://u@h/db"


def test_missing_certificate_files_are_listed(tmp_path: Path) -> None:
    s = load_settings(
        server_cert=tmp_path / "nope.crt",
        server_key=tmp_path / "nope.key",
        client_ca=tmp_path / "ca.crt",
        crl=tmp_path / "crl.pem",
    )
    with pytest.raises(ConfigError) as e:
        s.check_files()
    for name in ("VIGIE_SERVER_CERT", "VIGIE_SERVER_KEY", "VIGIE_CLIENT_CA", "VIGIE_CRL"):
        assert name in str(e.value)
