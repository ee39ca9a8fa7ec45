"""The policy layer's vocabulary and its request/decision models.

The strings here are the shared vocabulary of the whole project (see the common brief): member
kinds, roles, purposes, actions (= gRPC method names, also the Cedar action ids) and suspicion
statuses. Resource types are the policy layer's own names for what an action touches; each maps
to one Cedar entity type in ``schema.cedarschema``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = [
    "ACTIONS",
    "DEFAULT_DENY",
    "EVALUATION_ERROR",
    "INVARIANTS",
    "KINDS",
    "PURPOSES",
    "RELATION_FACTS",
    "RESOURCE_TYPES",
    "RETENTION_CATEGORIES",
    "ROLES",
    "STATUSES",
    "VIEW_RESOURCE_TYPES",
    "AccessRequest",
    "AttributeValue",
    "Decision",
    "MemberKind",
    "Principal",
    "Resource",
]

MemberKind = Literal["AMO", "AMC"]
KINDS: frozenset[str] = frozenset({"AMO", "AMC"})
ROLES: frozenset[str] = frozenset({"submitter", "analyst", "compliance_officer", "operator"})
PURPOSES: frozenset[str] = frozenset(
    {
        "fraud_detection",
        "control",
        "complaint",
        "litigation",
        "audit",
        "data_subject_request",
        "operations",
    }
)
ACTIONS: frozenset[str] = frozenset(
    {
        "GetSelf",
        "ListMembers",
        "CreateSuspicion",
        "GetSuspicion",
        "ListSuspicions",
        "TransitionSuspicion",
        "StreamNotifications",
        "AcknowledgeNotification",
        "UploadClaims",
        "CheckClaim",
        "ListAlerts",
        "GetAlert",
        "ListAccessEvents",
        "ListPersonAccesses",
        "GetCheckpoint",
        "GetInclusionProof",
        "GetConsistencyProof",
        "ExportJournal",
    }
)
STATUSES: tuple[str, ...] = (
    "submitted",
    "qualified",
    "confirmed",
    "dismissed",
    "cleared",
    "closed",
)

#: Policy resource type -> Cedar entity type (declared in every bundle's schema).
RESOURCE_TYPES: dict[str, str] = {
    "member": "MemberRecord",
    "collection": "Collection",
    "suspicion": "Suspicion",
    "alert": "Alert",
    "claim_batch": "ClaimBatch",
    "claim_check": "ClaimCheck",
    "journal_event": "JournalEvent",
    "journal": "Journal",
}

#: Resource types that carry personal fields and therefore have minimisation views.
VIEW_RESOURCE_TYPES: frozenset[str] = frozenset(
    {"suspicion", "alert", "claim_check", "journal_event", "member"}
)

#: Object-level relation facts the gateway computes for (principal, resource). They go to the
#: Cedar ``context``; a fact the gateway leaves out counts as ``False`` (fail closed).
RELATION_FACTS: frozenset[str] = frozenset(
    {
        "principal_covers_beneficiary",
        "principal_paid_provider",
        "principal_is_submitter",
        "principal_is_recipient",
        "principal_is_actor",
    }
)

#: Retention categories every bundle must set (DOMAIN.md section 1, retention table).
RETENTION_CATEGORIES: frozenset[str] = frozenset(
    {
        "alert_not_qualified",
        "not_relevant_or_cleared",
        "closed_without_action",
        "final_decision",
        "presumed_fraudster_list",
        "access_logs",
    }
)

#: Properties a bundle may promise in ``bundle.yaml`` (``invariants:``), checked by
#: ``policy.testing`` on every test case and by the property tests.
INVARIANTS: frozenset[str] = frozenset(
    {"view_within_declared", "amc_need_to_know", "amc_to_amo_closed"}
)

#: Rule id reported when no permit policy matched (or the request names no known action/purpose).
DEFAULT_DENY = "default-deny"
#: Rule id reported when Cedar reported an error: the request is denied whatever else matched.
EVALUATION_ERROR = "evaluation-error"

AttributeValue = StrictStr | StrictInt | StrictBool

_FROZEN = ConfigDict(frozen=True, extra="forbid", strict=True)


class Principal(BaseModel):
    """The authenticated member making the call (from its mTLS certificate and the registry)."""

    model_config = _FROZEN

    member_id: str = Field(min_length=1, max_length=200)
    kind: MemberKind
    roles: frozenset[str]


class Resource(BaseModel):
    """What the action touches.

    ``type`` is one of :data:`RESOURCE_TYPES`. ``attributes`` holds the resource's own attributes
    (for a suspicion: ``submitter_member``, ``submitter_kind``, ``status``, ``sector``,
    ``estimated_amount_cents``) and the relation facts of :data:`RELATION_FACTS`, which the
    gateway computes from its stores.
    """

    model_config = _FROZEN

    type: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=200)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class AccessRequest(BaseModel):
    """One access decision to make: who, does what, to what, for which declared purpose.

    ``action`` and ``purpose`` are plain strings on purpose: an unknown value is a bad request
    that the engine denies (rule ``default-deny``) rather than a crash.
    """

    model_config = _FROZEN

    principal: Principal
    action: str = Field(min_length=1, max_length=64)
    purpose: str = Field(min_length=1, max_length=64)
    resource: Resource


class Decision(BaseModel):
    """The outcome of one access decision, recorded in the journal with the bundle's hash.

    Attributes:
        allowed: whether the request may proceed.
        rule_ids: ids of the deciding Cedar policies (``@id``), or ``("default-deny",)`` /
            ``("evaluation-error",)``.
        legal_refs: the ``@legal_ref`` of each deciding policy, in the same order.
        view: field names the response may carry (empty when denied).
        bundle_name: name of the bundle that decided.
        bundle_hash: SHA-256 (hex) of the bundle folder.
        errors: data-free descriptions of what went wrong, if anything.
    """

    model_config = _FROZEN

    allowed: bool
    rule_ids: tuple[str, ...]
    legal_refs: tuple[str, ...]
    view: frozenset[str]
    bundle_name: str
    bundle_hash: str
    errors: tuple[str, ...] = ()
