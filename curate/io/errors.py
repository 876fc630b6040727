"""Errors the CLI turns into a one-line message and exit code 2 (bad input or usage).

Anything else is a bug and keeps its traceback.
"""


class OffcurateError(Exception):
    """A known failure with a message meant for the user (name the file, row or column)."""


class InputError(OffcurateError):
    """The input is missing, empty, corrupt or has the wrong columns/types."""


class OutputExistsError(OffcurateError):
    """The output folder already holds a finished result; refusing to overwrite it silently."""


class ReportedElsewhere(OffcurateError):
    """Under torchrun, another rank says this failure: this rank exits 2 without a word of its own."""
