"""The ``ambulink`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ambulink import __version__
from ambulink.errors import AmbulinkError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ambulink",
        description="ambulink: real-time ECG telemetry and consult for emergency medical services.",
    )
    parser.add_argument("--version", action="version", version=f"ambulink {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from ambulink.evaluation.commands import register_bench, register_eval
    from ambulink.hub.commands import register_hub
    from ambulink.reports.command import register_report

    register_hub(subparsers)
    register_eval(subparsers)
    register_bench(subparsers)
    register_report(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except AmbulinkError as exc:
        print(f"ambulink {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
