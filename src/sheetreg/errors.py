"""Errors that sheetreg turns into a clean one-line message and an exit code.

Every message must be safe to print: it names files, sheets and cells, never cell values,
because a cell value in a therapy register is personal (and likely health) data.
"""

from __future__ import annotations


class SheetregError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class UnusableWorkbook(SheetregError):
    """The file cannot be used as a register at all (exit 2)."""

    exit_code = 2


class WriteRefused(SheetregError):
    """sheetreg declined to write, to keep the user's data safe (exit 1)."""

    exit_code = 1


class PatchError(WriteRefused):
    """The lossless writer cannot apply an edit without risking the workbook."""


class FidelityError(WriteRefused):
    """A written package differs from the original in more than the planned edits."""
