"""The `router-cli` command: train, infer, export, serve, evaluate, list, schema (run `router-cli --help`).

Only argparse is imported at start-up; each subcommand imports what it needs when it runs, so
`router-cli --help` and the prompt-agnostic paths never load torch.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from router_cli import evaluate, export, infer, list_models, schema, serve, train

COMMANDS = (train, infer, export, serve, evaluate, list_models, schema)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that it unwinds exactly as on Ctrl-C (no partial model is saved)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="router-cli",
        description="Learn which LLM answers a prompt best from human pairwise preferences, and score models.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad usage or invalid spec, 1 other failures)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad usage and 0 on --help
        return int(exit_.code or 0)
    _configure_logging(args.debug)
    from router_cli._errors import report

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.run(args))
    except Terminated:
        print("terminated (SIGTERM); nothing was saved by the interrupted step", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted; nothing was saved by the interrupted step", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place that turns errors into exit codes
        return report(error, debug=args.debug)
    finally:
        signal.signal(signal.SIGTERM, previous)


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _configure_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if not debug else "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.captureWarnings(True)
    for noisy in ("numba", "urllib3", "filelock", "fsspec", "httpx", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
