"""User-facing errors: each one is printed by the CLI as a single plain line, no traceback."""

from __future__ import annotations


class RsbenchError(Exception):
    """A problem with the user's input or environment; the message names the file and the fix."""

    exit_code = 1


class InputError(RsbenchError):
    """Bad or missing input data (exit code 1)."""


class UsageError(RsbenchError):
    """Options that cannot work together or are out of range (exit code 2)."""

    exit_code = 2
