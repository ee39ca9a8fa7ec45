"""A readable HTML report of a journal export bundle, for people (DPO, auditors, the CNIL).

One self-contained page: the verification result first (a failed check is shown in red and
the figures below are marked unverified), then accesses per member over time, accesses per
purpose and member, refusals over time and the list of refusals. Charts are inline SVG made
here; the page loads nothing (a Content-Security-Policy forbids every fetch), so it can be
opened offline and archived as is. Personal fields (record references, pseudonyms) are never
shown: counts only. Every value from the bundle is HTML-escaped.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gateway.journal._errors import JournalVerificationError
from gateway.journal.verify import VerificationReport, verify_bundle

__all__ = ["ReportVerification", "render_report", "verify_for_report"]

_PALETTE: Final = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
)  # fmt: skip
_OTHER_COLOR: Final = "#7f7f7f"
_DENY_COLOR: Final = "#d62728"
_MAX_SERIES: Final = 8
_MAX_REFUSALS_LISTED: Final = 200
_DAY_BUCKETS_UP_TO: Final = 62


@dataclass(frozen=True, slots=True)
class ReportVerification:
    """The outcome of verifying the bundle the report is about."""

    ok: bool
    report: VerificationReport | None
    error: str | None


def verify_for_report(
    bundle: dict[str, Any], vkey: str, previous_checkpoint: str | None = None
) -> ReportVerification:
    """Verify ``bundle`` offline and keep the outcome for the report (never raises on failure)."""
    try:
        return ReportVerification(True, verify_bundle(bundle, vkey, previous_checkpoint), None)
    except JournalVerificationError as e:
        return ReportVerification(False, None, e.message)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True, slots=True)
class _Row:
    time: str
    member: str
    principal: str
    method: str
    purpose: str
    decision: str
    rule_ids: tuple[str, ...]


def _rows(bundle: Mapping[str, Any]) -> list[_Row]:
    out: list[_Row] = []
    events = bundle.get("events")
    for item in events if isinstance(events, list) else []:
        ev = item.get("event") if isinstance(item, dict) else None
        if not isinstance(ev, dict) or not isinstance(ev.get("time"), str):
            continue  # malformed: the verification section already says the bundle is invalid
        rules = ev.get("rule_ids")
        out.append(
            _Row(
                time=ev["time"],
                member=str(ev.get("member_id") or "(unauthenticated)"),
                principal=str(ev.get("principal", "")),
                method=str(ev.get("method", "")),
                purpose=str(ev.get("purpose") or "(none)"),
                decision=str(ev.get("decision", "")),
                rule_ids=tuple(str(r) for r in rules) if isinstance(rules, list) else (),
            )
        )
    return out


def _bucketer(rows: Sequence[_Row]) -> tuple[str, int]:
    """Bucket by day (``YYYY-MM-DD``, 10 chars) for short spans, else by month (7 chars)."""
    days = sorted({r.time[:10] for r in rows})
    if not days:
        return "day", 10
    first = datetime.strptime(days[0], "%Y-%m-%d")
    last = datetime.strptime(days[-1], "%Y-%m-%d")
    return ("day", 10) if (last - first).days <= _DAY_BUCKETS_UP_TO else ("month", 7)


def _series_colors(names: Sequence[str]) -> dict[str, str]:
    return {
        n: _PALETTE[k] if k < len(_PALETTE) and n != "other" else _OTHER_COLOR
        for k, n in enumerate(names)
    }


def _top(counter: Counter[str]) -> list[str]:
    ranked = [n for n, _ in counter.most_common()]
    return ranked if len(ranked) <= _MAX_SERIES else [*ranked[: _MAX_SERIES - 1], "other"]


def _legend(colors: Mapping[str, str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{c}"></span>{_e(n)}</li>'
        for n, c in colors.items()
    )
    return f'<ul class="legend">{items}</ul>'


def _nice_step(peak: int) -> int:
    """A round tick step (1, 2 or 5 times a power of ten) giving at most about five ticks."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if peak / (factor * magnitude) <= 5:
                return factor * magnitude
        magnitude *= 10


def _stacked_columns(
    title: str,
    buckets: Sequence[str],
    series: Mapping[str, Sequence[int]],
    colors: Mapping[str, str],
) -> str:
    """Vertical stacked columns, one per bucket, with a y axis and bucket labels."""
    width, height, left, bottom, top = 960, 320, 56, 70, 16
    totals = [sum(s[k] for s in series.values()) for k in range(len(buckets))]
    step_y = _nice_step(max([*totals, 1]))
    peak = step_y * -(-max([*totals, 1]) // step_y)  # the axis ends on a round tick
    plot_w, plot_h = width - left - 12, height - bottom - top
    step = plot_w / max(len(buckets), 1)
    bar_w = max(1.0, step * 0.8)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>'
    ]
    for value in range(0, peak + 1, step_y):  # y axis ticks at round values
        y = top + plot_h - plot_h * value / peak
        parts.append(
            f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
        )
    label_every = max(1, len(buckets) // 20)
    for k, bucket in enumerate(buckets):
        x, y_base = left + k * step + (step - bar_w) / 2, float(top + plot_h)
        for name, values in series.items():
            if not values[k]:
                continue
            h = plot_h * values[k] / peak
            y_base -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y_base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colors[name]}"><title>{_e(bucket)} · {_e(name)}: {values[k]}</title>'
                "</rect>"
            )
        if k % label_every == 0:
            lx, ly = x + bar_w / 2, top + plot_h + 12
            parts.append(
                f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="end" '
                f'transform="rotate(-45 {lx:.1f} {ly:.1f})">{_e(bucket)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _stacked_rows(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    colors: Mapping[str, str],
) -> str:
    """Horizontal stacked bars, one per label (e.g. purposes), with their totals."""
    row_h, left, width = 30, 190, 960
    height = row_h * len(labels) + 20
    totals = [sum(s[k] for s in series.values()) for k in range(len(labels))]
    peak = max([*totals, 1])
    plot_w = width - left - 70
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>'
    ]
    for k, label in enumerate(labels):
        y, x = 10 + k * row_h, float(left)
        parts.append(f'<text x="{left - 8}" y="{y + 19}" text-anchor="end">{_e(label)}</text>')
        for name, values in series.items():
            if not values[k]:
                continue
            w = plot_w * values[k] / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{colors[name]}"><title>{_e(label)} · {_e(name)}: {values[k]}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 19}">{totals[k]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _by(
    rows: Sequence[_Row], key_of: Any, series_of: Any, keys: Sequence[str]
) -> tuple[dict[str, list[int]], dict[str, str]]:
    counter: Counter[str] = Counter(series_of(r) for r in rows)
    names = _top(counter)
    kept = set(names)
    index = {k: i for i, k in enumerate(keys)}
    series: dict[str, list[int]] = {n: [0] * len(keys) for n in names}
    for r in rows:
        name = series_of(r)
        series[name if name in kept else "other"][index[key_of(r)]] += 1
    return series, _series_colors(names)


def _verification_section(result: ReportVerification, bundle: Mapping[str, Any]) -> str:
    if not result.ok or result.report is None:
        return (
            '<section id="verification" class="bad"><h2>Verification: FAILED</h2>'
            f"<p><strong>{_e(result.error or 'the bundle does not verify')}</strong></p>"
            "<p>The journal export could not be verified with the trusted key. Treat it as "
            "altered: the figures below come from an <strong>unverified</strong> bundle and "
            "prove nothing.</p></section>"
        )
    r = result.report
    complete = (
        f"complete range of leaves [{r.complete_range[0]}, {r.complete_range[1]}) — no event "
        "removed or inserted in it"
        if r.complete_range
        else "filtered export: deletions outside these events cannot be seen from this bundle"
    )
    consistency = (
        f"consistent with the earlier checkpoint of size {r.consistent_with_size} "
        "(no rollback, no fork)"
        if r.consistent_with_size is not None
        else "no earlier checkpoint given: keep this one to check the next export against it"
    )
    checks = [
        f"checkpoint signed by the trusted key of <code>{_e(r.origin)}</code>",
        f"tree size {r.tree_size}, root <code>{_e(r.root_hash)}</code>",
        f"{r.events_verified} event(s) included in the signed tree (RFC 9162 inclusion proofs)",
        f"{r.events_withheld} further leaf hash(es) included, their events withheld from this "
        "reader (another member's accesses)",
        f"personal fields: {r.personal_revealed} revealed and matching their commitments, "
        f"{r.personal_absent} erased or withheld",
        _e(complete),
        _e(consistency),
    ]
    items = "".join(f"<li>{c}</li>" for c in checks)
    return (
        '<section id="verification" class="good"><h2>Verification: VALID</h2>'
        f"<ul>{items}</ul></section>"
    )


def _refusal_table(rows: Sequence[_Row]) -> str:
    denied = [r for r in rows if r.decision == "deny"][-_MAX_REFUSALS_LISTED:]
    if not denied:
        return "<p>No refusal in this export.</p>"
    body = "".join(
        f"<tr><td>{_e(r.time)}</td><td>{_e(r.member)}</td><td>{_e(r.principal)}</td>"
        f"<td>{_e(r.method)}</td><td>{_e(r.purpose)}</td><td>{_e(', '.join(r.rule_ids))}</td></tr>"
        for r in reversed(denied)
    )
    return (
        '<table class="refusals"><thead><tr><th>time (UTC)</th><th>member</th><th>principal</th>'
        "<th>method</th><th>purpose</th><th>rule(s)</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


_CSS: Final = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}.meta{color:#555;margin-top:0}
section{margin:1.6rem 0}section.good{border-left:6px solid #2ca02c;padding:.2rem 1rem;
background:#f1faf1}section.bad{border-left:6px solid #d62728;padding:.2rem 1rem;background:#fdf0f0}
.chart text{font:11px system-ui,sans-serif;fill:#333}.chart .grid{stroke:#ddd;stroke-width:1}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;margin:.3rem 0}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.35em;vertical-align:-.1em}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #ddd;padding:.25rem .4rem;text-align:left}
.figures td:last-child{text-align:right}code{font-size:12px;word-break:break-all}
"""


def render_report(
    bundle: Mapping[str, Any],
    result: ReportVerification,
    *,
    generated_at: datetime | None = None,
    title: str = "Vigie — access journal report",
) -> str:
    """The HTML page for ``bundle`` and its verification ``result`` (a pure function)."""
    rows = sorted(_rows(bundle), key=lambda r: r.time)
    unit, width = _bucketer(rows)
    buckets = sorted({r.time[:width] for r in rows})
    over_time, time_colors = _by(rows, lambda r: r.time[:width], lambda r: r.member, buckets)
    purposes = [p for p, _ in Counter(r.purpose for r in rows).most_common()]
    by_purpose, purpose_colors = _by(rows, lambda r: r.purpose, lambda r: r.member, purposes)
    denied_per: defaultdict[str, int] = defaultdict(int)
    for r in rows:
        if r.decision == "deny":
            denied_per[r.time[:width]] += 1
    refusals = {"refused": [denied_per[b] for b in buckets]}
    denied = sum(refusals["refused"])
    members = sorted({r.member for r in rows})
    period = f"{rows[0].time} — {rows[-1].time}" if rows else "no event"
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    figures = "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>"
        for k, v in (
            ("events", len(rows)),
            ("allowed", len(rows) - denied),
            ("refused", denied),
            ("members", len(members)),
            ("period (UTC)", period),
        )
    )
    unverified = "" if result.ok else " (UNVERIFIED)"
    time_chart = _stacked_columns("Accesses per member over time", buckets, over_time, time_colors)
    purpose_chart = _stacked_rows("Accesses per purpose", purposes, by_purpose, purpose_colors)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="meta">Journal <code>{_e(bundle.get("origin", "?"))}</code> · generated {_e(when)}</p>
{_verification_section(result, bundle)}
<section id="summary"><h2>Summary{unverified}</h2>
<table class="figures"><tbody>{figures}</tbody></table></section>
<section id="accesses-over-time"><h2>Accesses per member, per {unit}{unverified}</h2>
{_legend(time_colors)}{time_chart}
</section>
<section id="purposes"><h2>Accesses per purpose and member{unverified}</h2>
{_legend(purpose_colors)}{purpose_chart}
</section>
<section id="refusals"><h2>Refusals per {unit}{unverified}</h2>
{_stacked_columns("Refusals over time", buckets, refusals, {"refused": _DENY_COLOR})}
<h3>Latest refusals</h3>{_refusal_table(rows)}
</section>
</body></html>
"""
