"""``vigie audit``: the compliance officers' journal tools.

- ``export``: a self-contained bundle (events, latest signed checkpoint, inclusion proofs,
  personal fields with their salts where not yet erased, optional consistency proof from a
  checkpoint the officer kept), then a self-check with the offline verifier.
- ``verify``: offline, with only ``gateway.journal.verify`` and the journal's public key.
- ``report``: a readable HTML page (charts as inline SVG, nothing fetched).
- ``erase``: the journal's retention (personal fields of old events; the erasure is journaled).

Exit codes (``gateway.cli``): 0 valid / done, 1 the bundle does not verify, 2 bad usage,
3 a file is missing.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["register"]


def _fail(message: str, exit_code: int) -> NoReturn:
    from gateway.cli._commands import CliError  # lazy: _commands imports this module

    raise CliError(message, exit_code)


def _read_text(path: str, what: str) -> str:
    file = Path(path)
    if not file.is_file():
        _fail(f"{what} not found: {file}", 3)
    return file.read_text(encoding="utf-8")


def _vkey(value: str) -> str:
    """The verifier key given inline or as a file holding it; checked (Ed25519 only)."""
    from gateway.journal import JournalKeyError, parse_vkey

    text = Path(value).read_text(encoding="utf-8").strip() if Path(value).is_file() else value
    try:
        parse_vkey(text)
    except JournalKeyError as e:
        _fail(f"--vkey: {e.message}", 2)
    return text


def _load_bundle(path: str) -> dict[str, Any] | str:
    """The bundle as JSON, or a message saying why it is not one."""
    try:
        bundle = json.loads(_read_text(path, "bundle"))
    except json.JSONDecodeError:
        return "bundle: not a JSON document"
    return bundle if isinstance(bundle, dict) else "bundle: not a JSON object"


def _time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{flag}: not an ISO 8601 date or time", 2)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _previous(args: argparse.Namespace) -> str | None:
    if not args.previous_checkpoint:
        return None
    return _read_text(args.previous_checkpoint, "previous checkpoint")


def _database(args: argparse.Namespace) -> Any:
    from gateway.cli import _commands
    from gateway.store import Database

    return Database.from_url(_commands._settings(args).database_url, threads=1)


def _print_result(report: Any, error: str | None) -> None:
    if error is not None or report is None:
        print(f"INVALID  {error}")
        return
    print(f"VALID  journal {report.origin}")
    print(f"  checkpoint: tree size {report.tree_size}, root {report.root_hash}")
    print("             signed by the trusted key")
    if report.complete_range is not None:
        start, end = report.complete_range
        span = f"every leaf of [{start}, {end}), none missing or added"
    else:
        span = "a filtered selection (deletions elsewhere are not visible from it)"
    print(f"  events: {report.events_verified} included in the signed tree; {span}")
    if report.events_withheld:
        print(
            f"  withheld: {report.events_withheld} more leaf hash(es) included, their events "
            "not disclosed to this reader"
        )
    print(
        f"  personal fields: {report.personal_revealed} revealed and matching their "
        f"commitments, {report.personal_absent} erased or withheld"
    )
    if report.consistent_with_size is None:
        print("  consistency: no earlier checkpoint given (keep this one for next time)")
    else:
        print(
            f"  consistency: extends the earlier checkpoint of size "
            f"{report.consistent_with_size} (no rollback, no fork)"
        )


# -- export --------------------------------------------------------------------------------------
def _export(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gateway.errors import VigieError
    from gateway.journal.queries import EventFilter, export_bundle
    from gateway.journal.report import verify_for_report

    vkey = _vkey(args.vkey)
    earlier = None
    if args.since_checkpoint:
        earlier = _read_text(args.since_checkpoint, "earlier checkpoint").encode("utf-8")
    wanted = {
        "member_id": args.member,
        "principal": args.principal,
        "method": args.method,
        "purpose": args.purpose,
        "decision": args.decision,
        "rule_id": args.rule_id,
        "since": _time(args.since, "--since"),
        "until": _time(args.until, "--until"),
    }
    filters = None
    if any(v is not None for v in wanted.values()):
        try:
            filters = EventFilter(**{k: v for k, v in wanted.items() if v is not None})
        except ValidationError as e:
            first = e.errors(include_input=False)[0]
            _fail(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}", 2)
    db = _database(args)
    try:
        bundle = db.run_sync(
            lambda s: export_bundle(
                s,
                vkey,
                from_size=args.from_size,
                filters=filters,
                earlier_checkpoint=earlier,
                reveal_personal=not args.no_personal,
            )
        )
    except VigieError as e:
        _fail(f"export: {e.message}", 1)
    finally:
        db.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(bundle['events'])} event(s)")
    # Self-check: the bundle as an officer's verifier will see it.
    result = verify_for_report(bundle, vkey)
    _print_result(result.report, result.error)
    return 0 if result.ok else 1


# -- verify --------------------------------------------------------------------------------------
def _verify(args: argparse.Namespace) -> int:
    from gateway.journal import NoteError, verify_checkpoint
    from gateway.journal.report import verify_for_report

    vkey = _vkey(args.vkey)
    previous = _previous(args)
    bundle = _load_bundle(args.bundle)
    if isinstance(bundle, str):
        _print_result(None, bundle)
        return 1
    result = verify_for_report(bundle, vkey, previous)
    _print_result(result.report, result.error)
    if result.ok and args.save_checkpoint:
        note = str(bundle["checkpoint"])
        try:
            verify_checkpoint(note.encode("utf-8"), vkey)
        except NoteError:  # pragma: no cover - verify_bundle already checked it
            return 1
        Path(args.save_checkpoint).write_text(note, encoding="utf-8")
        print(f"  saved the verified checkpoint to {args.save_checkpoint}")
    return 0 if result.ok else 1


# -- report --------------------------------------------------------------------------------------
def _report(args: argparse.Namespace) -> int:
    from gateway.journal.report import ReportVerification, render_report, verify_for_report

    vkey = _vkey(args.vkey)
    previous = _previous(args)
    loaded = _load_bundle(args.bundle)
    if isinstance(loaded, str):
        bundle: dict[str, Any] = {}
        result = ReportVerification(False, None, loaded)
    else:
        bundle, result = loaded, verify_for_report(loaded, vkey, previous)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(bundle, result, title=args.title), encoding="utf-8")
    _print_result(result.report, result.error)
    print(f"wrote {out}")
    return 0 if result.ok else 1


# -- erase ---------------------------------------------------------------------------------------
def _erase(args: argparse.Namespace) -> int:
    from gateway.errors import VigieError
    from gateway.journal.retention import MIN_RETENTION, erase_personal_before, retention_cutoff

    now = datetime.now(UTC)
    try:
        if args.older_than_days is not None:
            cutoff = retention_cutoff(timedelta(days=args.older_than_days), now)
        else:
            cutoff = _time(args.before, "--before") or now
            if now - cutoff < MIN_RETENTION:
                _fail("--before: the journal keeps personal fields at least six months", 2)
    except VigieError as e:
        _fail(f"--older-than-days: {e.message}", 2)
    db = _database(args)
    try:
        count = db.run_sync(
            lambda s: erase_personal_before(
                s, cutoff, rule_ids=args.rule_id or (), bundle_hash=args.bundle_hash, now=now
            )
        )
    except VigieError as e:
        _fail(f"erase: {e.message}", 1)
    finally:
        db.close()
    print(f"erased the personal fields of {count} event(s) older than {cutoff.isoformat()}")
    print("the erasure was journaled (method journal.erase); every proof still verifies")
    return 0


def register(sub: Any) -> None:
    """Add ``vigie audit export|verify|report|erase`` to the ``vigie`` parser."""
    p = sub.add_parser("audit", help="the access journal: export, verify offline, report, erase")
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    export = asub.add_parser("export", help="write a self-contained, verifiable journal bundle")
    export.add_argument("--db", "--database-url", dest="database_url", help="database URL")
    export.add_argument("--vkey", "--key-vkey", required=True, help="journal verifier key or file")
    export.add_argument("--out", required=True, help="bundle file to write (JSON)")
    export.add_argument("--from-size", type=int, default=0, help="first leaf index to export")
    export.add_argument("--since-checkpoint", help="earlier checkpoint file: prove consistency")
    export.add_argument("--member", help="only this member's events")
    export.add_argument("--principal")
    export.add_argument("--method")
    export.add_argument("--purpose")
    export.add_argument("--decision", choices=["allow", "deny"])
    export.add_argument("--rule-id")
    export.add_argument("--since", help="events at or after this ISO time (UTC if no zone)")
    export.add_argument("--until", help="events before this ISO time")
    export.add_argument("--no-personal", action="store_true", help="withhold personal fields")
    export.set_defaults(func=_export)

    verify = asub.add_parser("verify", help="verify a bundle offline with the public key")
    verify.add_argument("bundle")
    verify.add_argument("--vkey", required=True, help="journal verifier key or file")
    verify.add_argument("--previous-checkpoint", help="a checkpoint file kept from before")
    verify.add_argument("--save-checkpoint", help="write the verified checkpoint here")
    verify.set_defaults(func=_verify)

    report = asub.add_parser("report", help="an HTML report of a bundle, with charts")
    report.add_argument("bundle")
    report.add_argument("--vkey", required=True, help="journal verifier key or file")
    report.add_argument("--previous-checkpoint", help="a checkpoint file kept from before")
    report.add_argument("--out", required=True, help="HTML file to write")
    report.add_argument("--title", default="Vigie — access journal report")
    report.set_defaults(func=_report)

    erase = asub.add_parser("erase", help="erase personal fields past the journal's retention")
    erase.add_argument("--db", "--database-url", dest="database_url", help="database URL")
    when = erase.add_mutually_exclusive_group(required=True)
    when.add_argument("--older-than-days", type=int, help="retention in days (at least 182)")
    when.add_argument("--before", help="erase events before this ISO date (>= six months ago)")
    erase.add_argument("--rule-id", action="append", help="retention rule id (repeatable)")
    erase.add_argument("--bundle-hash", default="", help="policy bundle content hash")
    erase.set_defaults(func=_erase)
