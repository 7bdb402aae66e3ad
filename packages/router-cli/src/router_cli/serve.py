"""`router-cli serve`: the HTTP server (router_runtime.server) on uvicorn, one model per process.

The flags and the run are router_runtime.cli's, shared with `router-serve` (the torch-free install's command).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    from router_runtime.cli import add_serve_arguments

    parser = sub.add_parser("serve", help="serve /score and /route (and /lengths with --length-model) over HTTP (see docs/serving.md)")
    add_serve_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build the app and serve until interrupted."""
    from router_runtime.cli import run_serve

    return run_serve(args)
