"""The end-to-end demo, step by step, through the client SDK against the real gateway (mTLS).

Steps (each prints what the server answered; nothing shown is computed on the side):

1. make the demo folder: development PKI, key rings, the members registered;
2. start the gateway exactly as ``vigie serve`` does (``build_gateway``, mutual TLS);
3. generate synthetic claims (``vigie synth``) and upload both sides, the CPAM first;
4. the CPAM submits suspicions and qualifies them (shared past the bundle's threshold);
5. each mutuelle lists the alerts on its own claims, with their reasons, and one checks a
   claim before paying it;
6. ``mut-alpha`` follows its notification feed: the suspicion about its beneficiary arrives;
7. the CPAM dismisses it: the retraction reaches ``mut-alpha``, which acknowledges it;
8. ``mut-beta`` tries to read ``mut-alpha``'s data and the journal, and is refused;
9. the compliance officer lists accesses, answers "who looked at this person's data?",
   exports the journal and verifies the export offline with the journal's public key.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.client import (
    ClientConfig,
    FailedPreconditionError,
    NotFoundError,
    PermissionDeniedError,
    Pseudonymiser,
    UploadProgress,
    VigieClient,
)
from gateway.demo import _show
from gateway.demo._data import DEMO_NIR, DemoData, make_data
from gateway.demo._setup import CAST, SERVE_LISTEN, DemoFiles, members_key_bytes, prepare
from gateway.journal.verify import verify_bundle

__all__ = ["DemoReport", "Profile", "run_scenario"]

T = TypeVar("T")
AMCS = ("mut-alpha", "mut-beta", "mut-gamma")


@dataclass(frozen=True, slots=True)
class Profile:
    beneficiaries: int
    years: int
    seed: int = 2026


FULL = Profile(beneficiaries=2000, years=2)
QUICK = Profile(beneficiaries=300, years=1)


@dataclass
class DemoReport:
    """What the demo showed, as the server answered it (the test suite asserts on it)."""

    files: DemoFiles | None = None
    uploads: dict[str, dict[str, int]] = field(default_factory=dict)
    alerts: dict[str, list[Any]] = field(default_factory=dict)
    suspicions: dict[str, str] = field(default_factory=dict)  # label -> resource name
    check: Any = None
    check_ms: float = 0.0
    feed: list[tuple[str, str]] = field(default_factory=list)  # (kind, subject name) at alpha
    retraction_acknowledged: bool = False
    refusals: list[tuple[str, str, str, str]] = field(default_factory=list)
    accesses: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    person_accesses: list[Any] = field(default_factory=list)
    verification: Any = None
    bundle_path: Path | None = None


async def _timed(coro: Awaitable[T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await coro
    return result, (time.perf_counter() - start) * 1000


def _client(files: DemoFiles, port: int, member: str, pseudonymiser: Pseudonymiser) -> VigieClient:
    return VigieClient(
        ClientConfig(
            address=f"127.0.0.1:{port}",
            certificate=files.cert(member),
            private_key=files.key(member),
            ca=files.ca,
        ),
        pseudonymiser=pseudonymiser,
    )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _lines_in(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


async def _upload_all(
    console: Console, clients: dict[str, VigieClient], data: DemoData, report: DemoReport
) -> None:
    with _progress(console) as bars:
        for member in ("cpam-75", *AMCS):  # the AMO side first: AMC lines then match on upload
            path = data.claims_file(member)
            task = bars.add_task(f"upload {member} ({path.name})", total=_lines_in(path))

            def advance(p: UploadProgress, task: Any = task) -> None:
                bars.update(task, completed=p.lines_received)

            result = await clients[member].upload_claims(
                path, side="AMO" if member == "cpam-75" else "AMC", on_progress=advance
            )
            bars.update(task, completed=result.lines_received)
            report.uploads[member] = {
                "accepted": result.lines_accepted,
                "duplicate": result.lines_duplicate,
                "rejected": result.lines_rejected,
            }


async def _submit_suspicions(cpam: VigieClient, data: DemoData, report: DemoReport) -> list[Any]:
    submitted = []
    person = await cpam.submit_suspicion(
        purpose="control",
        sector=data.person_sector,
        fraud_type="identity_theft",
        facts_summary="Care billed on dates the insured declares being abroad (demo).",
        estimated_amount_cents=84_000,
        nir=DEMO_NIR,
        case_reference="CPAM75-2026-0001",
    )
    report.suspicions["beneficiary (demo NIR)"] = person.name
    submitted.append(person)
    for i, provider in enumerate([*data.providers("ring"), *data.providers("outlier")][:2]):
        s = await cpam.submit_suspicion(
            purpose="control",
            sector=provider["sector"],
            fraud_type="fictitious_billing"
            if provider["role"] == "ring"
            else "provider_volume_outlier",
            facts_summary=f"Provider flagged by the CPAM's analysis ({provider['role']}).",
            estimated_amount_cents=1_250_000,
            provider_rpps=provider["rpps"],
            case_reference=f"CPAM75-2026-{i + 2:04d}",
        )
        report.suspicions[f"provider {provider['rpps']} ({provider['role']})"] = s.name
        submitted.append(s)
    qualified = []
    for s in submitted:
        qualified.append(
            await cpam.transition_suspicion(
                s.name, "qualified", "facts suggest fraud: procedure engaged", purpose="control"
            )
        )
    return qualified


async def _follow_until(
    client: VigieClient, report: DemoReport, done: Callable[[Any], bool], deadline_s: float
) -> None:
    """Process ``client``'s feed (acknowledging each item) until ``done(notification)``."""
    stop = asyncio.Event()

    def handle(notification: Any) -> None:
        subject = notification.suspicion.name or notification.alert.name
        kind = _show.enum_word(notification, "kind")
        report.feed.append((kind, subject))
        if done(notification):
            stop.set()

    await asyncio.wait_for(
        client.follow_notifications(handle, purpose="control", stop=stop), timeout=deadline_s
    )


async def _refusals(
    clients: dict[str, VigieClient], report: DemoReport, alpha_alert: str | None, person: str
) -> None:
    beta, alpha = clients["mut-beta"], clients["mut-alpha"]
    attempts: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = [
        (
            "mut-beta",
            "read mut-alpha's suspicion",
            lambda: beta.get_suspicion(person, purpose="control"),
        ),
        ("mut-beta", "list the access journal", lambda: beta.list_access_events(purpose="audit")),
        (
            "mut-alpha",
            "report to the CPAM (AMC -> AMO)",
            lambda: alpha.submit_suspicion(
                purpose="control",
                sector="optique",
                fraud_type="price_above_cap",
                facts_summary="Frame billed above the 100 % Santé cap (demo).",
                estimated_amount_cents=4_500,
                nir=DEMO_NIR,
                case_reference="ALPHA-2026-0001",
            ),
        ),
    ]
    if alpha_alert:
        attempts.insert(
            0,
            (
                "mut-beta",
                "read one of mut-alpha's alerts",
                lambda: beta.get_alert(alpha_alert, purpose="fraud_detection"),
            ),
        )
    for who, what, call in attempts:
        try:
            await call()
        except (NotFoundError, PermissionDeniedError) as e:
            rules = ", ".join(getattr(e, "rule_ids", ()) or ()) or "-"
            code = e.code.name if e.code is not None else "LOCAL"
            report.refusals.append((who, what, code, rules))
        else:
            report.refusals.append((who, what, "ALLOWED (unexpected)", "-"))


async def _compliance(dpo: VigieClient, files: DemoFiles, report: DemoReport) -> None:
    async for e in dpo.iter_access_events(purpose="audit", page_size=1000):
        report.accesses[
            (
                e.member.removeprefix("members/"),
                _show.enum_word(e, "purpose"),
                _show.enum_word(e, "decision"),
            )
        ] += 1
    person = await dpo.list_person_accesses(nir=DEMO_NIR, purpose="data_subject_request")
    report.person_accesses = list(person.access_events)
    files.exports.mkdir(exist_ok=True)
    report.bundle_path = files.exports / "journal-bundle.json"
    await dpo.export_journal(report.bundle_path, purpose="audit")
    bundle = json.loads(report.bundle_path.read_text(encoding="utf-8"))
    report.verification = verify_bundle(bundle, files.vkey_file.read_text().strip())


async def run_scenario(
    root: Path, *, quick: bool, console: Console, bundle: str = "current-law"
) -> DemoReport:
    """Run every step; raises the first unexpected error (the CLI prints it)."""
    from gateway.logs import configure_logging
    from gateway.server import build_gateway

    configure_logging("console", "warning")
    profile = QUICK if quick else FULL
    report = DemoReport()
    _show.step(console, 1, "Set-up: development PKI, key rings, member registry")
    files = prepare(root, bundle=bundle)
    report.files = files
    _show.cast(console, CAST)

    _show.step(console, 2, f"Start the gateway (mutual TLS, policy bundle {bundle})")
    gateway = await build_gateway(files.settings(bundle=bundle))
    await gateway.start()
    console.print(f"listening on 127.0.0.1:{gateway.port}; SQLite store {files.database_url}")
    pseudonymiser = Pseudonymiser.from_key_file(files.members_key)
    clients = {a.name: _client(files, gateway.port, a.name, pseudonymiser) for a in CAST}
    try:
        _show.step(console, 3, "Synthetic claims, uploaded by both sides")
        with _progress(console) as bars:
            task = bars.add_task("vigie synth", total=profile.beneficiaries)
            data = await asyncio.to_thread(
                make_data,
                files.data,
                members_key_bytes(files),
                beneficiaries=profile.beneficiaries,
                years=profile.years,
                seed=profile.seed,
                progress=lambda done, total: bars.update(task, completed=done, total=total),
            )
        await _upload_all(console, clients, data, report)
        _show.uploads(console, report.uploads, data)

        _show.step(console, 4, "The CPAM submits suspicions and qualifies them")
        qualified = await _submit_suspicions(clients["cpam-75"], data, report)
        _show.suspicions(console, report.suspicions, qualified)

        _show.step(console, 5, "Each mutuelle sees the alerts on its own claims, with reasons")
        for member in AMCS:
            report.alerts[member] = [
                a async for a in clients[member].iter_alerts(purpose="fraud_detection")
            ]
        _show.alerts(console, report.alerts)
        line = next(iter(_first_lines(data.claims_file("mut-gamma"), 1)))
        line["member_reference"] = "CHECK-0001"
        report.check, report.check_ms = await _timed(
            clients["mut-gamma"].check_claim(line, purpose="fraud_detection")
        )
        _show.check(console, report.check, report.check_ms)

        _show.step(console, 6, "mut-alpha follows its notification feed")
        person = report.suspicions["beneficiary (demo NIR)"]
        await _follow_until(clients["mut-alpha"], report, lambda n: n.suspicion.name == person, 60)
        _show.feed(console, report.feed)

        _show.step(console, 7, "The CPAM dismisses the suspicion; the retraction follows it")
        await clients["cpam-75"].transition_suspicion(
            person, "dismissed", "facts not confirmed after review", purpose="control"
        )
        seen = len(report.feed)
        await _follow_until(
            clients["mut-alpha"],
            report,
            lambda n: n.suspicion.name == person and _show.enum_word(n, "kind") == "retracted",
            60,
        )
        report.retraction_acknowledged = ("retracted", person) in report.feed[seen:]
        _show.feed(console, report.feed[seen:])

        _show.step(console, 8, "mut-beta tries to read what is not its own")
        alpha_alerts = report.alerts.get("mut-alpha") or []
        await _refusals(clients, report, alpha_alerts[0].name if alpha_alerts else None, person)
        _show.refusals(console, report.refusals)

        _show.step(
            console, 9, "The compliance officer: accesses, a person's request, offline proof"
        )
        await _wait_integrated(clients["cpam-75-dpo"])
        await _compliance(clients["cpam-75-dpo"], files, report)
        _show.compliance(console, report)
    finally:
        for c in clients.values():
            await c.close()
        await gateway.stop(grace=2)
    _show.where(console, files, SERVE_LISTEN)
    return report


async def _wait_integrated(dpo: VigieClient, timeout_s: float = 60) -> None:
    """Wait until the sequencer's signed checkpoint covers what happened so far.

    The sequencer runs inside the server; its checkpoints are polled over the API.
    """

    async def size() -> int:
        try:
            return int((await dpo.get_checkpoint(purpose="audit")).tree_size)
        except FailedPreconditionError:  # no checkpoint signed yet
            return 0

    async with asyncio.timeout(timeout_s):
        first = await size()
        while await size() <= first:  # noqa: ASYNC110  # remote state: no local event to wait on
            await asyncio.sleep(0.2)


def _first_lines(path: Path, n: int) -> list[dict[str, Any]]:
    out = []
    with path.open(encoding="utf-8") as f:
        for raw in f:
            if raw.strip():
                out.append(json.loads(raw))
            if len(out) == n:
                break
    return out
