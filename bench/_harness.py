"""Measure a call: throughput and p50/p99 latency with a fixed number of concurrent callers.

Figures are printed beside a baseline measured in the same run; nothing here ever fails on
timing. Loads only target 127.0.0.1, are bounded in count, and stop by themselves.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Result", "measure", "print_table"]


@dataclass(frozen=True)
class Result:
    name: str
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


async def measure(
    name: str,
    call: Callable[[], Awaitable[object]],
    *,
    calls: int,
    concurrency: int,
    warmup: int = 50,
) -> Result:
    """Run ``calls`` invocations of ``call`` with ``concurrency`` workers; return the figures."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(name, len(latencies), elapsed, statistics.median(latencies) * 1e3, p99 * 1e3)


def print_table(title: str, baseline: Result, results: list[Result]) -> None:
    print(f"\n## {title}\n")
    print("| case | calls | calls/s | p50 ms | p99 ms | throughput vs baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in [baseline, *results]:
        ratio = r.per_second / baseline.per_second if baseline.per_second else 0.0
        print(
            f"| {r.name} | {r.calls} | {r.per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {ratio:.2f}x |"
        )
