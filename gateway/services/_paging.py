"""AIP-158 pagination: page sizes and opaque, tamper-evident page tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from gateway.errors import InvalidArgumentError

__all__ = ["PageTokens", "page_size"]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(requested: int, *, default: int = DEFAULT_PAGE_SIZE) -> int:
    """0 means the default; above the maximum is coerced (AIP-158); negative is refused.

    Raises:
        InvalidArgumentError: ``page_size`` is negative.
    """
    if requested < 0:
        raise InvalidArgumentError.for_field("page_size", "must not be negative")
    return default if requested == 0 else min(requested, MAX_PAGE_SIZE)


class PageTokens:
    """Page tokens are a signed position plus the filters they were issued for.

    Signing (HMAC under a per-process key) keeps clients from forging positions; binding the
    filters refuses a token reused with different filters (AIP-158).
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)

    def issue(self, position: Any, filters: dict[str, Any]) -> str:
        body = json.dumps({"p": position, "f": filters}, sort_keys=True, separators=(",", ":"))
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body.encode()).decode().rstrip("=")

    def read(self, token: str, filters: dict[str, Any]) -> Any:
        """The position a token stands for (None for the first page).

        Raises:
            InvalidArgumentError: a forged, corrupted or mismatched token.
        """
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, body = raw[:16], raw[16:]
            expected = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("bad mac")
            data = json.loads(body)
        except (ValueError, json.JSONDecodeError):
            raise InvalidArgumentError.for_field("page_token", "not a valid page token") from None
        expected_filters = json.loads(json.dumps(filters, sort_keys=True))
        if data.get("f") != expected_filters:
            raise InvalidArgumentError.for_field(
                "page_token", "issued for different filters"
            ) from None
        return data.get("p")
