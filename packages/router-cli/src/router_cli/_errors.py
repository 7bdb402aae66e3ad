"""Turning exceptions into one clear line on stderr and an exit code."""

from __future__ import annotations

import sys
import traceback

from router_core.errors import UserError


def report(error: BaseException, debug: bool) -> int:
    """Print `error` for a person (a traceback only with --debug) and return the exit code."""
    # Imported here, not at start-up: router_core.specs loads every spec class (about 0.3 s), which
    # `router-cli infer` of an exported directory never needs.
    from pydantic import ValidationError

    from router_core.specs.errors import format_validation_error

    if debug:
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, ValidationError):
        print(f"error: invalid training spec:\n{format_validation_error(error)}", file=sys.stderr)
        return 2
    if isinstance(error, UserError):
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
        print(f"error: {error.strerror}: {error.filename}", file=sys.stderr)
        return 1
    if not debug:
        print(f"error: {type(error).__name__}: {error} (run with --debug for the traceback)", file=sys.stderr)
    return 1
