"""``vigie upload``: exit codes and messages for bad arguments, missing files, no gateway."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gateway.cli import main


def _tls(pki: Path, member: str = "mut-alpha") -> list[str]:
    return [
        "--cert",
        str(pki / "members" / f"{member}.crt"),
        "--key",
        str(pki / "members" / f"{member}.key"),
        "--ca",
        str(pki / "ca.crt"),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def claims_file(tmp_path: Path) -> Path:
    path = tmp_path / "claims.jsonl"
    path.write_text('{"member_reference": "L-1"}\n')
    return path


def test_upload_without_side_is_a_usage_error(
    claims_file: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["upload", str(claims_file), *_tls(pki_dir)])
    assert e.value.code == 2
    assert "--side" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--side", "CPAM"], "invalid choice: 'CPAM'"),
        (["--side", "AMC", "--mode", "sometimes"], "invalid choice: 'sometimes'"),
        (["--side", "AMC", "--request-id", "not-a-uuid"], "must be a UUID"),
        (["--side", "AMC", "--batch-size", "0"], "must be at least 1"),
    ],
)
def test_bad_arguments_are_usage_errors(
    claims_file: Path,
    pki_dir: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["upload", str(claims_file), *args, *_tls(pki_dir)])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_claims_file_exits_3(
    tmp_path: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["upload", str(tmp_path / "nope.csv"), "--side", "AMC", *_tls(pki_dir)])
    assert code == 3
    assert "claims file not found" in capsys.readouterr().err


def test_missing_certificate_exits_3(
    claims_file: Path, tmp_path: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _tls(pki_dir)
    args[1] = str(tmp_path / "absent.crt")
    assert main(["upload", str(claims_file), "--side", "AMC", *args]) == 3
    assert "--cert: file not found" in capsys.readouterr().err


def test_missing_tls_arguments_are_a_usage_error(
    claims_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIE_CLIENT_CERT", raising=False)
    assert main(["upload", str(claims_file), "--side", "AMC"]) == 2
    assert "--cert is required (or set VIGIE_CLIENT_CERT)" in capsys.readouterr().err


def test_unknown_file_format_is_a_usage_error(
    tmp_path: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "claims.xlsx"
    path.write_bytes(b"PK")
    address = f"127.0.0.1:{_free_port()}"
    code = main(["upload", str(path), "--side", "AMC", "--address", address, *_tls(pki_dir)])
    assert code == 2
    assert "unknown format" in capsys.readouterr().err


def test_unusable_members_key_file_is_a_usage_error(
    claims_file: Path, tmp_path: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "members.key"
    key.write_text("not base64 of 32 bytes\n")
    key.chmod(0o600)
    code = main(
        ["upload", str(claims_file), "--side", "AMC", "--members-key", str(key), *_tls(pki_dir)]
    )
    assert code == 2
    assert "not one line of base64" in capsys.readouterr().err


def test_unreachable_gateway_exits_3(
    claims_file: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    code = main(
        [
            *("upload", str(claims_file), "--side", "AMC", "--address", address),
            *("--no-progress", *_tls(pki_dir)),
        ]
    )
    assert code == 3
    assert f"gateway unreachable at {address}" in capsys.readouterr().err
