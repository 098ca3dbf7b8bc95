"""Errors a user can act on: each carries a one-line message that names the problem and the fix."""

from __future__ import annotations


class BilatError(Exception):
    """A run that failed for a reason the user can fix; the CLI prints it on one line, exit code 1."""

    exit_code = 1


class InputError(BilatError):
    """Bad input on the command line or in a spec file; the CLI exits with code 2."""

    exit_code = 2
