"""The policy engine: Cedar decisions plus the bundle's views, threshold and retention.

A decision follows these steps (numbers are cited in the code):

1. Vocabulary: an action, purpose or resource type the bundle does not know is denied with rule
   ``default-deny`` without consulting Cedar (deny by default).
2. Request: the principal and resource become two Cedar entities; the relation facts the gateway
   computed (:data:`~policy.RELATION_FACTS`, default ``False``), the purpose and two facts the
   engine derives (``resource_is_principal``, ``sharing_threshold_met``) form the context.
3. Cedar evaluates the pre-parsed policy set against the pre-parsed schema: the request and the
   entities are validated, forbid overrides permit, no permit means deny.
4. Any error reported by Cedar denies (rule ``evaluation-error``), even if Cedar said Allow: Cedar
   skips a policy whose evaluation fails, so an erroring forbid would otherwise be ignored.
5. An allowed request gets the bundle's minimisation view for (resource type, principal kind,
   purpose); a denied one gets an empty view.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cedarpy

from policy._bundle import Bundle, SharingThreshold, load_bundle
from policy._errors import EvaluationError
from policy._model import (
    ACTIONS,
    DEFAULT_DENY,
    EVALUATION_ERROR,
    RELATION_FACTS,
    RESOURCE_TYPES,
    AccessRequest,
    Decision,
)

__all__ = ["PolicyEngine"]

_STATUS_RANK = {"submitted": 0, "qualified": 1, "confirmed": 2}
_POLICY_ERROR = re.compile(r"error while evaluating policy `([^`]+)`")
_ATTRIBUTE = re.compile(r"attribute `([A-Za-z_][A-Za-z0-9_]*)`")


class PolicyEngine:
    """Decides access requests under one loaded bundle. Immutable and thread-safe."""

    def __init__(self, bundle: Bundle) -> None:
        """Wrap an already loaded bundle; most callers want :meth:`load`."""
        self._bundle = bundle
        m = bundle.manifest
        self._purposes = frozenset(p.name for p in m.purposes)
        self._views: dict[tuple[str, str, str], frozenset[str]] = {
            (rtype, kind, purpose): frozenset(fields)
            for rtype, by_kind in m.views.items()
            for kind, by_purpose in by_kind.items()
            for purpose, fields in by_purpose.items()
        }

    @classmethod
    def load(cls, path: str | Path) -> PolicyEngine:
        """Load and validate the bundle folder at ``path`` (parsed once, here).

        Raises:
            BundleError: the bundle is missing a file, malformed, or fails validation.
        """
        return cls(load_bundle(Path(path)))

    @property
    def bundle(self) -> Bundle:
        """The loaded bundle."""
        return self._bundle

    @property
    def bundle_name(self) -> str:
        """The bundle's name (its folder name)."""
        return self._bundle.name

    @property
    def bundle_hash(self) -> str:
        """SHA-256 (hex) of the bundle folder, recorded with every decision."""
        return self._bundle.content_hash

    @property
    def purposes(self) -> frozenset[str]:
        """The purposes this bundle recognises."""
        return self._purposes

    @property
    def sharing_threshold(self) -> SharingThreshold:
        """When a suspicion may be distributed (minimum status and estimated amount)."""
        return self._bundle.manifest.sharing_threshold

    def retention(self, category: str) -> dt.timedelta:
        """How long data of ``category`` (see :data:`~policy.RETENTION_CATEGORIES`) is kept.

        Raises:
            EvaluationError: the category is not one the bundle defines (a programming error).
        """
        spec = self._bundle.manifest.retention.get(category)
        if spec is None:
            raise EvaluationError(f"unknown retention category {category!r}")
        return dt.timedelta(days=spec.days)

    def view(self, resource_type: str, recipient_kind: str, purpose: str) -> frozenset[str]:
        """Field names a recipient of ``recipient_kind`` may receive for ``purpose``.

        Unknown combinations have an empty view: nothing may be disclosed.
        """
        return self._views.get((resource_type, recipient_kind, purpose), frozenset())

    def minimise(
        self,
        resource_type: str,
        recipient_kind: str,
        purpose: str,
        fields: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Drop every field outside the view for (resource type, recipient kind, purpose)."""
        allowed = self.view(resource_type, recipient_kind, purpose)
        return {k: v for k, v in fields.items() if k in allowed}

    def threshold_met(self, attributes: Mapping[str, object]) -> bool:
        """Whether a suspicion with these attributes reached the bundle's sharing threshold."""
        t = self.sharing_threshold
        status = attributes.get("status")
        amount = attributes.get("estimated_amount_cents")
        if not isinstance(status, str) or status not in _STATUS_RANK:
            return False  # terminal statuses are never newly shared, only retracted
        if not isinstance(amount, int) or isinstance(amount, bool):
            return False
        return (
            _STATUS_RANK[status] >= _STATUS_RANK[t.min_status]
            and amount >= t.min_estimated_amount_cents
        )

    def _deny(
        self, rule_id: str, errors: tuple[str, ...] = (), *, rule_ids: tuple[str, ...] = ()
    ) -> Decision:
        ids = rule_ids or (rule_id,)
        return Decision(
            allowed=False,
            rule_ids=ids,
            legal_refs=tuple(
                self._bundle.legal_refs[i] for i in ids if i in self._bundle.legal_refs
            ),
            view=frozenset(),
            bundle_name=self.bundle_name,
            bundle_hash=self.bundle_hash,
            errors=errors,
        )

    def _sanitise(self, error: str) -> str:
        # Cedar's messages quote entity ids and attribute values: keep only the rule or the
        # attribute name (messages name the field and the rule, never the data).
        if m := _POLICY_ERROR.search(error):
            rule = self._bundle.rule_by_cedar_id.get(m.group(1), "unknown")
            return f"error while evaluating rule {rule!r}"
        attrs = sorted(set(_ATTRIBUTE.findall(error)))
        suffix = f" (attributes: {', '.join(attrs)})" if attrs else ""
        if error.startswith("failed to parse entities"):
            return "principal or resource does not conform to the bundle schema" + suffix
        if error.startswith("failed to build request"):
            return (
                "request does not conform to the bundle schema "
                "(resource type not valid for the action, or bad context)" + suffix
            )
        return "policy engine error" + suffix

    def decide(self, request: AccessRequest) -> Decision:
        """Decide one access request. Never raises for a bad request: it is denied.

        Raises:
            EvaluationError: the engine itself failed in an unexpected way (a programming
                error), never because of the request's content.
        """
        p, r = request.principal, request.resource
        # 1. Vocabulary (deny by default).
        unknown = [
            f"unknown {what}"
            for what, ok in (
                ("action", request.action in ACTIONS),
                ("purpose", request.purpose in self._purposes),
                ("resource type", r.type in RESOURCE_TYPES),
            )
            if not ok
        ]
        if unknown:
            return self._deny(DEFAULT_DENY, tuple(unknown))
        # 2. Entities and context.
        context: dict[str, Any] = dict.fromkeys(sorted(RELATION_FACTS), False)
        attrs: dict[str, Any] = {}
        for key, value in r.attributes.items():
            if key in RELATION_FACTS:
                if not isinstance(value, bool):
                    return self._deny(EVALUATION_ERROR, (f"relation fact {key!r} must be a bool",))
                context[key] = value
            else:
                attrs[key] = value
        context["purpose"] = request.purpose
        context["resource_is_principal"] = r.type == "member" and r.id == p.member_id
        context["sharing_threshold_met"] = r.type == "suspicion" and self.threshold_met(attrs)
        entities = json.dumps(
            [
                {
                    "uid": {"type": "Member", "id": p.member_id},
                    "attrs": {"kind": p.kind, "roles": sorted(p.roles)},
                    "parents": [],
                },
                {
                    "uid": {"type": RESOURCE_TYPES[r.type], "id": r.id},
                    "attrs": attrs,
                    "parents": [],
                },
            ]
        )
        cedar_request = {
            "principal": {"type": "Member", "id": p.member_id},
            "action": {"type": "Action", "id": request.action},
            "resource": {"type": RESOURCE_TYPES[r.type], "id": r.id},
            "context": context,
        }
        # 3. Evaluate with the pre-parsed policy set and schema handles.
        try:
            result = cedarpy.is_authorized(
                cedar_request, self._bundle.policy_set, entities, schema=self._bundle.schema
            )
        except ValueError as e:
            return self._deny(EVALUATION_ERROR, (self._sanitise(str(e)),))
        except Exception as e:  # cedarpy failing outside its contract is our bug, not the caller's
            raise EvaluationError(f"Cedar evaluation failed: {type(e).__name__}") from e
        # 4. Any error denies.
        diagnostics = result.diagnostics
        if diagnostics.errors:
            return self._deny(
                EVALUATION_ERROR, tuple(self._sanitise(e) for e in diagnostics.errors)
            )
        rule_ids = tuple(sorted(self._bundle.rule_by_cedar_id[cid] for cid in diagnostics.reasons))
        if not result.allowed:
            # Deny: either forbid rules matched (they are the reasons) or no permit did.
            return self._deny(DEFAULT_DENY, rule_ids=rule_ids)
        # 5. Allowed: attach the minimisation view (a collection's view is its items' view).
        view_type = r.id if r.type == "collection" else r.type
        return Decision(
            allowed=True,
            rule_ids=rule_ids,
            legal_refs=tuple(self._bundle.legal_refs[i] for i in rule_ids),
            view=self.view(view_type, p.kind, request.purpose),
            bundle_name=self.bundle_name,
            bundle_hash=self.bundle_hash,
        )
