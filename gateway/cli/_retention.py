"""``vigie retention run``: apply the policy bundle's retention periods to the suspicion exchange.

The same purge the server runs periodically (``gateway.domain.retention``): unqualified alerts
past six months, cleared persons, dismissed cases and closed final decisions past their periods,
acknowledged notifications; recipients are told before anything they hold is deleted. The run
and its journal event (``suspicions.retention``) commit in one transaction.

It needs the database and the data key ring (``VIGIE_DATA_KEYS``, the one the gateway seals
with: retractions are sealed), nothing else. Exit codes (``gateway.cli``): 0 done, 2 bad usage
or configuration (unknown bundle, unsafe key file), 3 the database is unreachable or the data
key ring is missing.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any, NoReturn

__all__ = ["register"]


def _fail(message: str, exit_code: int) -> NoReturn:
    from gateway.cli._commands import CliError  # lazy: _commands imports this module

    raise CliError(message, exit_code)


def _run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError

    from gateway.cli import _commands
    from gateway.crypto import CryptoError, Envelope
    from gateway.domain.retention import run_retention_journaled
    from gateway.errors import FailedPreconditionError, UnavailableError
    from gateway.keys import load_ring
    from gateway.store import Database, migrate
    from policy import BundleError, PolicyEngine, bundle_path

    settings = _commands._settings(args)
    name = args.bundle or settings.policy_bundle
    try:
        engine = PolicyEngine.load(bundle_path(name))
    except BundleError as e:
        _fail(f"--bundle: {e}", 2)
    try:
        # Only the data ring (retractions are sealed with it): no pseudonymisation or journal
        # signing key is needed, so the scheduled job mounts the one secret it uses.
        envelope = Envelope(load_ring(settings.data_keys))
    except FailedPreconditionError:
        _fail(f"VIGIE_DATA_KEYS: no key ring at {settings.data_keys}", 3)
    except CryptoError as e:
        _fail(f"VIGIE_DATA_KEYS: {e.message}", 2)
    db = Database.from_url(settings.database_url, threads=1)
    now = datetime.now(UTC)
    try:
        migrate(db.engine)
        report, seq = db.run_sync(
            lambda s: run_retention_journaled(s, engine, envelope, now, principal=args.principal)
        )
    except (UnavailableError, DBAPIError, OSError) as e:
        _fail(f"database unavailable: {type(e).__name__}", 3)
    finally:
        db.close()
    summary: dict[str, Any] = {
        "bundle": report.bundle_name,
        "bundle_hash": report.bundle_hash,
        "ran_at": report.ran_at.isoformat(),
        "counts": report.counts(),
        "deleted": {k: list(v) for k, v in report.deleted.items()},
        "erased": list(report.erased),
        "journal_seq": seq,
    }
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        counts = report.counts()
        print(f"retention under bundle {report.bundle_name} ({report.bundle_hash[:12]})")
        for key in sorted(counts):
            print(f"  {key}: {counts[key]}")
        print(f"journaled as event {seq} (method suspicions.retention)")
    return 0


def register(sub: Any) -> None:
    """Add ``vigie retention run`` to the ``vigie`` parser."""
    p = sub.add_parser("retention", help="the suspicion exchange's retention purge")
    rsub = p.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    run = rsub.add_parser(
        "run", help="purge what the bundle's retention periods no longer allow (journaled)"
    )
    run.add_argument("--database-url", help="override VIGIE_DATABASE_URL")
    run.add_argument("--bundle", help="policy bundle name or folder (default VIGIE_POLICY_BUNDLE)")
    run.add_argument("--principal", default="vigie-retention", help="who runs it (journaled)")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.set_defaults(func=_run)
