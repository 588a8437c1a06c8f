"""The register in memory: one table per sheet, every cell's Excel position kept.

Pure data, no file handles. `workbook.py` builds it; the rules read it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import operator
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sheetreg import values
from sheetreg.schema import Column, Sheet

_T = TypeVar("_T")


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic cells.

    Reading and checking a register allocates cell values, row lists and column tuples that
    hold no reference cycles; the collector's repeated full passes over them would cost more
    than the work itself (measured: 3x on transposing 200,000 rows). On the way out the
    survivors are frozen (moved out of the collector's generations, still freed by reference
    counting as usual), or the first allocation after re-enabling would trigger a full
    pass over all of them. Nested use is fine.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


def return_free_memory() -> bool:
    """Hand the C heap's free pages back to the system; True when it could be asked.

    python-calamine builds each sheet in Rust-allocated memory before it becomes Python
    values; once freed, that memory stays in the process (glibc keeps it for later
    ``malloc`` calls, which Python's own small objects do not make). After reading 100,000
    clients that is about 150 MiB held for nothing through the rest of a run. glibc's
    ``malloc_trim`` gives it back (in milliseconds); elsewhere this does nothing.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim  # glibc's; musl has none
    except (OSError, AttributeError):
        return None


def quick_init(cls: type[_T]) -> type[_T]:
    """Give a frozen dataclass an ``__init__`` that stores the fields straight into the new
    instance: the one dataclasses generates goes through ``object.__setattr__`` per field,
    twice as slow when a register makes tens of thousands (a status per client, a hold per
    invoice). A class with ``slots=True`` (less than half the memory of one with a
    ``__dict__``: 80 bytes for a hold of five fields, not 184) is served through its slots'
    own descriptors. Same parameters and defaults; the instances stay frozen, and equality,
    ``repr``, ``replace`` and pickling are the dataclass's own.
    """
    import dataclasses

    slotted = "__slots__" in cls.__dict__
    params, body = [], []
    namespace: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init takes plain fields only")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        if slotted:
            # The slot's descriptor stores past the class's frozen __setattr__.
            namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
            body.append(f"    _set_{f.name}(self, {f.name})\n")
        else:
            body.append(f"    d[{f.name!r}] = {f.name}\n")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init does not call __post_init__")
    head = "" if slotted else "    d = self.__dict__\n"
    source = f"def __init__(self, {', '.join(params)}):\n{head}{''.join(body)}"
    exec(source, namespace)  # built from the class's own field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]
    return cls


def column_letter(index: int) -> str:
    """Excel's column letter for a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """The 0-based index of an Excel column letter (A -> 0)."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


@dataclass
class Table:
    """One sheet of the register: its header, its data rows and where they sit in Excel."""

    spec: Sheet
    name: str  # the tab's name in this workbook
    header_row: int  # Excel row number of the header (1 when the sheet starts at A1)
    first_col: int  # 0-based column index of the table's first column
    header: list[Any]
    columns: dict[str, int]  # schema key -> 0-based index into each row
    rows: list[list[Any]]  # raw values as read; rows[i] is Excel row header_row + 1 + i
    unknown_columns: list[tuple[int, str]] = field(default_factory=list)
    _by_column: dict[int, tuple[Any, ...]] | None = field(default=None, repr=False, compare=False)
    _nonblank: list[int] | None = field(default=None, repr=False, compare=False)
    _distinct: dict[int, set[Any]] = field(default_factory=dict, repr=False, compare=False)
    # Results the rules compute once per table (e.g. the rows of each client ID).
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def distinct_if_known(self, index: int) -> set[Any] | None:
        """The distinct values of column ``index`` if already computed, else None."""
        return self._distinct.get(index)

    def distinct(self, index: int) -> set[Any]:
        """The distinct raw values of column ``index`` (hashing is C-speed)."""
        found = self._distinct.get(index)
        if found is None:
            found = set(self.column_at(index)) if index < self.width else {""}
            # Keep only sets that deduplicate well: a set of 100,000 unique phone numbers
            # costs megabytes and saves nothing on a second pass.
            if len(found) * 4 <= len(self.rows):
                self._distinct[index] = found
        return found

    @property
    def width(self) -> int:
        """The number of columns: the header's or the rows', whichever is wider."""
        return max(len(self.rows[0]) if self.rows else 0, len(self.header))

    def column_at(self, index: int, *, keep: bool = True) -> tuple[Any, ...]:
        """Every data row's raw value in column ``index`` ("" past a short row); kept for
        the next call unless ``keep`` is False.

        Columns are made one at a time, as asked for: the statuses read a dozen of a
        register's 27, and all 27 at once would hold 28 MB at 100,000 clients.
        """
        columns = self._by_column
        if columns is None:
            columns = self._by_column = {}
        found = columns.get(index)
        if found is None:
            try:
                # python-calamine's grids are rectangular: one C-speed pass.
                found = tuple(map(operator.itemgetter(index), self.rows))
            except IndexError:
                found = tuple(row[index] if index < len(row) else "" for row in self.rows)
            if keep:
                columns[index] = found
        return found

    def columns_data(self) -> list[tuple[Any, ...]]:
        """The rows transposed: one tuple of raw values per column (each kept)."""
        width = self.width
        columns = self._by_column
        if columns is None:
            columns = self._by_column = {}
        rows = self.rows
        if len(columns) < width and rows and set(map(len, rows)) == {len(rows[0])}:
            # python-calamine's grids are rectangular: all columns in one C-speed transpose
            # (twice as fast as a pass for each); a column already made stays as it is.
            for i, column in enumerate(zip(*rows, strict=True)):
                columns.setdefault(i, column)
        return [self.column_at(i) for i in range(width)]

    def nonblank_rows(self) -> list[int]:
        """Indices of data rows with anything in them (calamine gives "" for empty cells)."""
        if self._nonblank is None:
            self._nonblank = [i for i, row in enumerate(self.rows) if row.count("") < len(row)]
        return self._nonblank

    def has(self, key: str) -> bool:
        """True when the sheet has the column with schema key ``key``."""
        return key in self.columns

    def letter(self, key: str) -> str:
        """The Excel column letter of a schema column."""
        return column_letter(self.first_col + self.columns[key])

    def letter_at(self, index: int) -> str:
        """The Excel column letter of a 0-based index into the rows."""
        return column_letter(self.first_col + index)

    def excel_row(self, i: int) -> int:
        """The Excel row number of data row ``i``."""
        return self.header_row + 1 + i

    def ref(self, i: int, key: str) -> str:
        """The cell reference (``E14``) of data row ``i``'s column ``key``."""
        return f"{self.letter(key)}{self.excel_row(i)}"

    def get(self, i: int, key: str) -> Any:
        """The raw value of data row ``i``'s column ``key`` ("" when the column is absent)."""
        idx = self.columns.get(key)
        if idx is None:
            return ""
        row = self.rows[i]
        return row[idx] if idx < len(row) else ""

    def column_values(self, key: str) -> tuple[Any, ...]:
        """Every data row's raw value in column ``key``."""
        idx = self.columns.get(key)
        if idx is None or idx >= self.width:
            return ("",) * len(self.rows)
        return self.column_at(idx)

    def text(self, i: int, key: str) -> str | None:
        """Data row ``i``'s column ``key`` as text, None when empty."""
        return values.as_text(self.get(i, key))

    def date(self, i: int, key: str) -> dt.date | None:
        """Data row ``i``'s column ``key`` as a date; None when empty or unreadable."""
        try:
            return values.as_date(self.get(i, key))
        except ValueError:
            return None

    def yes(self, i: int, key: str) -> bool:
        """True when data row ``i``'s column ``key`` says Kyllä/Yes."""
        return values.as_yes(self.get(i, key))

    def column_spec(self, key: str) -> Column:
        """The schema column for ``key``."""
        return self.spec.column(key)


@dataclass(frozen=True)
class Snapshot:
    """What the file was when it was read; a write refuses if the file is no longer this."""

    path: Path
    sha256: str  # of the bytes on disk (the encrypted file, for a password-protected one)
    encrypted: bool = False  # the file is password-protected; it is written back encrypted


@dataclass
class Register:
    """The whole workbook as the rules see it."""

    snapshot: Snapshot
    sheet_names: list[str]
    tables: dict[str, Table]  # schema sheet key -> table
    settings: dict[str, str]  # setting key -> value text
    settings_rows: dict[str, int]  # setting key -> Excel row number on the Settings sheet
    lang: str
    # Sheet name -> refs of formula cells, and merged ranges ("B1:C1"); None when read
    # without them (only validation reads them: see read_register's ``formulas``).
    formula_cells: dict[str, list[str]] | None = field(default_factory=dict)
    merged_ranges: dict[str, list[str]] | None = field(default_factory=dict)
    # Sheets that are not record tables (Settings, Instructions, the user's own sheets):
    # sheet name -> ((first row, first column), grid), kept for workbook-wide scans.
    other_sheets: dict[str, tuple[tuple[int, int], list[list[Any]]]] = field(default_factory=dict)
    # Results the rules compute once per register and day (e.g. every client's status).
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def path(self) -> Path:
        """The workbook's path."""
        return self.snapshot.path

    @property
    def encrypted(self) -> bool:
        """True when the workbook is password-protected (encrypted) on disk."""
        return self.snapshot.encrypted

    def table(self, key: str) -> Table | None:
        """The table for schema sheet ``key``, or None when the workbook lacks it."""
        return self.tables.get(key)
