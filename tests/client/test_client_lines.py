"""Claim rows -> ClaimLine messages, CSV/JSONL streaming, backoff arithmetic (no server)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import grpc
import pytest

from gateway._proto.vigie.v1 import claims_pb2, common_pb2
from gateway.client import (
    CLAIM_LINE_FIELDS,
    ClientConfig,
    ClientConfigError,
    FieldViolation,
    FileCursor,
    LocalValidationError,
    ResourceExhaustedError,
    RetryPolicy,
    UnavailableError,
    claim_line_from_mapping,
    read_claim_rows,
)
from gateway.client._lines import UnreadableRow
from gateway.client._retry import retry_delay
from gateway.client._upload import _source_index
from gateway.domain.claims import CLAIM_FIELDS
from gateway.synth import CLAIM_FIELDS as SYNTH_FIELDS

ROW = {
    "member_reference": "L-0000000001",
    "side": "AMO",
    "sector": "audio",
    "beneficiary_token": "A" * 43,
    "birth_year": "1950",
    "provider_rpps": "",
    "provider_am_number": "751234567",
    "provider_finess": "",
    "prescriber_rpps": "10000000008",
    "prescriber_specialty": "orl",
    "prescription_date": "2025-01-02",
    "care_date": "2025-03-04",
    "act_code": "2335674",
    "grouping_code": "AIDE_AUDITIVE",
    "product_class": "I",
    "laterality": "left",
    "tooth": "0",
    "quantity": "1",
    "unit_price_cents": "95000",
    "amount_billed_cents": "95000",
    "amo_base_cents": "40000",
    "amo_paid_cents": "24000",
    "amo_claim_number": "FSE-1",
    "amc_paid_cents": "",
    "amc_reference": "",
}


def test_the_sdk_speaks_the_shared_claim_record() -> None:
    assert CLAIM_LINE_FIELDS == CLAIM_FIELDS == SYNTH_FIELDS


def test_a_csv_row_of_text_becomes_a_typed_claim_line() -> None:
    line = claim_line_from_mapping(ROW)
    assert line.side == claims_pb2.CLAIM_SIDE_AMO and line.sector == common_pb2.SECTOR_AUDIO
    assert (line.birth_year, line.unit_price_cents, line.amc_paid_cents) == (1950, 95000, 0)
    assert (line.care_date.year, line.care_date.month, line.care_date.day) == (2025, 3, 4)
    assert line.HasField("prescription_date")


def test_typed_values_and_absent_optional_fields_are_accepted() -> None:
    row = {k: v for k, v in ROW.items() if v != ""}
    row.update(birth_year=1950, quantity=1, care_date=dt.date(2025, 3, 4))
    del row["prescription_date"]
    line = claim_line_from_mapping(row)
    assert line.quantity == 1 and not line.HasField("prescription_date")


def test_every_unconvertible_field_is_named_with_its_line_index() -> None:
    bad = dict(ROW, quantity="one", care_date="04/03/2025", side="amo", color="red")
    with pytest.raises(LocalValidationError) as e:
        claim_line_from_mapping(bad, index=7)
    assert set(e.value.field_violations) == {
        FieldViolation("lines[7].color", "unknown field"),
        FieldViolation("lines[7].quantity", "must be an integer"),
        FieldViolation("lines[7].care_date", "must be an ISO date YYYY-MM-DD"),
        FieldViolation("lines[7].side", "must be AMO or AMC"),
    }


def test_an_int32_overflow_is_refused_locally_not_truncated() -> None:
    with pytest.raises(LocalValidationError) as e:
        claim_line_from_mapping(dict(ROW, quantity=str(2**31)))
    assert e.value.field_violations == (FieldViolation("quantity", "must fit in 32 bits"),)


def test_jsonl_file_streams_rows_and_flags_unreadable_lines(tmp_path: Path) -> None:
    path = tmp_path / "claims.jsonl"
    path.write_text(json.dumps(ROW) + "\n\n{not json\n[1, 2]\n" + json.dumps(ROW) + "\n")
    rows = list(read_claim_rows(path))
    assert rows[0] == ROW and rows[3] == ROW
    assert rows[1:3] == [
        UnreadableRow("JSONL line: not valid JSON"),
        UnreadableRow("JSONL line: not an object"),
    ]


def test_csv_file_streams_rows_and_checks_the_header(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text(",".join(ROW) + "\n" + ",".join(ROW.values()) + "\n" + "a,b\n")
    rows = list(read_claim_rows(path))
    assert rows[0] == ROW and rows[1] == UnreadableRow("CSV row: wrong number of columns")
    (tmp_path / "bad.csv").write_text("member_reference,colour\nL-1,red\n")
    with pytest.raises(ClientConfigError, match="unknown CSV columns: colour"):
        list(read_claim_rows(tmp_path / "bad.csv"))
    (tmp_path / "claims.txt").write_text("x")
    with pytest.raises(ClientConfigError, match="unknown format"):
        list(read_claim_rows(tmp_path / "claims.txt"))
    with pytest.raises(ClientConfigError, match="file not found"):
        list(read_claim_rows(tmp_path / "absent.csv"))


def test_server_line_indexes_map_back_past_lines_refused_locally() -> None:
    skipped = [0, 3, 4, 9]  # source rows never sent
    sent = [i for i in range(12) if i not in skipped]
    assert [_source_index(s, skipped) for s in range(len(sent))] == sent


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff_s=0.1, max_backoff_s=1.0)
    rng = random.Random(7)
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = {policy.backoff(retry, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1


def test_only_transient_codes_are_retried() -> None:
    policy = RetryPolicy(max_attempts=3)
    unavailable = UnavailableError("down")
    assert retry_delay(unavailable, 1, policy, idempotent=True, deadline_passed=False)
    assert retry_delay(unavailable, 3, policy, idempotent=True, deadline_passed=False) is None
    assert retry_delay(unavailable, 1, policy, idempotent=True, deadline_passed=True) is None
    too_big = ResourceExhaustedError("message larger than max")  # no RetryInfo: a hard limit
    assert retry_delay(too_big, 1, policy, idempotent=True, deadline_passed=False) is None
    for code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INTERNAL,
    ):
        error = UnavailableError("x", code=code)
        assert retry_delay(error, 1, policy, idempotent=True, deadline_passed=False) is None


def test_keepalive_below_the_servers_minimum_is_refused() -> None:
    with pytest.raises(ClientConfigError, match="keepalive_s"):
        ClientConfig(address="h:1", certificate=b"", private_key=b"", ca=b"", keepalive_s=10)
    with pytest.raises(ClientConfigError, match="host:port"):
        ClientConfig(address="nowhere", certificate=b"", private_key=b"", ca=b"")


def test_a_config_never_shows_its_private_key() -> None:
    config = ClientConfig(
        address="gateway:50051",
        certificate=b"-----BEGIN CERTIFICATE-----",
        private_key=b"-----BEGIN PRIVATE KEY-----very-secret",
        ca=b"-----BEGIN CERTIFICATE-----",
    )
    assert "very-secret" not in repr(config) and "gateway:50051" in repr(config)


def test_the_cursor_file_is_replaced_atomically_and_checked_on_load(tmp_path: Path) -> None:
    cursor = FileCursor(tmp_path / "state" / "cursor.json")
    assert cursor.load() is None
    cursor.save(41)
    cursor.save(42)
    assert cursor.load() == 42 and sorted(p.name for p in cursor.path.parent.iterdir()) == [
        "cursor.json"
    ]
    for garbage in ('{"after_sequence": "42"}', "[42]", "{not json", '{"after_sequence": -1}'):
        cursor.path.write_text(garbage)
        with pytest.raises(ClientConfigError, match="cursor file"):
            cursor.load()


def test_config_from_environment_names_what_is_missing() -> None:
    env = {"VIGIE_CLIENT_CERT": "c.crt", "VIGIE_CLIENT_KEY": "c.key"}
    with pytest.raises(ClientConfigError, match="VIGIE_CLIENT_CA"):
        ClientConfig.from_env(env)
    config = ClientConfig.from_env({**env, "VIGIE_CLIENT_CA": "ca.crt"}, timeout=3.0)
    assert (config.address, config.ca, config.timeout) == ("127.0.0.1:50051", "ca.crt", 3.0)
