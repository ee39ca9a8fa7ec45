"""Typed errors: every status maps to its class with the google.rpc details the server packed."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from gateway import errors as server_errors
from gateway import pki
from gateway.client import (
    AlreadyExistsError,
    ClientConfig,
    ClientConfigError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RetryPolicy,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    VigieClient,
    VigieClientError,
    error_from_rpc,
)
from gateway.server._errors import to_rpc_status
from tests.client.conftest import Sdk

# -- the mapping itself, from exactly what the server packs -------------------------------------

CASES = [
    (
        server_errors.InvalidArgumentError(
            "invalid claim line",
            [server_errors.FieldViolation("lines[0].tooth", "required for a dental prosthesis")],
        ),
        InvalidArgumentError,
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    (
        server_errors.PermissionDeniedError(
            "denied", rule_ids=("cl-no-amc-to-amo-report",), legal_refs=("CSS L.114-9",)
        ),
        PermissionDeniedError,
        grpc.StatusCode.PERMISSION_DENIED,
    ),
    (server_errors.NotFoundError("suspicion not found"), NotFoundError, grpc.StatusCode.NOT_FOUND),
    (server_errors.AlreadyExistsError("x"), AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (
        server_errors.UnauthenticatedError("revoked", reason="CERT_REVOKED"),
        UnauthenticatedError,
        grpc.StatusCode.UNAUTHENTICATED,
    ),
    (
        server_errors.FailedPreconditionError("bad transition"),
        FailedPreconditionError,
        grpc.StatusCode.FAILED_PRECONDITION,
    ),
    (
        server_errors.ResourceExhaustedError("slow down", reason="RATE_LIMITED"),
        ResourceExhaustedError,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
    (
        server_errors.UnavailableError("journal down", reason="JOURNAL_UNAVAILABLE"),
        UnavailableError,
        grpc.StatusCode.UNAVAILABLE,
    ),
    (NotImplementedError(), UnimplementedError, grpc.StatusCode.UNIMPLEMENTED),
    (RuntimeError("boom"), InternalError, grpc.StatusCode.INTERNAL),
]


def _rpc_error(error: BaseException) -> grpc.aio.AioRpcError:
    status = to_rpc_status(error)
    code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=status.message)


@pytest.mark.parametrize(("server_error", "cls", "code"), CASES, ids=lambda v: type(v).__name__)
def test_each_status_maps_to_its_error_class(
    server_error: BaseException, cls: type[VigieClientError], code: grpc.StatusCode
) -> None:
    error = error_from_rpc(_rpc_error(server_error))
    assert type(error) is cls and error.code == code
    if isinstance(server_error, server_errors.VigieError):
        assert error.reason == server_error.reason and error.domain == "vigie.gateway"
        assert error.message == server_error.message


def test_invalid_argument_carries_the_field_violations() -> None:
    error = error_from_rpc(_rpc_error(CASES[0][0]))
    assert isinstance(error, InvalidArgumentError)
    assert error.field_violations == (
        FieldViolation("lines[0].tooth", "required for a dental prosthesis"),
    )


def test_permission_denied_carries_rule_ids_and_legal_refs() -> None:
    error = error_from_rpc(_rpc_error(CASES[1][0]))
    assert isinstance(error, PermissionDeniedError)
    assert error.rule_ids == ("cl-no-amc-to-amo-report",)
    assert error.legal_refs == ("CSS L.114-9",)


def test_resource_exhausted_carries_retry_after_from_retry_info() -> None:
    error = error_from_rpc(_rpc_error(CASES[6][0]))
    assert isinstance(error, ResourceExhaustedError) and error.retry_after == 1.0


def test_status_without_details_still_maps_by_code() -> None:
    bare = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata(), "too big"
    )
    error = error_from_rpc(bare)
    assert isinstance(error, ResourceExhaustedError)
    assert error.retry_after is None and error.reason == "" and error.message == "too big"


def test_garbled_status_details_do_not_hide_the_code() -> None:
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", b"\xff\xfe not a status"))
    error = error_from_rpc(
        grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), trailing, "gone")
    )
    assert isinstance(error, NotFoundError) and error.message == "gone"


# -- against the real gateway over mTLS -----------------------------------------------------------


async def test_policy_denial_is_permission_denied_with_the_deciding_rule(sdk: Sdk) -> None:
    client = sdk.client("mut-alpha")
    with pytest.raises(PermissionDeniedError) as e:
        await client.get_self(purpose="litigation")
    assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert e.value.reason == "POLICY_DENIED" and e.value.rule_ids == ("default-deny",)
    assert sdk.retries == []  # never retried


async def test_a_bad_page_token_is_invalid_argument_naming_the_field(sdk: Sdk) -> None:
    client = sdk.client("cpam-75")
    with pytest.raises(InvalidArgumentError) as e:
        await client.list_members(page_token="forged-token")
    assert [v.field for v in e.value.field_violations] == ["page_token"]
    assert sdk.retries == []


async def test_an_undeclared_purpose_is_invalid_argument_on_field_purpose(sdk: Sdk) -> None:
    client = sdk.client("cpam-75")
    with pytest.raises(InvalidArgumentError) as e:
        await client.get_self(purpose=0)  # PURPOSE_UNSPECIFIED
    assert e.value.field_violations == (
        FieldViolation("purpose", "a declared purpose is required"),
    )


async def test_revoked_certificate_is_unauthenticated_with_reason(
    sdk_factory: object, tmp_path: Path
) -> None:
    d = tmp_path / "pki"
    pki.init_ca(d)
    for member_id, kind in (
        ("mut-alpha", "AMC"),
        ("cpam-75", "AMO"),
        ("mut-beta", "AMC"),
        ("cpam-audit", "AMO"),
    ):
        pki.issue_member(d, member_id, kind, ["analyst"])
    sdk: Sdk = await sdk_factory(pki=d)  # type: ignore[operator]
    client = sdk.client("mut-beta")
    assert (await client.get_self()).name == "members/mut-beta"
    pki.revoke(d, d / "members" / "mut-beta.crt")
    with pytest.raises(UnauthenticatedError) as e:
        await client.get_self()
    assert e.value.reason == "CERT_REVOKED"
    assert sdk.retries == []


async def test_unregistered_member_is_unauthenticated_unknown_member(sdk: Sdk) -> None:
    pki.issue_member(sdk.env.pki_dir, "mut-unknown", "AMC", ["analyst"], replace=True)
    with pytest.raises(UnauthenticatedError) as e:
        await sdk.client("mut-unknown").get_self()
    assert e.value.reason == "UNKNOWN_MEMBER"


async def test_rate_limit_is_resource_exhausted_with_retry_after(
    sdk_factory: object,
) -> None:
    sdk: Sdk = await sdk_factory(rate_limit_per_s=0.001, rate_limit_burst=1)  # type: ignore[operator]
    client = sdk.client("mut-alpha", retry=RetryPolicy(max_attempts=1))
    await client.get_self()
    with pytest.raises(ResourceExhaustedError) as e:
        await client.get_self()
    assert e.value.reason == "RATE_LIMITED" and e.value.retry_after == 1.0


async def test_journal_down_is_unavailable_after_bounded_retries(sdk: Sdk) -> None:
    with sdk.env.db.engine.begin() as conn:
        conn.execute(sa.text("alter table journal_personal rename to journal_personal_gone"))
    client = sdk.client("mut-alpha")
    with pytest.raises(UnavailableError) as e:
        await client.get_self()
    assert e.value.reason == "JOURNAL_UNAVAILABLE"
    policy = client.config.retry
    assert [r.attempt for r in sdk.retries] == list(range(1, policy.max_attempts))
    assert {r.error.reason for r in sdk.retries} == {"JOURNAL_UNAVAILABLE"}


async def test_unreachable_gateway_is_unavailable(sdk: Sdk) -> None:
    await sdk.env.gateway.stop(grace=0)
    with pytest.raises(UnavailableError):
        await sdk.client("mut-alpha", timeout=5).get_self()


async def test_a_passed_deadline_is_deadline_exceeded_and_not_retried(sdk: Sdk) -> None:
    client = sdk.client("mut-alpha")
    with pytest.raises(DeadlineExceededError):
        await client.get_self(timeout=1e-6)
    assert sdk.retries == []


async def test_wrong_ca_certificate_file_is_a_client_config_error(tmp_path: Path, sdk: Sdk) -> None:
    (tmp_path / "ca.crt").write_text("not a certificate")
    with pytest.raises(ClientConfigError, match=r"CA certificate .*not PEM"):
        ClientConfig(
            address=sdk.env.target,
            certificate=sdk.env.pki_dir / "members" / "mut-alpha.crt",
            private_key=sdk.env.pki_dir / "members" / "mut-alpha.key",
            ca=tmp_path / "ca.crt",
        ).credentials()
    with pytest.raises(ClientConfigError, match=r"private key .*file not found"):
        VigieClient(
            ClientConfig(
                address=sdk.env.target,
                certificate=sdk.env.pki_dir / "members" / "mut-alpha.crt",
                private_key=tmp_path / "missing.key",
                ca=sdk.env.pki_dir / "ca.crt",
            )
        )
