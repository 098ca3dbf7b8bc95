"""Errors a user can act on: each carries a one-line message that names the problem and the fix."""

from __future__ import annotations


class BilatError(Exception):
    """A run that failed for a reason the user can fix; the CLI prints it on one line, exit code 1."""

    exit_code = 1


class InputError(BilatError):
    """Bad input on the command line, in a spec file or in a Python call; the CLI exits with code 2."""

    exit_code = 2


class FieldError(InputError):
    """A bad value of one named field (``batch_size``, ``threats[0].eps``, ``eps``).

    ``field`` is the field's name in the library's own vocabulary and ``problem`` says what is
    wrong and how to fix it; a caller names the field in its user's vocabulary with ``renamed``
    (a flag such as ``--batch-size`` for the CLI, a key path for TOML, the argument for Python).
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    def renamed(self, name: str) -> FieldError:
        """The same problem reported under ``name``."""
        return FieldError(name, self.problem)


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived: the command stops where it is (a cell being written is rolled back).

    A ``BaseException``, so no ``except Exception`` on the way swallows it. ``exit_code`` is
    ``128 + signal number``: 143 for SIGTERM, 130 for SIGINT.
    """

    def __init__(self, signal_name: str, signal_number: int) -> None:
        self.signal_name = signal_name
        self.exit_code = 128 + signal_number
        super().__init__(signal_name)
