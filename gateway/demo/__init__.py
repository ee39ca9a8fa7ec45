"""``vigie demo``: the whole of Vigie, end to end, on the embedded default (SQLite, dev PKI).

The steps are listed in :mod:`gateway.demo._scenario`; every figure shown is what the real
gateway answered over mutual TLS to the client SDK.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gateway.demo._data import DEMO_NIR
from gateway.demo._scenario import DemoReport, run_scenario

__all__ = ["DEMO_NIR", "DemoReport", "run_demo", "run_scenario"]


async def run_demo(root: Path, *, quick: bool = False, console: Console | None = None) -> int:
    """Run the demo into ``root``; returns the process exit code (0 when every step held)."""
    console = console or Console()
    report = await run_scenario(root, quick=quick, console=console)
    problems = [r for r in report.refusals if r[2] not in {"NOT_FOUND", "PERMISSION_DENIED"}]
    if problems or not report.retraction_acknowledged:
        console.print(f"[red]the demo found a problem:[/] {problems or 'retraction not seen'}")
        return 1
    return 0
