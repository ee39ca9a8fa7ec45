"""``vigie upload FILE``: upload one side of claim lines (CSV or JSONL) with a progress bar.

Uses the client SDK (:class:`gateway.client.VigieClient`) exactly as a member's system would:
mutual TLS with the member's certificate, the streamed ``UploadClaims`` call, retries of
transient failures under one request id. A ``nir`` column is pseudonymised locally with the
members' key file (``--members-key``) and never sent.

Exit codes (``gateway.cli``): 0 every line accepted (or already stored); 1 lines refused, or
the gateway refused the upload; 2 bad usage (arguments, not a claims file, unusable key file or
certificate refused); 3 a file is missing or the gateway is unreachable.
"""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path
from typing import Any, Literal, NoReturn

__all__ = ["register"]

_MODES: dict[str, Literal["per_line", "all_or_nothing"]] = {
    "per-line": "per_line",
    "all-or-nothing": "all_or_nothing",
}
_ENV = {
    "address": "VIGIE_CLIENT_ADDRESS",
    "cert": "VIGIE_CLIENT_CERT",
    "key": "VIGIE_CLIENT_KEY",
    "ca": "VIGIE_CLIENT_CA",
    "members_key": "VIGIE_MEMBERS_KEY",
}


def _fail(message: str, exit_code: int) -> NoReturn:
    from gateway.cli._commands import CliError  # lazy: _commands imports this module

    raise CliError(message, exit_code)


def _count_records(path: Path) -> int | None:
    """Records in the file, for the progress bar's total (``None`` if it cannot be counted)."""
    try:
        with path.open("rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            if f.tell():  # a last line without its newline still counts
                f.seek(-1, os.SEEK_END)
                lines += f.read(1) != b"\n"
    except OSError:
        return None
    return max(lines - 1, 0) if path.suffix.lower() == ".csv" else lines


def _required(args: argparse.Namespace, name: str, flag: str) -> str:
    value = getattr(args, name) or os.environ.get(_ENV[name], "")
    if not value:
        _fail(f"{flag} is required (or set {_ENV[name]})", 2)
    return str(value)


def _files(args: argparse.Namespace) -> tuple[Path, Path, Path, Path]:
    claims = Path(args.file)
    if not claims.is_file():
        _fail(f"claims file not found: {claims}", 3)
    tls = []
    for name, flag in (("cert", "--cert"), ("key", "--key"), ("ca", "--ca")):
        path = Path(_required(args, name, flag))
        if not path.is_file():
            _fail(f"{flag}: file not found: {path}", 3)
        tls.append(path)
    return claims, tls[0], tls[1], tls[2]


class _UploadView:
    """The progress bar on stderr, fed by the SDK's progress callback."""

    def __init__(self, console: Any, *, total: int | None, enabled: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]upload"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("accepted {task.fields[accepted]}"),
            TextColumn("[red]refused {task.fields[rejected]}"),
            TextColumn("duplicates {task.fields[duplicate]}"),
            TextColumn("{task.fields[attempt]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(
            "upload", total=total, accepted=0, rejected=0, duplicate=0, attempt=""
        )

    def __enter__(self) -> _UploadView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, p: Any) -> None:
        self.progress.update(
            self.task,
            completed=p.lines_received + p.lines_refused_locally,
            accepted=p.lines_accepted,
            rejected=p.lines_rejected,
            duplicate=p.lines_duplicate,
            attempt=f"(attempt {p.attempt})" if p.attempt > 1 else "",
        )


def _print_summary(result: Any, claims: Path, shown: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"upload of {claims.name}", show_header=False)
    table.add_row("outcome", result.outcome)
    table.add_row("lines sent", str(result.lines_sent))
    table.add_row("accepted", str(result.lines_accepted))
    table.add_row("refused", str(result.lines_rejected))
    table.add_row("already stored (duplicates)", str(result.lines_duplicate))
    table.add_row("request id", result.request_id)
    table.add_row("attempts", str(result.attempts))
    console.print(table)
    for r in result.rejections[:shown]:
        where = "refused locally, not sent" if r.local else "refused by the gateway"
        reasons = "; ".join(f"{v.field}: {v.description}" for v in r.field_violations)
        ref = f" {r.member_reference}" if r.member_reference else ""
        console.print(f"line {r.line_index}{ref} ({where}): {reasons}", markup=False)
    more = len(result.rejections) - shown
    if more > 0 or result.rejections_truncated:
        console.print(f"... and more refused lines ({result.lines_rejected} in all)")


async def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gateway.client import (
        ClientConfig,
        ClientConfigError,
        DeadlineExceededError,
        LocalValidationError,
        Pseudonymiser,
        UnauthenticatedError,
        UnavailableError,
        VigieClient,
        VigieClientError,
    )

    claims, cert, key, ca = _files(args)
    address = args.address or os.environ.get(_ENV["address"]) or "127.0.0.1:50051"
    members_key = args.members_key or os.environ.get(_ENV["members_key"])
    console = Console(stderr=True)
    try:
        pseudonymiser = Pseudonymiser.from_key_file(members_key) if members_key else None
        config = ClientConfig(
            address=address,
            certificate=cert,
            private_key=key,
            ca=ca,
            server_name=args.server_name,
            timeout=args.timeout,
        )
    except ClientConfigError as e:
        _fail(e.message, 2)
    view = _UploadView(console, total=_count_records(claims), enabled=not args.no_progress)
    try:
        async with VigieClient(config, pseudonymiser=pseudonymiser) as client:
            with view:
                result = await client.upload_claims(
                    claims,
                    side=args.side,
                    mode=_MODES[args.mode],
                    file_format=args.format,
                    request_id=args.request_id,
                    batch_size=args.batch_size,
                    on_progress=view.update,
                    timeout=args.timeout,
                )
    except ClientConfigError as e:
        _fail(e.message, 3 if "not found" in e.message else 2)
    except LocalValidationError as e:
        _fail(e.message, 2)
    except (UnavailableError, DeadlineExceededError) as e:
        _fail(f"gateway unreachable at {address}: {e}", 3)
    except UnauthenticatedError as e:
        _fail(f"the gateway refused the certificate: {e}", 2)
    except VigieClientError as e:
        _fail(f"the gateway refused the upload: {e}", 1)
    _print_summary(result, claims, args.show_rejections)
    return 0 if result.ok else 1


def _upload(args: argparse.Namespace) -> int:
    from gateway.cli._commands import _run_async

    return int(_run_async(_run(args)))


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError("must be a UUID") from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def register(sub: Any) -> None:
    """Add ``vigie upload`` to the sub-command parser."""
    p = sub.add_parser(
        "upload",
        help="upload claim lines (CSV or JSONL) to a gateway over mTLS, with a progress bar",
        description=(
            "Upload one side (AMO or AMC) of claim lines. Exit codes: 0 all lines accepted, "
            "1 lines refused or upload refused, 2 bad usage, 3 missing file or unreachable "
            "gateway. A broken upload is re-sent with the same request id: lines already "
            "stored are counted as duplicates, never stored twice."
        ),
    )
    p.add_argument("file", help="claims file: .csv (header row) or .jsonl (one object per line)")
    p.add_argument("--side", choices=["AMO", "AMC"], required=True, help="the lines' side")
    p.add_argument(
        "--mode",
        choices=sorted(_MODES),
        default="per-line",
        help="per-line: store valid lines, report the others; all-or-nothing: one bad line "
        "stores nothing (default: per-line)",
    )
    p.add_argument("--format", choices=["csv", "jsonl"], help="override the file suffix")
    p.add_argument("--address", help=f"gateway host:port (or {_ENV['address']}; 127.0.0.1:50051)")
    p.add_argument("--cert", help=f"member certificate, PEM (or {_ENV['cert']})")
    p.add_argument("--key", help=f"member private key, PEM (or {_ENV['key']})")
    p.add_argument("--ca", help=f"CA certificate of the gateway (or {_ENV['ca']})")
    p.add_argument("--server-name", help="expected server name if not the address host")
    p.add_argument(
        "--members-key",
        help="members' shared key file, to pseudonymise a nir column locally "
        f"(or {_ENV['members_key']})",
    )
    p.add_argument("--request-id", type=_uuid, help="resume a broken upload under its request id")
    p.add_argument("--batch-size", type=_positive, default=500, help="lines per message")
    p.add_argument("--timeout", type=float, default=None, help="deadline of one attempt, seconds")
    p.add_argument("--show-rejections", type=int, default=20, help="refused lines listed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_upload)
