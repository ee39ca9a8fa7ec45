"""The command line: clear one-line errors and exit codes (0 ok, 1 problem found, 2 usage or
configuration, 3 a needed file or service missing), never a traceback for a user's mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        pytest.param([], 2, "COMMAND", id="no-command"),
        pytest.param(["nope"], 2, "invalid choice", id="unknown-command"),
        pytest.param(["pki", "issue", "m1"], 2, "--kind", id="pki-issue-without-kind"),
        pytest.param(["pki", "issue", "m1", "--kind", "XYZ"], 2, "invalid choice", id="bad-kind"),
        pytest.param(["pki", "issue", "m1", "--kind", "AMO", "--dir", "{tmp}/none"], 3,
                     "vigie pki init", id="pki-issue-without-ca"),
        pytest.param(["pki", "revoke", "{tmp}/none.crt", "--dir", "{tmp}"], 3, "not found",
                     id="revoke-missing-certificate"),
        pytest.param(["members", "add", "{tmp}/none.crt", "--roles", "analyst"], 3, "not found",
                     id="members-add-missing-certificate"),
        pytest.param(["policy", "test", "no-such-bundle"], 3, "unknown bundle",
                     id="policy-unknown-bundle"),
        pytest.param(["serve", "--env-file", "{tmp}/none.env"], 3, "settings file not found",
                     id="serve-missing-env-file"),
        pytest.param(["migrate", "--database-url", "mysql://x/y"], 2, "VIGIE_DATABASE_URL",
                     id="migrate-unsupported-database"),
        pytest.param(["health", "--cert", "{tmp}/c", "--key", "{tmp}/k", "--ca", "{tmp}/a"], 3,
                     "cannot read TLS file", id="health-missing-tls-files"),
        pytest.param(["audit", "verify", "{tmp}/none.json", "--vkey", "{vkey}"], 3, "none.json",
                     id="audit-verify-missing-bundle"),
    ],
)  # fmt: skip
def test_bad_arguments_and_missing_files_exit_with_their_code_and_a_clear_message(
    argv: list[str], code: int, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.journal import vkey_for

    vkey = vkey_for("vigie.test/journal", Ed25519PrivateKey.generate().public_key())
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{vkey}", vkey) for a in argv]
    try:
        result = main(argv)
    except SystemExit as e:  # argparse exits itself on usage errors
        result = int(e.code or 0)
    err = capsys.readouterr().err
    assert result == code, err
    assert says in err
    assert "Traceback" not in err


def test_keys_rotate_outside_a_key_ring_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIE_DATA_KEYS", str(tmp_path / "nothing-here"))
    assert main(["keys", "rotate", "data"]) == 3
    assert "not a key ring" in capsys.readouterr().err


def test_help_is_available_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: vigie" in capsys.readouterr().out
