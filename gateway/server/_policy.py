"""The policy decision point of every call (deny by default).

Two moments, one engine:

1. **Method level**, in the pipeline, before the handler runs, for the actions whose resource
   does not depend on stored data (:data:`METHOD_RESOURCES`: who-am-I, the member directory,
   collections, the journal).
2. **Object level**, in the handler, through ``CallContext.authorize`` with the resource's
   attributes and the relation facts the gateway computed (need-to-know). For these actions the
   pipeline refuses to let any response leave unless an allowed decision was recorded
   (fail closed: a handler that forgets to ask answers PERMISSION_DENIED ``default-deny``).

``EnginePolicyHook`` adapts the Cedar engine of ``policy/`` (the policy issue's bundles).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import policy as legal
from gateway.server._context import Decision
from gateway.store import Member

__all__ = ["METHOD_RESOURCES", "DenyAll", "EnginePolicyHook", "PolicyHook"]

# action -> (resource type, resource id) decided by the pipeline; "{self}" is the caller.
METHOD_RESOURCES: Mapping[str, tuple[str, str]] = {
    "GetSelf": ("member", "{self}"),
    "ListMembers": ("collection", "member"),
    "ListSuspicions": ("collection", "suspicion"),
    "StreamNotifications": ("collection", "suspicion"),
    "ListAlerts": ("collection", "alert"),
    "ListAccessEvents": ("collection", "journal_event"),
    "ListPersonAccesses": ("collection", "journal_event"),
    "GetCheckpoint": ("journal", "journal"),
    "GetInclusionProof": ("journal", "journal"),
    "GetConsistencyProof": ("journal", "journal"),
    "ExportJournal": ("journal", "journal"),
}


class PolicyHook(Protocol):
    @property
    def bundle_hash(self) -> str: ...

    def decide(
        self,
        member: Member,
        action: str,
        purpose: str,
        resource_type: str,
        resource_id: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> Decision: ...


class DenyAll:
    """The decision point when no bundle is configured: every call is denied."""

    bundle_hash = ""

    def decide(
        self,
        member: Member,
        action: str,
        purpose: str,
        resource_type: str,
        resource_id: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> Decision:
        return Decision(allowed=False, rule_ids=(legal.DEFAULT_DENY,))


class EnginePolicyHook:
    """Decisions from a loaded Cedar policy bundle (parsed once at start-up)."""

    def __init__(self, engine: legal.PolicyEngine) -> None:
        self.engine = engine

    @classmethod
    def load(cls, bundle: str) -> EnginePolicyHook:
        """Load a shipped bundle by name, or a bundle folder.

        Raises:
            policy.BundleError: unknown, malformed or invalid bundle.
        """
        return cls(legal.PolicyEngine.load(legal.bundle_path(bundle)))

    @property
    def bundle_hash(self) -> str:
        return self.engine.bundle_hash

    def decide(
        self,
        member: Member,
        action: str,
        purpose: str,
        resource_type: str,
        resource_id: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> Decision:
        request = legal.AccessRequest(
            principal=legal.Principal(
                member_id=member.member_id, kind=member.kind, roles=member.roles
            ),
            action=action,
            purpose=purpose,
            resource=legal.Resource(
                type=resource_type, id=resource_id or "-", attributes=dict(attributes or {})
            ),
        )
        d = self.engine.decide(request)
        return Decision(
            allowed=d.allowed,
            rule_ids=d.rule_ids,
            legal_refs=d.legal_refs,
            bundle_hash=d.bundle_hash,
            view=d.view,
        )
