"""First-level pseudonymisation at the member: a NIR never leaves the member's system.

:class:`Pseudonymiser` holds the members' shared key (loaded from an owner-only key file by
:func:`gateway.crypto.load_key_file`) and turns a NIR -- the beneficiary's own, or the holder's
plus the dependent's birth date and rank -- into the 43-character first-level token the API
carries (``docs/adr/0001-pseudonymisation-and-pki.md``, decision 2). The NIR is validated
locally first (:func:`gateway.crypto.validate_nir`: length, alphabet, sex digit, month,
département, key mod 97); a bad one raises :class:`LocalValidationError` naming the field and
the rule, never the value, and nothing is sent.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from gateway._proto.vigie.v1 import claims_pb2, suspicions_pb2
from gateway.client._errors import ClientConfigError, FieldViolation, LocalValidationError
from gateway.crypto import (
    KeyMaterialError,
    SecretKey,
    first_level_token,
    load_key_file,
)
from gateway.errors import InvalidArgumentError as _DomainInvalidArgument
from gateway.ids import Token1

__all__ = ["Pseudonymiser"]


def _local(error: _DomainInvalidArgument, field_prefix: str) -> LocalValidationError:
    violations = [FieldViolation(field_prefix + v.field, v.description) for v in error.violations]
    fields = ", ".join(v.field for v in violations) or field_prefix.rstrip(".")
    return LocalValidationError(
        f"invalid {fields}: {'; '.join(v.description for v in violations)} (not sent)",
        field_violations=violations,
        reason="LOCAL_VALIDATION",
    )


def _date_text(value: dt.date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        raise LocalValidationError(
            "invalid birth_date: must be a date, not a date and time (not sent)",
            field_violations=[FieldViolation("birth_date", "must be a date")],
        )
    return value.isoformat()


class Pseudonymiser:
    """Computes first-level beneficiary tokens under the members' shared key.

    The key never leaves this object: it is not printed, pickled or sent.
    """

    __slots__ = ("_key",)

    def __init__(self, key: SecretKey | bytes) -> None:
        """Wrap the members' shared key (32 bytes or more).

        Raises:
            ClientConfigError: The key is too short.
        """
        try:
            self._key = key if isinstance(key, SecretKey) else SecretKey(key)
        except KeyMaterialError as e:
            raise ClientConfigError(f"members' shared key: {e.message}") from None

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str]) -> Pseudonymiser:
        """Load the members' shared key from its key file (base64, mode 0600).

        Raises:
            ClientConfigError: The file is missing, readable by others, or malformed (the
                message names the file and the rule, never the content).
        """
        try:
            return cls(load_key_file(path))
        except KeyMaterialError as e:
            raise ClientConfigError(e.message) from None

    def token(
        self,
        nir: str,
        *,
        birth_date: dt.date | str | None = None,
        rank: int | None = None,
        field: str = "nir",
    ) -> Token1:
        """The beneficiary's first-level token.

        Args:
            nir: The beneficiary's own NIR, or the holder's ("ouvrant droit") for a dependent;
                spaces and dots are allowed.
            birth_date: The dependent's birth date when ``nir`` is the holder's.
            rank: The dependent's rank 1-9 (tells twins apart); needs ``birth_date``.
            field: The field path errors name (e.g. ``lines[4].nir``).

        Returns:
            43 characters of unpadded base64url.

        Raises:
            LocalValidationError: The NIR, birth date or rank is invalid (nothing was sent).
        """
        try:
            return first_level_token(nir, self._key, birth_date=_date_text(birth_date), rank=rank)
        except _DomainInvalidArgument as e:
            prefix = field.removesuffix("nir") if field.endswith("nir") else f"{field}."
            raise _local(e, prefix) from None

    def subject(
        self,
        nir: str | None = None,
        *,
        birth_date: dt.date | str | None = None,
        rank: int | None = None,
        provider_rpps: str = "",
        provider_am_number: str = "",
        provider_finess: str = "",
    ) -> suspicions_pb2.SuspicionSubject:
        """A suspicion's subject, with the beneficiary token computed from ``nir`` if given.

        Raises:
            LocalValidationError: Invalid NIR, birth date or rank, or an empty subject.
        """
        token = (
            self.token(nir, birth_date=birth_date, rank=rank, field="subject.nir")
            if nir is not None
            else ""
        )
        if not (token or provider_rpps or provider_am_number or provider_finess):
            raise LocalValidationError(
                "invalid subject: name a beneficiary or a provider (not sent)",
                field_violations=[FieldViolation("subject", "at least one field is required")],
            )
        return suspicions_pb2.SuspicionSubject(
            beneficiary_token=token,
            provider_rpps=provider_rpps,
            provider_am_number=provider_am_number,
            provider_finess=provider_finess,
        )

    def fill_claim_line(
        self,
        line: claims_pb2.ClaimLine,
        nir: str,
        *,
        birth_date: dt.date | str | None = None,
        rank: int | None = None,
    ) -> claims_pb2.ClaimLine:
        """Set ``line.beneficiary_token`` from a NIR (in place) and return the line.

        Raises:
            LocalValidationError: Invalid NIR, birth date or rank.
        """
        line.beneficiary_token = self.token(
            nir, birth_date=birth_date, rank=rank, field="claim_line.nir"
        )
        return line

    def tokenise_row(self, row: dict[str, Any], *, index: int | None = None) -> dict[str, Any]:
        """Replace a claim row's ``nir`` (+ ``nir_birth_date``, ``nir_rank``) by its token.

        Rows that already carry ``beneficiary_token`` and no ``nir`` are returned unchanged.

        Raises:
            LocalValidationError: Invalid NIR, birth date or rank, or both a NIR and a token.
        """
        if "nir" not in row:
            return row
        prefix = f"lines[{index}]." if index is not None else ""
        out = dict(row)
        nir = out.pop("nir")
        birth = out.pop("nir_birth_date", None) or None
        raw_rank = out.pop("nir_rank", None)
        if out.get("beneficiary_token"):
            raise LocalValidationError(
                f"invalid {prefix}nir: give a NIR or a beneficiary_token, not both (not sent)",
                field_violations=[FieldViolation(f"{prefix}nir", "conflicts with the token")],
            )
        rank: int | None = None
        if raw_rank not in (None, ""):
            if isinstance(raw_rank, str) and raw_rank.isdigit():
                rank = int(raw_rank)
            elif isinstance(raw_rank, int) and not isinstance(raw_rank, bool):
                rank = raw_rank
            else:
                raise LocalValidationError(
                    f"invalid {prefix}nir_rank: must be an integer 1-9 (not sent)",
                    field_violations=[FieldViolation(f"{prefix}nir_rank", "must be 1-9")],
                )
        if not isinstance(nir, str):
            raise LocalValidationError(
                f"invalid {prefix}nir: must be a string (not sent)",
                field_violations=[FieldViolation(f"{prefix}nir", "must be a string")],
            )
        out["beneficiary_token"] = self.token(
            nir, birth_date=birth, rank=rank, field=f"{prefix}nir"
        )
        return out

    def __repr__(self) -> str:
        return "Pseudonymiser(<members' key>)"

    def __reduce__(self) -> Any:
        raise TypeError("a Pseudonymiser holds a secret key and cannot be pickled")
