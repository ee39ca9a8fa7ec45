"""The API contract's own rules, checked on the generated descriptors (docs/adr/0005).

Every request declares its purpose in field 1; every write carries an AIP-155 request id; every
List method paginates (AIP-158); the services' methods are exactly the policy's action list; the
claim line has exactly the shared record's fields; and the generated code is fresh.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.api import field_behavior_pb2, field_info_pb2, resource_pb2
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
)

try:
    from gateway._proto.vigie.v1 import (
        claims_pb2,
        common_pb2,
        journal_pb2,
        members_pb2,
        suspicions_pb2,
    )
except ImportError as exc:  # pragma: no cover - only when the stubs were never generated
    pytest.fail(
        f"gateway/_proto is missing or broken ({exc}); run `make proto` "
        "(.venv/bin/python scripts/gen_proto.py)",
        pytrace=False,
    )

ROOT = Path(__file__).resolve().parent.parent
FILES: tuple[FileDescriptor, ...] = (
    common_pb2.DESCRIPTOR,
    members_pb2.DESCRIPTOR,
    suspicions_pb2.DESCRIPTOR,
    claims_pb2.DESCRIPTOR,
    journal_pb2.DESCRIPTOR,
)

# The shared vocabulary's action list (= gRPC method names = Cedar actions), per service.
ACTIONS: dict[str, tuple[str, ...]] = {
    "MemberService": ("GetSelf", "ListMembers"),
    "SuspicionService": (
        "CreateSuspicion",
        "GetSuspicion",
        "ListSuspicions",
        "TransitionSuspicion",
        "StreamNotifications",
        "AcknowledgeNotification",
    ),
    "ClaimService": ("UploadClaims", "CheckClaim", "ListAlerts", "GetAlert"),
    "JournalService": (
        "ListAccessEvents",
        "ListPersonAccesses",
        "GetCheckpoint",
        "GetInclusionProof",
        "GetConsistencyProof",
        "ExportJournal",
    ),
}
WRITES = ("CreateSuspicion", "TransitionSuspicion", "AcknowledgeNotification", "UploadClaims")

# /tmp/claims-spec.md: the one record shape shared by proto, SDK, synth, files and the domain.
CLAIM_LINE_FIELDS = (
    "member_reference side sector beneficiary_token birth_year provider_rpps provider_am_number "
    "provider_finess prescriber_rpps prescriber_specialty prescription_date care_date act_code "
    "grouping_code product_class laterality tooth quantity unit_price_cents amount_billed_cents "
    "amo_base_cents amo_paid_cents amo_claim_number amc_paid_cents amc_reference"
).split()

# Shared vocabulary: enum value -> domain string.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "Purpose": (
        "fraud_detection",
        "control",
        "complaint",
        "litigation",
        "audit",
        "data_subject_request",
        "operations",
    ),
    "Sector": ("optique", "audio", "dentaire"),
    "AlertLevel": ("none", "low", "medium", "high"),
    "Role": ("submitter", "analyst", "compliance_officer", "operator"),
    "MemberKind": ("amo", "amc"),
    "SuspicionStatus": ("submitted", "qualified", "confirmed", "dismissed", "cleared", "closed"),
    "FraudType": (
        "phantom_complement",
        "amount_mismatch",
        "early_renewal",
        "prescription_invalid",
        "price_above_cap",
        "double_billing_amc",
        "duplicate_item",
        "no_followup",
        "implausible_demography",
        "provider_volume_outlier",
        "class_shift",
        "identity_theft",
        "fictitious_billing",
    ),
}

RESOURCES = {
    "Member": "members/{member}",
    "Suspicion": "suspicions/{suspicion}",
    "Alert": "alerts/{alert}",
    "AccessEvent": "journal/events/{event}",
    "Notification": "members/{member}/notifications/{notification}",
}


def _methods() -> dict[str, tuple[str, MethodDescriptor]]:
    found: dict[str, tuple[str, MethodDescriptor]] = {}
    for file in FILES:
        for service in file.services_by_name.values():
            for method in service.methods:
                assert method.name not in found, f"{method.name} defined twice"
                found[method.name] = (service.name, method)
    return found


METHODS = _methods()


def _behaviours(field: FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def _field(message: Descriptor, name: str) -> FieldDescriptor:
    field = message.fields_by_name.get(name)
    assert field is not None, f"{message.full_name} has no field {name!r}"
    return field


def _enum(name: str) -> EnumDescriptor:
    for file in FILES:
        if name in file.enum_types_by_name:
            return file.enum_types_by_name[name]
    raise AssertionError(f"enum {name} not found")


def _prefix(enum_name: str) -> str:
    snake = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(enum_name))
    return snake.upper() + "_"


def test_services_expose_exactly_the_policy_action_list() -> None:
    by_service: dict[str, tuple[str, ...]] = {}
    for file in FILES:
        for service in file.services_by_name.values():
            by_service[service.name] = tuple(m.name for m in service.methods)
    assert by_service == ACTIONS


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_request_declares_its_purpose_as_required_field_1(method: str) -> None:
    request = METHODS[method][1].input_type
    field = request.fields_by_number.get(1)
    assert field is not None and field.name == "purpose", request.full_name
    assert field.enum_type is not None and field.enum_type.full_name == "vigie.v1.Purpose"
    assert field_behavior_pb2.REQUIRED in _behaviours(field)


@pytest.mark.parametrize("method", WRITES)
def test_every_write_carries_a_required_uuid4_request_id(method: str) -> None:
    request = METHODS[method][1].input_type
    field = _field(request, "request_id")
    assert field.number == 2
    assert field.type == FieldDescriptor.TYPE_STRING
    assert field_behavior_pb2.REQUIRED in _behaviours(field)
    info = field.GetOptions().Extensions[field_info_pb2.field_info]
    assert info.format == field_info_pb2.FieldInfo.UUID4


@pytest.mark.parametrize("method", sorted(m for m in METHODS if m not in WRITES))
def test_reads_carry_no_request_id(method: str) -> None:
    request = METHODS[method][1].input_type
    assert "request_id" not in request.fields_by_name


@pytest.mark.parametrize("method", sorted(m for m in METHODS if m.startswith("List")))
def test_every_list_method_paginates_per_aip_158(method: str) -> None:
    descriptor = METHODS[method][1]
    request, response = descriptor.input_type, descriptor.output_type
    assert _field(request, "page_size").type == FieldDescriptor.TYPE_INT32
    assert _field(request, "page_token").type == FieldDescriptor.TYPE_STRING
    assert _field(response, "next_page_token").type == FieldDescriptor.TYPE_STRING


def test_streaming_shapes_are_as_designed() -> None:
    shapes = {name: (m.client_streaming, m.server_streaming) for name, (_, m) in METHODS.items()}
    streaming = {name: shape for name, shape in shapes.items() if shape != (False, False)}
    assert streaming == {
        "UploadClaims": (True, True),
        "StreamNotifications": (False, True),
        "ExportJournal": (False, True),
    }


def test_claim_line_has_exactly_the_shared_record_fields() -> None:
    fields = [f.name for f in claims_pb2.ClaimLine.DESCRIPTOR.fields]
    assert fields == CLAIM_LINE_FIELDS


def test_claim_line_amounts_are_int64_cents_and_dates_are_google_type_date() -> None:
    for field in claims_pb2.ClaimLine.DESCRIPTOR.fields:
        if field.name.endswith("_cents"):
            assert field.type == FieldDescriptor.TYPE_INT64, field.name
        if field.name.endswith("_date"):
            assert field.message_type.full_name == "google.type.Date", field.name


@pytest.mark.parametrize("enum_name", sorted(VOCABULARY))
def test_enums_map_one_to_one_to_the_shared_vocabulary(enum_name: str) -> None:
    enum = _enum(enum_name)
    prefix = _prefix(enum_name)
    assert enum.values[0].name == prefix + "UNSPECIFIED" and enum.values[0].number == 0
    strings = tuple(v.name.removeprefix(prefix).lower() for v in enum.values[1:])
    assert strings == VOCABULARY[enum_name]


def test_forbidden_purposes_do_not_exist() -> None:
    names = {v.name for v in common_pb2.Purpose.DESCRIPTOR.values}
    for forbidden in ("PRICING", "PREMIUM", "RISK", "SELECTION", "MARKETING"):
        assert not any(forbidden in name for name in names)


@pytest.mark.parametrize(("message", "pattern"), sorted(RESOURCES.items()))
def test_resources_declare_their_aip_122_name_pattern(message: str, pattern: str) -> None:
    descriptor = next(
        f.message_types_by_name[message] for f in FILES if message in f.message_types_by_name
    )
    resource = descriptor.GetOptions().Extensions[resource_pb2.resource]
    assert list(resource.pattern) == [pattern]
    name = _field(descriptor, "name")
    assert field_behavior_pb2.IDENTIFIER in _behaviours(name)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (claims_pb2.ClaimLine, "beneficiary_token"),
        (suspicions_pb2.SuspicionSubject, "beneficiary_token"),
        (journal_pb2.ListPersonAccessesRequest, "beneficiary_token"),
    ],
)
def test_beneficiary_tokens_are_input_only_never_returned(message: Any, field: str) -> None:
    assert field_behavior_pb2.INPUT_ONLY in _behaviours(_field(message.DESCRIPTOR, field))


def test_no_response_message_has_a_token_or_nir_field() -> None:
    outputs = {m.output_type for _, m in METHODS.values()}
    seen: set[str] = set()

    def walk(message: Descriptor) -> None:
        if message.full_name in seen or not message.full_name.startswith("vigie."):
            return
        seen.add(message.full_name)
        for field in message.fields:
            if "nir" in field.name.split("_"):
                raise AssertionError(f"{message.full_name}.{field.name} looks like a NIR")
            if field.name.endswith("_token") and field.name != "next_page_token":
                assert field_behavior_pb2.INPUT_ONLY in _behaviours(field), field.full_name
            if field.message_type is not None:
                walk(field.message_type)

    for output in outputs:
        walk(output)
    assert "vigie.v1.SuspicionSubject" in seen


def test_server_resource_fields_are_output_only() -> None:
    cases: list[tuple[Any, tuple[str, ...]]] = [
        (suspicions_pb2.Suspicion, ("status", "status_history", "create_time", "update_time")),
        (claims_pb2.Alert, ("score", "alert_level", "reasons", "create_time")),
        (journal_pb2.AccessEvent, ("sequence", "event_time", "decision", "leaf_index")),
    ]
    for message, names in cases:
        for name in names:
            field = _field(message.DESCRIPTOR, name)
            assert field_behavior_pb2.OUTPUT_ONLY in _behaviours(field), field.full_name


def test_generated_code_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr + "\nrun `make proto` to regenerate"
