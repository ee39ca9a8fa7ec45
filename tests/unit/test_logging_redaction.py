"""No NIR, token, key or payload in logs: the redaction processor, tested on captured logs."""

from __future__ import annotations

import json

import pytest
import structlog
from structlog.testing import capture_logs

from gateway.logs import REDACTED, configure_logging, redact, redact_event

NIRS = ["253072B07300470", "2 53 07 2A 073 004 43", "295109912611193"]
TOKEN = "q3Jx1vJ2b0bq9lVd3cM7bWcQy8tq0n1bQ8m1Yw2Zs4A"  # 43 chars base64url
PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize("nir", NIRS)
def test_nir_shapes_are_masked_anywhere_in_a_message(nir: str) -> None:
    assert nir not in redact(f"lookup failed for {nir} today")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nir", "anything"),
        ("beneficiary_token", TOKEN),
        ("facts_summary", "il a menti"),
        ("secret", "s3cr3t"),
        ("payload", {"a": 1}),
        ("private_key", PEM),
    ],
)
def test_sensitive_keys_are_dropped_whatever_they_hold(key: str, value: object) -> None:
    out = redact_event(None, "info", {"event": "x", key: value})
    assert out[key] == REDACTED


def test_nested_values_tokens_and_pem_blocks_are_masked() -> None:
    out = redact_event(None, "info", {"event": "x", "ctx": {"list": [TOKEN, PEM], "token": "t"}})
    dumped = json.dumps(out)
    assert TOKEN not in dumped and "BEGIN PRIVATE KEY" not in dumped
    assert out["ctx"]["token"] == REDACTED


def test_ordinary_fields_survive_redaction() -> None:
    out = redact_event(
        None,
        "info",
        {"event": "call", "method": "/vigie.v1.X/Y", "count": 3, "fingerprint": "ab" * 32},
    )
    assert out == {"event": "call", "method": "/vigie.v1.X/Y", "count": 3, "fingerprint": "ab" * 32}


def test_configured_json_logging_never_prints_a_nir(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "debug")
    structlog.get_logger("t").info("rejected", reason=f"bad nir {NIRS[0]}", nir=NIRS[1])
    err = capsys.readouterr().err
    line = json.loads(err.strip().splitlines()[-1])
    assert line["event"] == "rejected"
    for nir in NIRS[:2]:
        assert nir not in err and nir.replace(" ", "") not in err


def test_capture_logs_sees_what_the_processor_would_mask() -> None:
    # capture_logs bypasses processors: this documents why configure_logging must include ours.
    with capture_logs() as logs:
        structlog.get_logger().info("e", nir=NIRS[0])
    assert redact_event(None, "info", dict(logs[0]))["nir"] == REDACTED


def test_logging_follows_the_current_stderr_not_the_one_at_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sys

    import structlog

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("json", "info")
    first.close()  # e.g. a test's capture that ended
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger("t").info("after_the_stream_changed")
    assert "after_the_stream_changed" in second.getvalue()
