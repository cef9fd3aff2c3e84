"""User-facing errors: one line that names the file, key or value and what to do.

Exit codes of ``dacode-bench`` (README "Exit codes"):

- 0 success;
- 1 a check that ran and failed — :class:`CheckFailed` (gate drift, a data check that refuses the data);
- 2 the input is wrong — :class:`HarnessError` (suite, flags, paths, data, checkpoints, a plug-in
  that raises or returns the wrong thing);
- 3 an unexpected internal error — anything else; the CLI prints one line and writes the
  traceback to a log file in the results root.
"""
from __future__ import annotations


class HarnessError(Exception):
    """An error caused by the user's input (suite file, CLI arguments, data, plug-ins).

    The CLI prints ``error: <message>`` and exits with :attr:`exit_code`, without a traceback.
    """

    exit_code = 2


class CheckFailed(HarnessError):
    """A check that ran and failed (the gate found drift, the data check refused the data)."""

    exit_code = 1


class DataMissingError(CheckFailed):
    """Benchmark data that a profile needs is absent; raised before any compute is spent."""


class NonFiniteError(HarnessError):
    """A loss, a weight or a restored image became NaN or infinite; nothing of it is stored."""
