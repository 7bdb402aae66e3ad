"""`router-cli schema`: print (or write) the JSON Schema of training specs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("schema", help="print the JSON Schema of training specs")
    parser.add_argument("--output", "--output-path", dest="output", help="write it to this file instead of stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print or write the schema."""
    from router_cli._output import write_text_output
    from router_core.specs.errors import schema_text

    text = schema_text()
    if args.output:
        write_text_output(Path(args.output), text)
    else:
        print(text, end="")
    return 0
