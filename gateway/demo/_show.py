"""Readable tables for the demo (rich). Only what the server answered is shown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:
    from gateway.demo._data import DemoData
    from gateway.demo._scenario import DemoReport
    from gateway.demo._setup import Actor, DemoFiles


def enum_word(message: Any, field: str) -> str:
    """``SUSPICION_STATUS_QUALIFIED`` -> ``qualified`` for one enum field of a message."""
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    name = str(descriptor.values_by_number[getattr(message, field)].name)
    prefix = _common_prefix([v.name for v in descriptor.values])
    return name[len(prefix) :].lower()


def _common_prefix(names: Sequence[str]) -> str:
    first = names[0]
    cut = first.rfind("_UNSPECIFIED")
    return first[: cut + 1] if cut >= 0 else ""


def step(console: Console, number: int, title: str) -> None:
    console.print()
    console.rule(f"[bold cyan]{number}. {title}")


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def cast(console: Console, actors: Iterable[Actor]) -> None:
    table = _table(
        "Client certificates (pinned in the member registry)",
        "certificate",
        "member",
        "kind",
        "used for",
    )
    for a in actors:
        table.add_row(a.name, a.member_id, a.kind, ", ".join(a.roles))
    console.print(table)


def uploads(console: Console, counts: Mapping[str, Mapping[str, int]], data: DemoData) -> None:
    s = data.summary
    console.print(
        f"synthetic set: {s.beneficiaries} beneficiaries, {s.lines_total} claim lines, "
        f"{sum(s.fraud_lines_by_pattern.values())} of them from injected fraud "
        f"(ground truth kept apart in {data.folder / 'ground_truth.jsonl'})"
    )
    table = _table("Uploads (as the gateway counted them)", "member", "accepted", "dup.", "refused")
    for member, c in counts.items():
        table.add_row(member, str(c["accepted"]), str(c["duplicate"]), str(c["rejected"]))
    console.print(table)


def suspicions(console: Console, labels: Mapping[str, str], qualified: Iterable[Any]) -> None:
    table = _table("Suspicions submitted by cpam-75", "about", "name", "status")
    by_name = {s.name: s for s in qualified}
    for label, name in labels.items():
        s = by_name.get(name)
        table.add_row(label, name, enum_word(s, "status") if s is not None else "?")
    console.print(table)


def alerts(console: Console, per_member: Mapping[str, Sequence[Any]]) -> None:
    for member, every in per_member.items():
        items = [a for a in every if enum_word(a, "alert_level") in {"medium", "high"}]
        levels = Counter(enum_word(a, "alert_level") for a in items)
        if not items:
            console.print(f"{member}: no alert of level medium or above on its own claims")
            continue
        table = _table(
            f"{member}: {len(every)} alerts on its own claims, {len(items)} of level medium or "
            f"above ({dict(levels)}); the top 3",
            "alert",
            "its line",
            "score",
            "level",
            "reasons",
        )
        for a in sorted(items, key=lambda a: -a.score)[:3]:
            reasons = "; ".join(f"{r.code} (+{r.contribution}): {r.explanation}" for r in a.reasons)
            table.add_row(
                a.name, a.member_reference, str(a.score), enum_word(a, "alert_level"), reasons
            )
        console.print(table)


def check(console: Console, response: Any, ms: float) -> None:
    reasons = ", ".join(r.code for r in response.reasons) or "none"
    console.print(
        f"mut-gamma checks a claim before paying it: score {response.score}, level "
        f"{enum_word(response, 'alert_level')}, reasons {reasons} ({ms:.1f} ms round trip; "
        f"rule set {response.ruleset_version})"
    )


def feed(console: Console, items: Sequence[tuple[str, str]]) -> None:
    kinds = Counter(kind for kind, _ in items)
    shown = [(k, n) for k, n in items if k != "alert"]
    table = _table(
        f"mut-alpha's feed: {len(items)} notifications processed and acknowledged "
        f"({dict(kinds)}); suspicion notifications:",
        "kind",
        "subject",
    )
    for kind, name in shown:
        table.add_row(kind, name)
    console.print(table)


def refusals(console: Console, rows: Iterable[tuple[str, str, str, str]]) -> None:
    table = _table("Refused, as the gateway answered", "member", "tried to", "status", "rule")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def compliance(console: Console, report: DemoReport) -> None:
    table = _table(
        "Journal: accesses per member, purpose and decision",
        "member",
        "purpose",
        "decision",
        "events",
    )
    for (member, purpose, decision), n in sorted(report.accesses.items()):
        table.add_row(member, purpose, decision, str(n))
    console.print(table)
    person = _table(
        f"Who looked at the data of the person with NIR {_masked()}? "
        f"({len(report.person_accesses)} accesses)",
        "time (UTC)",
        "member",
        "method",
        "purpose",
        "decision",
    )
    for e in report.person_accesses[:15]:
        person.add_row(
            e.event_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            e.member.removeprefix("members/"),
            e.method.rsplit("/", 1)[-1],
            enum_word(e, "purpose"),
            enum_word(e, "decision"),
        )
    console.print(person)
    v = report.verification
    console.print(
        Panel(
            f"export {report.bundle_path}\n"
            f"verified offline with the journal's public key only: checkpoint signature, "
            f"{v.events_verified} events included in a tree of {v.tree_size} leaves "
            f"(root {v.root_hash[:16]}...), {v.events_withheld} withheld leaves proven present",
            title="journal verified",
            border_style="green",
        )
    )


def _masked() -> str:
    from gateway.demo._data import DEMO_NIR

    return DEMO_NIR[:5] + "•" * (len(DEMO_NIR) - 5)


def where(console: Console, files: DemoFiles, listen: str) -> None:
    console.print()
    console.rule("[bold cyan]Where things are")
    table = _table("", "what", "where")
    table.add_row("PKI (CA, server, member certificates)", str(files.pki))
    table.add_row("gateway settings", str(files.env_file))
    table.add_row("database (SQLite)", files.database_url)
    table.add_row("synthetic data and ground truth", str(files.data))
    table.add_row("journal export", str(files.exports))
    table.add_row("journal public key (verifier key)", str(files.vkey_file))
    console.print(table)
    console.print(
        f"Run the gateway on its own (listens on {listen}):\n"
        f"  .venv/bin/vigie serve --env-file {files.env_file}\n"
        f"Check the export again, offline:\n"
        f"  .venv/bin/vigie audit verify --vkey {files.vkey_file} "
        f"{files.exports / 'journal-bundle.json'}"
    )
