"""Errors that mean "the user asked for something wrong": the CLI prints them without a traceback."""


class UserError(Exception):
    """A mistake in the user's input (spec, path, model name): reported as one clear message, exit code 2."""

    exit_code = 2


class DataError(UserError):
    """Data that cannot be used as asked (no file, nothing parses, unknown dataset): exit code 1."""

    exit_code = 1
