"""Errors and warnings of the data layer.

Every class derives from :class:`harness.errors.HarnessError`, so the CLI prints
``error: <message>`` instead of a traceback: exit status 1 when the data check ran and refused
the data (:class:`DataIntegrityError`, :class:`DataMissingError`), 2 for wrong input. Each
message names the file or folder and says what to do.
"""
from __future__ import annotations

from harness.errors import CheckFailed, DataMissingError, HarnessError

__all__ = [
    "DataMissingError", "DataConfigError", "DataIntegrityError", "ImageReadError", "UnknownDatasetError",
    "ColumnDataError", "DownloadError", "ChecksumError", "NoPublicCopyError", "DataWarning", "ImageConversionWarning",
]


class DataConfigError(HarnessError):
    """The data config file (``dacode-bench-data.yaml``) is malformed or names a bad value."""


class DataIntegrityError(CheckFailed):
    """The data are present but wrong: counts, unpaired files, size mismatches, bad images.

    Raised by ``prepare`` before any compute is spent; the message is the ``data check`` report.
    """


class ImageReadError(HarnessError):
    """An image file cannot be decoded (truncated, not an image, unsupported bit depth)."""


class UnknownDatasetError(HarnessError):
    """A suite or command names a dataset id that the catalogue does not know."""


class ColumnDataError(HarnessError):
    """A suite column's (task, dataset, sigma, parts) does not fit the dataset it names."""


class DownloadError(HarnessError):
    """A Hugging Face Hub download cannot be done as asked (no pin, offline, not found)."""


class ChecksumError(DownloadError):
    """A downloaded file's sha256 differs from the pinned value."""


class NoPublicCopyError(DownloadError):
    """No verified public copy to download: the message says where the set is published."""


class DataWarning(UserWarning):
    """Usable data worth knowing about: counts off under ``counts: warn``, converted images, orphans in training sets."""


class ImageConversionWarning(DataWarning):
    """A grayscale, palette, RGBA or CMYK image was converted to RGB (as the PromptIR loaders do)."""
