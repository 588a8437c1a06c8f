"""sheetreg: keeps a therapy practice's Excel client register honest under the GDPR.

The public Python API for scripts: :func:`write_cells` applies cell edits to any .xlsx/.xlsm
workbook with all of sheetreg's guards, and :func:`read_register` reads a register.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sheetreg.errors import FidelityError, PatchError, SheetregError, WriteRefused

__version__ = "0.1.0"
__all__ = [
    "FidelityError",
    "PatchError",
    "SheetregError",
    "WriteRefused",
    "__version__",
    "read_register",
    "write_cells",
]

if TYPE_CHECKING:
    from sheetreg.workbook import read_register, write_cells


def __getattr__(name: str) -> Any:
    # Imported on first use, so `sheetreg --help` and `validate` start fast.
    if name in {"write_cells", "read_register"}:
        from sheetreg import workbook

        return getattr(workbook, name)
    raise AttributeError(name)
