"""The suspicion exchange: validated drafts, storage, lifecycle, distribution and retraction.

Public face of :mod:`gateway.domain._suspicion_model` (pure rules),
:mod:`gateway.domain._suspicion_records` (suspicions at rest) and
:mod:`gateway.domain._suspicion_exchange` (outbox). No gRPC here: a service handler calls these
inside the one transaction that also writes its journal event, after asking the policy.

Typical handler flow (the policy decides first, always)::

    draft = parse_suspicion_draft(values)                        # INVALID_ARGUMENT
    s = create_suspicion(session, draft, member, rekeyer, envelope, now)
    facts = relation_facts(session, s, member.member_id)          # -> Cedar context
    s, t, notified = apply_transition(session, s.id, "qualified", member, reason,
                                      engine=engine, members=members, envelope=envelope, now=now)
"""

from gateway.domain._suspicion_exchange import (
    DISTRIBUTION_ACTION,
    NOTIFICATION_KINDS,
    Notification,
    NotificationKind,
    acknowledge,
    apply_transition,
    distribute,
    enqueue_notification,
    notification_of,
    notifications_after,
    resume_position,
    retract,
)
from gateway.domain._suspicion_levels import (
    ALERT_LEVEL_ORDER,
    suspicion_alert_level,
    suspicion_expiry,
)
from gateway.domain._suspicion_model import (
    ERASED_STATUSES,
    FRAUD_TYPES,
    MAX_ESTIMATED_AMOUNT_CENTS,
    OPEN_STATUSES,
    RETRACTING_STATUSES,
    SUSPICION_STATUSES,
    TRANSITIONS,
    FraudType,
    Suspicion,
    SuspicionDraft,
    SuspicionStatus,
    SuspicionSubject,
    Transition,
    check_case_reference,
    new_opaque_id,
    parse_suspicion_draft,
    transition,
)
from gateway.domain._suspicion_records import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MaySee,
    RelationFacts,
    create_suspicion,
    declare_coverage,
    get_suspicion,
    list_suspicions,
    minimised_view,
    open_evidence,
    open_facts,
    own_reference,
    relation_facts,
    suspicion_view,
    transition_suspicion,
    transitions_of,
    withdraw_coverage,
)

__all__ = [
    "ALERT_LEVEL_ORDER",
    "DEFAULT_PAGE_SIZE",
    "DISTRIBUTION_ACTION",
    "ERASED_STATUSES",
    "FRAUD_TYPES",
    "MAX_ESTIMATED_AMOUNT_CENTS",
    "MAX_PAGE_SIZE",
    "NOTIFICATION_KINDS",
    "OPEN_STATUSES",
    "RETRACTING_STATUSES",
    "SUSPICION_STATUSES",
    "TRANSITIONS",
    "FraudType",
    "MaySee",
    "Notification",
    "NotificationKind",
    "RelationFacts",
    "Suspicion",
    "SuspicionDraft",
    "SuspicionStatus",
    "SuspicionSubject",
    "Transition",
    "acknowledge",
    "apply_transition",
    "check_case_reference",
    "create_suspicion",
    "declare_coverage",
    "distribute",
    "enqueue_notification",
    "get_suspicion",
    "list_suspicions",
    "minimised_view",
    "new_opaque_id",
    "notification_of",
    "notifications_after",
    "open_evidence",
    "open_facts",
    "own_reference",
    "parse_suspicion_draft",
    "relation_facts",
    "resume_position",
    "retract",
    "suspicion_alert_level",
    "suspicion_expiry",
    "suspicion_view",
    "transition",
    "transition_suspicion",
    "transitions_of",
    "withdraw_coverage",
]
