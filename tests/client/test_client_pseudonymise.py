"""A NIR never leaves the member: validated and pseudonymised locally, absent from the wire."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.client import (
    ClientConfigError,
    FieldViolation,
    LocalValidationError,
    Pseudonymiser,
    VigieClient,
)
from gateway.crypto import first_level_token, load_key_file
from tests.client._recorder import RecordingGateway
from tests.client.conftest import client_config

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "pseudonym" / "vectors.json").read_text()
)
NIR = "253072B07300470"  # DOMAIN.md test vector (Corsica, key 70)
NIR_SPACED = "2 53 07 2B 073 004 70"
BAD_KEY_NIR = "253072B07300471"  # one digit off: checksum fails
BIRTH = "2011-05-04"


def _line(**overrides: object) -> dict[str, object]:
    line: dict[str, object] = {
        "member_reference": "L-1",
        "side": "AMC",
        "sector": "optique",
        "birth_year": 1953,
        "provider_am_number": "751234567",
        "prescriber_rpps": "10000000008",
        "prescription_date": "2025-01-10",
        "care_date": "2025-02-01",
        "act_code": "2203240",
        "grouping_code": "MONTURE",
        "product_class": "A",
        "quantity": 1,
        "unit_price_cents": 3000,
        "amount_billed_cents": 3000,
        "amc_paid_cents": 2100,
        "amc_reference": "DRE-1",
    }
    line.update(overrides)
    return line


@pytest.fixture
async def recorder(pki_dir: Path) -> AsyncIterator[RecordingGateway]:
    gw = RecordingGateway(pki_dir)
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def recorded_client(
    recorder: RecordingGateway, pki_dir: Path, members_key: Path
) -> AsyncIterator[VigieClient]:
    client = VigieClient(
        client_config(pki_dir, recorder.target, member="cpam-75"),
        pseudonymiser=Pseudonymiser.from_key_file(members_key),
    )
    yield client
    await client.close()


def _absent(wire: bytes, *secrets: str) -> None:
    for secret in secrets:
        for form in {secret, secret.replace(" ", ""), secret.lower()}:
            assert form.encode() not in wire, "a NIR (or birth date) crossed the wire"


# -- the token -------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["case"])
def test_sdk_tokens_match_the_shared_vectors(vector: dict[str, object]) -> None:
    pseudo = Pseudonymiser(bytes.fromhex(str(VECTORS["members_key_hex"])))
    token = pseudo.token(
        str(vector["nir"]),
        birth_date=vector["birth_date"],  # type: ignore[arg-type]
        rank=vector["rank"],  # type: ignore[arg-type]
    )
    assert token == vector["token1"]


def test_spaces_and_case_do_not_change_the_token(members_key: Path) -> None:
    pseudo = Pseudonymiser.from_key_file(members_key)
    assert pseudo.token(NIR_SPACED.lower()) == pseudo.token(NIR)
    assert pseudo.token(NIR) == first_level_token(NIR, load_key_file(members_key))


def test_dependents_and_twins_get_distinct_tokens(members_key: Path) -> None:
    pseudo = Pseudonymiser.from_key_file(members_key)
    tokens = {
        pseudo.token(NIR),
        pseudo.token(NIR, birth_date=BIRTH),
        pseudo.token(NIR, birth_date=BIRTH, rank=1),
        pseudo.token(NIR, birth_date=BIRTH, rank=2),
    }
    assert len(tokens) == 4


@pytest.mark.parametrize(
    ("nir", "rule"),
    [
        (BAD_KEY_NIR, "checksum: the key does not match"),
        ("25307", "length: must be 15 characters"),
        ("353072B07300470", "sex digit: must be 1, 2, 5, 6, 7 or 8"),
        ("2530X2B07300470", "format: digits only, except 2A/2B for Corsica at positions 6-7"),
    ],
)
def test_an_invalid_nir_is_refused_locally_naming_the_rule_never_the_value(
    members_key: Path, nir: str, rule: str
) -> None:
    with pytest.raises(LocalValidationError) as e:
        Pseudonymiser.from_key_file(members_key).token(nir, field="subject.nir")
    assert e.value.field_violations == (FieldViolation("subject.nir", rule),)
    assert nir not in str(e.value) and nir[:10] not in str(e.value)


def test_rank_without_birth_date_is_refused_locally(members_key: Path) -> None:
    with pytest.raises(LocalValidationError) as e:
        Pseudonymiser.from_key_file(members_key).token(NIR, rank=2)
    assert e.value.field_violations == (FieldViolation("rank", "requires birth_date"),)


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path, members_key: Path) -> None:
    os.chmod(members_key, 0o644)
    with pytest.raises(ClientConfigError, match="chmod 600"):
        Pseudonymiser.from_key_file(members_key)
    with pytest.raises(ClientConfigError, match="cannot open"):
        Pseudonymiser.from_key_file(tmp_path / "absent.key")


def test_the_pseudonymiser_never_shows_or_pickles_its_key(members_key: Path) -> None:
    import pickle

    pseudo = Pseudonymiser.from_key_file(members_key)
    material = members_key.read_text().strip()
    assert material not in repr(pseudo)
    with pytest.raises(TypeError):
        pickle.dumps(pseudo)


# -- what crosses the wire ----------------------------------------------------------------------


async def test_nir_never_sent_when_submitting_a_suspicion(
    recorder: RecordingGateway, recorded_client: VigieClient, members_key: Path
) -> None:
    await recorded_client.submit_suspicion(
        purpose="control",
        sector="optique",
        fraud_type="fictitious_billing",
        facts_summary="billing pattern under review",
        estimated_amount_cents=12000,
        nir=NIR_SPACED,
        birth_date=BIRTH,
        rank=1,
    )
    [(method, raw)] = recorder.requests
    assert method == "CreateSuspicion"
    _absent(raw, NIR, NIR_SPACED, BIRTH)
    token = Pseudonymiser.from_key_file(members_key).token(NIR, birth_date=BIRTH, rank=1)
    assert token.encode() in raw  # the token, and only the token, names the person


async def test_nir_never_sent_in_check_claim_upload_or_person_accesses(
    recorder: RecordingGateway, recorded_client: VigieClient
) -> None:
    await recorded_client.check_claim(_line(), nir=NIR)
    rows = [_line(member_reference=f"L-{i}", nir=NIR_SPACED) for i in range(3)]
    result = await recorded_client.upload_claims(rows, side="AMC")
    assert result.lines_sent == 3
    await recorded_client.list_person_accesses(NIR)
    methods = [m for m, _ in recorder.requests]
    assert methods == ["CheckClaim", "UploadClaims", "ListPersonAccesses"]
    _absent(recorder.wire(), NIR, NIR_SPACED)


async def test_invalid_nir_sends_nothing_at_all(
    recorder: RecordingGateway, recorded_client: VigieClient
) -> None:
    with pytest.raises(LocalValidationError) as e:
        await recorded_client.submit_suspicion(
            purpose="control",
            sector="optique",
            fraud_type="fictitious_billing",
            facts_summary="x",
            estimated_amount_cents=1,
            nir=BAD_KEY_NIR,
        )
    assert e.value.field_violations == (
        FieldViolation("subject.nir", "checksum: the key does not match"),
    )
    with pytest.raises(LocalValidationError):
        await recorded_client.list_person_accesses(BAD_KEY_NIR)
    with pytest.raises(LocalValidationError):
        await recorded_client.check_claim(_line(), nir=BAD_KEY_NIR)
    assert recorder.requests == []


async def test_a_nir_column_without_the_members_key_is_refused_not_sent(
    recorder: RecordingGateway, pki_dir: Path
) -> None:
    client = VigieClient(client_config(pki_dir, recorder.target, member="mut-alpha"))
    try:
        result = await client.upload_claims([_line(nir=NIR)], side="AMC")
        with pytest.raises(ClientConfigError, match="Pseudonymiser"):
            await client.list_person_accesses(NIR)
    finally:
        await client.close()
    assert result.lines_sent == 0 and result.lines_rejected == 1
    [rejection] = result.rejections
    assert rejection.local and rejection.field_violations == (
        FieldViolation("lines[0].nir", "no pseudonymisation key"),
    )
    _absent(recorder.wire(), NIR)
