"""``vigie evaluate``: run a ``vigie synth`` data set through a real gateway, score it, measure.

Steps:

1. read ``population.json`` (members, providers) and check every claims file and the ground
   truth are there (:class:`DataSetError` otherwise, naming the file);
2. make a PKI for the run (a CA, the server certificate, one certificate per member with the
   roles submitter and analyst) and register the members in a fresh database;
3. start the gateway exactly as ``vigie serve`` does (``build_gateway``) on 127.0.0.1, over
   mutual TLS, with the chosen policy bundle;
4. upload each member's file with the client SDK (``VigieClient.upload_claims``, streamed,
   per-line), the AMO first: matching and scoring happen on upload, and later uploads re-score
   the earlier lines they touch;
5. read back each member's alerts (``ListAlerts``, every page) as that member sees them;
6. compare with the ground truth (:func:`gateway.synth._metrics.compute_metrics`).
"""

from __future__ import annotations

import csv
import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from gateway.synth._metrics import AlertSeen, Metrics, TruthRow, compute_metrics

__all__ = ["DataSetError", "Evaluation", "run_evaluation"]

Say = Callable[[str], None]


class DataSetError(Exception):
    """The folder is not a complete ``vigie synth`` output (the message names what is missing)."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    metrics: Metrics
    lines_uploaded: int
    lines_rejected: int
    upload_seconds: float
    bundle: str
    window_end: date | None = None

    @property
    def stale_days(self) -> int:
        """Days between the data's last day and today (rules that wait for time see a gap)."""
        return (date.today() - self.window_end).days if self.window_end else 0


def _claims_file(folder: Path, member: str) -> Path:
    for suffix in (".jsonl", ".csv"):
        path = folder / f"claims-{member}{suffix}"
        if path.is_file():
            return path
    raise DataSetError(f"claims file missing: {folder / f'claims-{member}.jsonl'} (or .csv)")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        if path.suffix == ".csv":
            yield from csv.DictReader(f)
        else:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def read_data_set(folder: Path) -> tuple[list[tuple[str, str]], dict[str, Path], Any]:
    """Members (id, kind), their claims files and the population document.

    Raises:
        DataSetError: a file is missing or unreadable.
    """
    if not folder.is_dir():
        raise DataSetError(f"data set folder not found: {folder}")
    population_file = folder / "population.json"
    if not population_file.is_file():
        raise DataSetError(f"population.json missing in {folder} (run `vigie synth` first)")
    if not (folder / "ground_truth.jsonl").is_file():
        raise DataSetError(f"ground truth missing: {folder / 'ground_truth.jsonl'}")
    try:
        population = json.loads(population_file.read_text(encoding="utf-8"))
        members = [(str(m["id"]), str(m["kind"])) for m in population["members"]]
    except (ValueError, KeyError, TypeError):
        raise DataSetError(f"not a vigie synth population file: {population_file}") from None
    return members, {m: _claims_file(folder, m) for m, _ in members}, population


def _honest_lines(files: dict[str, Path], population: Any) -> set[tuple[str, str]]:
    regular = {
        am
        for p in population.get("providers", [])
        if p.get("role") == "regular"
        for am in p.get("am_numbers", [])
    }
    return {
        (member, str(row["member_reference"]))
        for member, path in files.items()
        for row in _rows(path)
        if row.get("provider_am_number") in regular
    }


def _truth(folder: Path) -> Iterator[TruthRow]:
    for row in _rows(folder / "ground_truth.jsonl"):
        yield TruthRow(
            str(row["member"]),
            str(row["member_reference"]),
            str(row["fraud_pattern"]),
            int(row["amount_at_stake_cents"]),
        )


async def run_evaluation(
    folder: Path,
    work: Path,
    *,
    database_url: str | None = None,
    bundle: str = "current-law",
    batch_size: int = 1000,
    top_k: int = 100,
    say: Say = lambda _: None,
) -> Evaluation:
    """Upload, match, score and read back a generated data set; measure against ground truth.

    Raises:
        DataSetError: the data set is incomplete.
        policy.BundleError: unknown policy bundle.
        gateway.client.VigieClientError: the gateway refused an upload or a read.
    """
    from gateway import pki
    from gateway.client import ClientConfig, VigieClient
    from gateway.config import Settings
    from gateway.domain import default_ruleset
    from gateway.server import build_gateway
    from gateway.server._policy import EnginePolicyHook
    from gateway.store import Database, Member, SqlMemberRegistry, migrate

    members, files, population = read_data_set(folder)  # 1
    policy = EnginePolicyHook.load(bundle)
    pki_dir = work / "pki"  # 2
    pki.init_ca(pki_dir)
    for member, kind in members:
        pki.issue_member(pki_dir, member, kind, ["submitter", "analyst"])
    url = database_url or f"sqlite:///{work / 'vigie.db'}"
    db = Database.from_url(url)
    migrate(db.engine)
    registry = SqlMemberRegistry()

    def register(session: Any, member: str, kind: str) -> None:
        cert = pki.load_certificate((pki_dir / "members" / f"{member}.crt").read_bytes())
        entry = Member(
            member_id=member,
            display_name=member,
            kind=kind,  # type: ignore[arg-type]
            roles=frozenset({"submitter", "analyst"}),
        )
        registry.register_certificate(session, entry, cert)

    for member, kind in members:
        db.run_sync(functools.partial(register, member=member, kind=kind))
    settings = Settings.local(
        pki_dir,
        work,
        database_url=url,
        environment="test",
        rate_limit_per_s=1e9,
        rate_limit_burst=10**9,
        log_level="warning",
    )
    gateway = await build_gateway(settings, db=db, policy=policy, migrate_schema=False)  # 3
    await gateway.start()
    uploaded = rejected = 0
    alerts: list[AlertSeen] = []
    try:

        def client(member: str) -> VigieClient:
            return VigieClient(
                ClientConfig(
                    address=f"127.0.0.1:{gateway.port}",
                    certificate=pki_dir / "members" / f"{member}.crt",
                    private_key=pki_dir / "members" / f"{member}.key",
                    ca=pki_dir / "ca.crt",
                )
            )

        start = time.perf_counter()
        for member, kind in sorted(members, key=lambda m: m[1] != "AMO"):  # 4: the AMO first
            async with client(member) as c:
                result = await c.upload_claims(files[member], side=kind, batch_size=batch_size)
            uploaded += result.lines_accepted + result.lines_duplicate
            rejected += result.lines_rejected
            say(
                f"uploaded {member}: {result.lines_accepted} lines ({result.lines_rejected} "
                f"refused, {result.lines_duplicate} already stored)"
            )
        seconds = time.perf_counter() - start
        for member, _ in members:  # 5
            async with client(member) as c:
                async for a in c.iter_alerts(page_size=1000):
                    alerts.append(
                        AlertSeen(
                            member, a.member_reference, a.score, tuple(r.code for r in a.reasons)
                        )
                    )
        say(f"read back {len(alerts)} alerts")
    finally:
        await gateway.stop(grace=1)
    metrics = compute_metrics(  # 6
        _truth(folder),
        alerts,
        honest_provider_lines=_honest_lines(files, population),
        rule_patterns=default_ruleset().fraud_patterns(),
        top_k=top_k,
    )
    try:
        window_end: date | None = date.fromisoformat(population["window"]["end"])
    except (KeyError, TypeError, ValueError):
        window_end = None
    return Evaluation(metrics, uploaded, rejected, seconds, bundle, window_end)
