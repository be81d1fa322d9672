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


def unreadable(path: object, exc: BaseException, damaged: str, what: str = "as a raster"
               ) -> InputError:
    """The error for a file that could not be read: a permission problem is named as such
    (GDAL reports it as an I/O error, like a damaged file); anything else gets ``damaged``,
    the sentence for a broken file (e.g. "the file is truncated: download it again")."""
    if isinstance(exc, PermissionError) or "permission denied" in str(exc).lower():
        return InputError(f"{path} cannot be read (permission denied); fix its permissions "
                          "(e.g. chmod u+r) or run rsbench as a user who may read it")
    return InputError(f"{path} cannot be read {what} ({exc}); {damaged}")
