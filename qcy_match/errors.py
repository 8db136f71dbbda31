"""Every error qcy_match raises on purpose, under one base class.

Catch :class:`QcyError` to handle any of them. Each also subclasses the builtin it has always been (``ValueError``
or ``ImportError``), so code written as ``except ValueError`` keeps working.
"""

from __future__ import annotations


class QcyError(Exception):
    """Base of the errors qcy_match raises for bad input, bad files or missing extras."""


class InputError(QcyError, ValueError):
    """A file that cannot be read at all (missing, unknown format, no header)."""


class RejectedRowsError(QcyError, ValueError):
    """Rows were rejected and the caller asked for strictness."""


class IndexFormatError(QcyError, ValueError):
    """An index directory that is missing, incomplete, corrupted or from an incompatible version."""


class FilterError(QcyError, ValueError):
    """A filter that names an unknown field or value."""


class UnknownCodeError(QcyError, ValueError):
    """A code or name that is not in GB/T 4754-2017."""


class UnknownChainError(QcyError, ValueError):
    """A chain or tag name that is not known."""


class MissingExtraError(QcyError, ImportError):
    """An optional feature whose extra is not installed."""


class UsageError(QcyError, ValueError):
    """Arguments that do not fit together, such as an index of needs where achievements are searched."""


class OutputError(QcyError, ValueError):
    """An output that cannot or must not be written: it would replace an input, or is a directory, say."""
