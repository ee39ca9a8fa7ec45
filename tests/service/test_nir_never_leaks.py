"""A hostile or careless member puts NIRs where they do not belong: none is stored, logged or
echoed back (DESIGN invariant: no NIR in storage, logs, errors or the journal).

Each named case sends a NIR in one field of a real request over mTLS. Afterwards every table of
the database is dumped and scanned, with the captured log output and every status message and
detail the client received.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from gateway._proto.vigie.v1 import (
    claims_pb2,
    common_pb2,
    journal_pb2,
    journal_pb2_grpc,
    suspicions_pb2,
    suspicions_pb2_grpc,
)
from gateway.server._policy import EnginePolicyHook
from tests.service._status import rich_status
from tests.service._suspicions_service_helpers import suspicion_pb
from tests.service.claims_support import header, pb_line
from tests.service.claims_support import stub as claims_stub
from tests.service.conftest import GatewayEnv, GatewayFactory

# DOMAIN.md §2 vectors, in the shapes a person might type them.
NIRS = ("253072B07300470", "2 53 07 2A 073 004 43", "295109912611193")
CONTROL = common_pb2.PURPOSE_CONTROL


def _suspicions(env: GatewayEnv, member: str) -> Any:
    return suspicions_pb2_grpc.SuspicionServiceStub(env.channel(member))  # type: ignore[no-untyped-call]


async def _create(env: GatewayEnv, **fields: Any) -> Any:
    return await _suspicions(env, "cpam-75").CreateSuspicion(
        suspicions_pb2.CreateSuspicionRequest(
            purpose=CONTROL, request_id=str(uuid.uuid4()), suspicion=suspicion_pb(**fields)
        )
    )


async def _upload(env: GatewayEnv, line: claims_pb2.ClaimLine) -> Any:
    call = claims_stub(env, "cpam-75").UploadClaims()
    await call.write(header(claims_pb2.CLAIM_SIDE_AMO, lines=[line]))
    await call.done_writing()
    return [r async for r in call]


def _cases(nir: str) -> dict[str, Callable[[GatewayEnv], Awaitable[Any]]]:
    return {
        "facts summary": lambda env: _create(env, facts_summary=f"assuré {nir} vu deux fois"),
        "case reference": lambda env: _create(env, case_reference=nir.replace(" ", "")),
        "evidence reference": lambda env: _create(env, evidence_refs=[f"scan-{nir}"]),
        "beneficiary token": lambda env: _create(
            env, subject=suspicions_pb2.SuspicionSubject(beneficiary_token=nir)
        ),
        "claim beneficiary token": lambda env: _upload(
            env, pb_line("lens", "AMO", beneficiary_token=nir)
        ),
        "claim member reference": lambda env: _upload(
            env, pb_line("lens", "AMO", member_reference=nir.replace(" ", ""))
        ),
        "person lookup token": lambda env: journal_pb2_grpc.JournalServiceStub(  # type: ignore[no-untyped-call]
            env.channel("cpam-audit")
        ).ListPersonAccesses(
            journal_pb2.ListPersonAccessesRequest(
                purpose=common_pb2.PURPOSE_DATA_SUBJECT_REQUEST, beneficiary_token=nir
            )
        ),
    }


def _dump(env: GatewayEnv) -> str:
    parts = []
    with env.db.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(
                sa.text(f'select * from "{table}"')
            ):  # names come from the schema
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum()).upper()


@pytest.mark.parametrize("nir", NIRS)
@pytest.mark.parametrize("case", list(_cases(NIRS[0])))
async def test_a_nir_sent_in_any_field_is_never_stored_logged_or_echoed(
    gateway_factory: GatewayFactory, capfd: pytest.CaptureFixture[str], case: str, nir: str
) -> None:
    env = await gateway_factory(policy=EnginePolicyHook.load("current-law"))
    answers: list[str] = []
    try:
        answers.append(repr(await _cases(nir)[case](env)))
    except grpc.aio.AioRpcError as e:
        status = rich_status(e)
        answers.append(f"{e.code()} {e.details()} {status}")
    out, err = capfd.readouterr()
    compact = _digits(nir)
    for where, text in {"answer": "\n".join(answers), "logs": out + err, "db": _dump(env)}.items():
        assert compact not in _digits(text), f"the NIR appears in the {where} ({case})"
