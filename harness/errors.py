"""User-facing errors: one line that names the file, key or value and what to do."""
from __future__ import annotations


class HarnessError(Exception):
    """An error caused by the user's input (suite file, CLI arguments, data).

    The CLI prints ``error: <message>`` and exits with status 2, without a traceback.
    """


class DataMissingError(HarnessError):
    """Benchmark data that a profile needs is absent; raised before any compute is spent."""
