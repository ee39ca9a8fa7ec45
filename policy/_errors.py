"""The policy layer's exception tree.

``policy/`` never imports ``gateway/``; the gateway converts these at its boundary::

    PolicyError               base of every error the policy layer raises on purpose
    ├── BundleError           a bundle folder cannot be loaded: missing file, bad YAML,
    │                         Cedar parse or schema-validation failure, inconsistent views
    └── EvaluationError       a programming error while building a Cedar request
                              (bad requests never raise: they are denied, see ``Decision.errors``)

Messages name the file, the field and the rule, never request data.
"""

from __future__ import annotations

__all__ = ["BundleError", "EvaluationError", "PolicyError"]


class PolicyError(Exception):
    """Base of every error the policy layer raises on purpose."""


class BundleError(PolicyError):
    """A policy bundle failed to load or validate.

    Attributes:
        bundle: the bundle folder (or name) being loaded.
        file: the file inside the bundle at fault, if known.
    """

    def __init__(self, message: str, *, bundle: str = "", file: str = "") -> None:
        where = "/".join(p for p in (bundle, file) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.bundle = bundle
        self.file = file


class EvaluationError(PolicyError):
    """The engine was misused (a programming error, not a bad request)."""
