"""Run the benchmarks: every ``bench/bench_*.py`` in turn (``make bench``).

    python -m bench [NAME ...]      # e.g. ``python -m bench journal gateway``; default: all
    python -m bench --list

Each module runs with its own defaults (its command-line options are not forwarded; run
``python -m bench.bench_<name> --help`` for those): its ``main()`` when that takes no
argument, else the module as a script (its ``if __name__ == "__main__"`` block). A module
without a ``main`` is skipped with a message. Benchmarks print figures and never fail on
timing; a benchmark that crashes is reported and the others still run (exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import runpy
import sys
import time
import traceback
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _modules() -> list[str]:
    return sorted(p.stem for p in _HERE.glob("bench_*.py"))


def _takes_no_argument(fn: object) -> bool:
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not inspect.Parameter.empty
        or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def _run(name: str) -> str:
    """Run one benchmark module; returns how it went ("ran", "skipped" or "failed")."""
    qualified = f"bench.{name}"
    saved = sys.argv
    sys.argv = [qualified]  # each benchmark parses its own (default) options
    try:
        module = importlib.import_module(qualified)
        main = getattr(module, "main", None)
        if not callable(main):
            print(f"\n(skipped {qualified}: it has no main())")
            return "skipped"
        if _takes_no_argument(main):
            result = main()
            if inspect.isawaitable(result):
                asyncio.run(result)  # type: ignore[arg-type]
        else:
            print(f"({qualified}.main() needs arguments: running the module with its defaults)")
            runpy.run_module(qualified, run_name="__main__")
        return "ran"
    except SystemExit as e:
        return "ran" if e.code in (None, 0) else "failed"
    except Exception:
        traceback.print_exc()
        return "failed"
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (bench_<name>.py); default all")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    available = _modules()
    if args.list:
        print("\n".join(available))
        return 0
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in args.names] or available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (have: {', '.join(available)})")
    outcomes: dict[str, tuple[str, float]] = {}
    for name in wanted:
        print(f"\n# {name}\n", flush=True)
        start = time.perf_counter()
        outcomes[name] = (_run(name), time.perf_counter() - start)
    print("\n# summary\n")
    for name, (outcome, seconds) in outcomes.items():
        print(f"- {name}: {outcome} ({seconds:.0f} s)")
    return 1 if any(o == "failed" for o, _ in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
