"""The ``vigie`` command line: one sub-command per task, ``--help`` everywhere, exit codes.

Exit codes: 0 success, 1 the task ran and found a problem (a failed check), 2 bad usage or
configuration (argparse's own convention), 3 a needed file or service is missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.cli import _commands
from gateway.errors import FailedPreconditionError, NotFoundError, VigieError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigie",
        description="Vigie: secure AMO/AMC fraud-suspicion exchange gateway.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _commands.REGISTRY:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _commands.CliError as e:
        print(f"vigie {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (FailedPreconditionError, NotFoundError) as e:  # a needed file or state is missing
        print(f"vigie {args.command}: error: {e.message}", file=sys.stderr)
        return 3
    except VigieError as e:  # any other refusal of ours: the message names field and rule
        print(f"vigie {args.command}: error: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
