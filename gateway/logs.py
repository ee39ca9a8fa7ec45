"""structlog set-up: JSON in production, readable in a terminal, with a redaction processor.

The redaction processor is the last line of defence, not the first: code must not log personal
data at all. It drops values under sensitive keys and masks anything shaped like a NIR, a token,
a pseudonym or key material wherever it appears in a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

__all__ = ["REDACTED", "configure_logging", "redact", "redact_event"]

REDACTED = "[redacted]"

# Keys whose values are never logged, whatever they hold.
_SENSITIVE_KEYS = frozenset(
    {
        "nir",
        "beneficiary_token",
        "token",
        "pseudonym",
        "subject_pseudonyms",
        "key",
        "secret",
        "password",
        "private_key",
        "facts_summary",
        "payload",
        "authorization",
        "admin_token",
    }
)

# 1. NIR: 13 chars (digits, 2A/2B) + 2-digit key, optionally spaced.
_NIR = re.compile(r"\b[1-8]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}\s?\d{2}\b", re.I)
# 2. First-level tokens and HMAC/SHA-256 outputs in base64url (43 chars) and gateway pseudonyms.
_B64_32 = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
# 3. PEM blocks (keys, certificates).
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S)


def redact(text: str) -> str:
    """Mask NIR-, token- and PEM-shaped substrings of ``text``."""
    text = _PEM.sub(REDACTED, text)
    text = _NIR.sub(REDACTED, text)
    return _B64_32.sub(REDACTED, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in _SENSITIVE_KEYS else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


def redact_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop sensitive keys and mask sensitive shapes in every value."""
    for key in list(event_dict):
        if key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


class _StderrLogger:
    """Prints to whatever ``sys.stderr`` is at write time (not when logging was configured).

    ``PrintLoggerFactory(file=sys.stderr)`` keeps the stream object of configuration time; a
    replaced and closed stream (a test's capture, a daemonised process) would then turn every
    log call into ``ValueError: I/O operation on closed file`` inside request handling.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    """Configure structlog (and route stdlib logging through it)."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
