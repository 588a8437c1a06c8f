"""The only module that opens and writes the user's workbook.

Reading: the bytes are read once, hashed (so a later write can refuse if the file changed),
recognised (xlsx, legacy xls, encrypted, CSV, damaged zip…) and handed to python-calamine.
Writing: a plan of cell edits goes through the lossless package patcher (`xlsxpatch`) and
then these guards, in order: lock files of Excel and LibreOffice, changed-since-read, the
fidelity check, a temporary file in the same folder, a reopen check with an independent reader
(python-calamine), a backup of the previous version, and an atomic replace.

Password-protected (encrypted) workbooks: :func:`load_package` reads the file and decrypts it
in memory with the ``workbook-password`` from the keyring (`sheetreg.secrets`). Everything is
read, patched and checked on the plain package in memory; what goes to disk (the temporary
file, the workbook, the backup) is always encrypted, and the snapshot's hash is that of the
file on disk. A plain copy of an encrypted register is never written anywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from sheetreg import crypto, forking, values
from sheetreg.errors import FidelityError, SheetregError, UnusableWorkbook, WriteRefused
from sheetreg.register import (
    Register,
    Snapshot,
    Table,
    column_index,
    column_letter,
    paused_gc,
    return_free_memory,
)
from sheetreg.schema import (
    CLIENTS,
    DATA_SHEETS,
    SETTINGS,
    Sheet,
    match_column,
    match_setting,
    match_sheet,
)
from sheetreg.secrets import WORKBOOK_PASSWORD, get_secret

if TYPE_CHECKING:
    from sheetreg.xlsxpatch import CellEdit, CellValue, PatchResult, Placed

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_CELL_START = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=[\"']([A-Z]+)(\d+)[\"']")
TEMP_MARK = ".sheetreg-"


# --- reading -------------------------------------------------------------------------------


def _load_bytes(path: Path) -> bytes:
    """The file's bytes: an .xlsx package or an encrypted one; anything else is refused."""
    if not path.exists():
        raise UnusableWorkbook(f"{path}: file not found / tiedostoa ei löydy.")
    if path.is_dir():
        raise UnusableWorkbook(f"{path}: is a folder, not a workbook / on kansio, ei työkirja.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableWorkbook(
            f"{path}: cannot be read ({exc.strerror}) / tiedostoa ei voi lukea."
        ) from None
    if not data:
        raise UnusableWorkbook(f"{path}: the file is empty / tiedosto on tyhjä.")
    if data.startswith(_OLE_MAGIC) and crypto.is_encrypted(data):
        return data
    if data.startswith(_OLE_MAGIC) and _ENCRYPTION_INFO in data:
        raise UnusableWorkbook(
            f"{path}: the workbook is password-protected (encrypted) but damaged; restore it "
            "from a backup. / Salattu työkirja on vioittunut."
        )
    _refuse_unless_package(path, data)
    return data


def _refuse_unless_package(path: Path, data: bytes) -> None:
    """Refuse bytes that are not a zip package (.xlsx), naming what they look like."""
    if data.startswith(_OLE_MAGIC):
        raise UnusableWorkbook(
            f"{path}: this is an old Excel 97-2003 workbook (.xls). Save it as .xlsx in Excel "
            "(File > Save As). / Vanha .xls-työkirja: tallenna se .xlsx-muodossa."
        )
    if not data.startswith(b"PK\x03\x04"):
        head = data[:2048]
        looks_text = all(b >= 9 for b in head[:512]) and (b"," in head or b";" in head)
        what = "a text/CSV file" if looks_text else "not an Excel workbook"
        raise UnusableWorkbook(
            f"{path.name}: {what} (despite its name). Open it in Excel and save it as an Excel "
            "workbook (.xlsx). / Tiedosto ei ole Excel-työkirja."
        )


@dataclass(frozen=True)
class Package:
    """A workbook as read once: the bytes on disk and the plain .xlsx package they hold.

    For a plain workbook both are the same bytes. Nothing here is shown by ``repr``: the
    package holds personal data and ``password`` is a secret.
    """

    data: bytes = field(repr=False)  # the file as on disk: what the snapshot hashes
    plain: bytes = field(repr=False)  # the .xlsx package: ``data``, or decrypted from it
    password: str | None = field(default=None, repr=False)  # None unless encrypted

    @property
    def encrypted(self) -> bool:
        """True when the file on disk is password-protected."""
        return self.password is not None


def _store_hint(path: Path) -> str:
    return f'sheetreg secret set {WORKBOOK_PASSWORD} --workbook "{path}"'


def workbook_password(path: Path | str) -> str:
    """The ``workbook-password`` stored in the keyring for the encrypted workbook ``path``.

    A missing secret or an unusable keyring (a refused plaintext one, a locked one) raises
    :class:`UnusableWorkbook` naming the file and telling how to store the password.
    """
    path = Path(path)
    try:
        password = get_secret(WORKBOOK_PASSWORD, path)
    except SheetregError as exc:
        raise UnusableWorkbook(
            f"{path}: the workbook is password-protected (encrypted) and its password cannot "
            f"be read from the keyring: {exc}"
        ) from None
    if not password:
        raise UnusableWorkbook(
            f"{path}: the workbook is password-protected (encrypted) and no {WORKBOOK_PASSWORD} "
            f"is stored in the keyring for it. Store it with: {_store_hint(path)} / Työkirja on "
            "salattu, eikä sen salasanaa ole tallennettu avainnippuun."
        )
    return password


def _open_package(path: Path, data: bytes, password: str | None) -> Package:
    """``data`` as a :class:`Package`: decrypted in memory when it is encrypted.

    ``data`` comes from :func:`_load_bytes`, which lets through a zip package or an encrypted
    (OLE) file only.
    """
    if not data.startswith(_OLE_MAGIC):
        return Package(data, data)
    from_keyring = password is None
    if password is None:
        password = workbook_password(path)
    try:
        plain = crypto.decrypt(data, password, source=path)
    except crypto.WrongPassword:
        if from_keyring:
            raise UnusableWorkbook(
                f"{path}: the workbook is password-protected (encrypted) and the "
                f"{WORKBOOK_PASSWORD} stored in the keyring does not open it. Store the right "
                f"one with: {_store_hint(path)} / Avainnippuun tallennettu salasana ei avaa "
                "salattua työkirjaa."
            ) from None
        raise UnusableWorkbook(
            f"{path}: the password does not open this encrypted workbook. / Salasana ei avaa "
            "salattua työkirjaa."
        ) from None
    except SheetregError as exc:  # damaged, or an encryption msoffcrypto cannot open
        raise UnusableWorkbook(str(exc)) from None
    _refuse_unless_package(path, plain)
    return Package(data, plain, password)


def load_package(path: Path | str, *, password: str | None = None) -> Package:
    """Read the workbook at ``path`` once; decrypt it in memory when it is password-protected.

    ``password`` opens an encrypted file (a backup copy has no keyring entry of its own);
    without it the keyring's ``workbook-password`` of ``path`` is used, and only when the file
    is encrypted. A plain file is returned as it is. Raises :class:`UnusableWorkbook`.
    """
    path = Path(path)
    return _open_package(path, _load_bytes(path), password)


def _open_zip(path: Path, data: bytes) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise UnusableWorkbook(
            f"{path.name}: the file is damaged (an incomplete or corrupt .xlsx). Restore it "
            "from a backup. / Tiedosto on vioittunut."
        ) from None
    names = set(zf.namelist())
    if "xl/workbook.bin" in names:
        raise UnusableWorkbook(
            f"{path.name}: a binary workbook (.xlsb) is not supported; save it as .xlsx."
        )
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise UnusableWorkbook(
            f"{path.name}: a zip file, but not an Excel workbook. / Ei Excel-työkirja."
        )
    return zf


def _formula_refs(xml: bytes) -> list[tuple[int, int]]:
    """(0-based column, Excel row) of every cell holding a formula.

    ``<f>`` is the first child of ``<c>``, so the tag just before it is the cell's own.
    """
    found: list[tuple[int, int]] = []
    for m in _FORMULA.finditer(xml):
        cell = _CELL_START.match(xml, xml.rfind(b"<", 0, m.start()))
        if cell is not None:
            found.append((column_index(cell[1].decode()), int(cell[2])))
    return found


def _table_from_grid(
    spec: Sheet, name: str, grid: list[list[Any]], start: tuple[int, int]
) -> Table:
    header_row = start[0] + 1
    first_col = start[1]
    header = grid[0] if grid else []
    columns: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for idx, raw in enumerate(header):
        text = values.as_text(raw)
        if text is None:
            continue
        col = match_column(spec, text)
        if col is None:
            unknown.append((idx, text))
        elif col.key not in columns:
            columns[col.key] = idx
        else:
            unknown.append((idx, text))  # a duplicate header; validate reports it
    return Table(spec, name, header_row, first_col, header, columns, grid[1:], unknown)


class SheetScan(NamedTuple):
    """What a scan of the data sheets' XML finds that python-calamine is not asked for: the
    (0-based column, Excel row) of every formula cell, and the merged ranges ("B1:C1"), by
    sheet name (a sheet with none is left out)."""

    formulas: dict[str, list[tuple[int, int]]]
    merged: dict[str, list[str]]


def _scan_sheets(data: bytes, parts: Mapping[str, str]) -> SheetScan:
    """Scan the given sheets' parts for formula cells and merged ranges.

    Runs beside python-calamine: in the thread that parses some big sheets (zlib lets go of
    the GIL while it inflates), or else in a forked child. The XML is read in chunks, so a
    100,000-row sheet never sits in memory whole a second time.
    """
    from sheetreg.xlsxpatch import open_package

    scan = SheetScan({}, {})
    chunk = 4 << 20
    package = open_package(data)
    for name, part in parts.items():
        with package.open(part) as fh:
            tail = b""
            while block := fh.read(chunk):
                window = tail + block
                if _has_formula(window) or _MERGE_CELL in window:
                    # Rare in a data sheet: a formula, merged cells. Read the whole part.
                    whole = package.read(part)
                    formulas = _formula_refs(whole) if _has_formula(whole) else []
                    if formulas:
                        scan.formulas[name] = formulas
                    merged = _merged_ranges(whole)
                    if merged:
                        scan.merged[name] = merged
                    break
                tail = window[-64:]
    return scan


_MERGE_CELL = b"mergeCell"
_MERGE_CELLS = re.compile(rb"<((?:[\w.\-]+:)?)mergeCells(?=[\s>/])[^>]*?(/?)>")
_MERGE_REF = re.compile(
    rb"""<(?:[\w.\-]+:)?mergeCell(?=[\s/>])[^>]*?\sref\s*=\s*["']([^"']*)["']"""
)


def _merged_ranges(xml: bytes) -> list[str]:
    """The merged ranges of a worksheet ("B1:C1"): those in its first ``<mergeCells>``,
    in their order (as calamine reads them), a reference that is not a range left out."""
    from sheetreg.xlsxpatch import _parse_range

    m = _MERGE_CELLS.search(xml)
    if m is None or m[2]:
        return []
    end = xml.find(b"</" + m[1] + b"mergeCells>", m.end())
    out = []
    for ref in _MERGE_REF.finditer(xml, m.end(), len(xml) if end < 0 else end):
        rng = _parse_range(ref[1].decode("ascii", "replace"))
        if rng is not None:
            r1, c1, r2, c2 = rng
            out.append(f"{column_letter(c1 - 1)}{r1}:{column_letter(c2 - 1)}{r2}")
    return out


# An "f" that ends a tag's name: what a formula's start tag (<f>, <f t="shared" …/>, <x:f>)
# has. The search starts at an "f", a letter a sheet's markup hardly has, and so goes at
# memchr's speed (15 ms for 50 MB); one for "<f", at each "<" (every tag), took 50 ms.
_F_TAG_END = re.compile(rb"f[ \t\n\r/>]")


def _has_formula(xml: bytes) -> bool:
    """Whether ``xml`` has a formula element's start tag ("<f" or "<prefix:f" then a space,
    "/" or ">")."""
    for m in _F_TAG_END.finditer(xml):
        at = m.start()
        if at and xml[at - 1] in b"<:":
            return True
    return False


OTHER_SHEETS = "*other"  # in ``sheets=``: the tabs that are not register tables


def read_register(
    path: Path | str,
    *,
    sheets: Collection[str] | None = None,
    fork: bool = True,
    package: Package | None = None,
    formulas: bool = True,
) -> Register:
    """Read a workbook into a :class:`Register`, or raise :class:`UnusableWorkbook`.

    ``sheets`` limits which tables are loaded (schema keys, plus :data:`OTHER_SHEETS` for
    tabs that are not register tables); Settings is always read. None reads everything.
    ``fork=False`` keeps the formula scan in this process (for callers that already keep
    both cores busy). ``package`` is the file as already read by :func:`load_package` (read
    here when not given); an encrypted workbook is decrypted with the keyring's password.
    ``formulas=False`` skips the scan for formula cells and merged ranges, which only
    validation reads (a pass over every data sheet's XML): the register's ``formula_cells``
    and ``merged_ranges`` are then None (:func:`read_formula_cells` gives them).
    """
    with paused_gc():
        register = _read_register(Path(path), sheets, fork, package, formulas)
    return_free_memory()  # what calamine held while it parsed
    return register


def _wanted(spec: Sheet | None, sheets: Collection[str] | None) -> bool:
    if sheets is None or (spec is not None and spec is SETTINGS):
        return True
    if spec is None or not spec.columns:
        return OTHER_SHEETS in sheets
    return spec.key in sheets


def _read_register(
    path: Path,
    sheets: Collection[str] | None,
    fork: bool,
    package: Package | None,
    want_formulas: bool = True,
) -> Register:
    import python_calamine as pc

    from sheetreg.xlsxpatch import sheet_parts

    if package is None:
        package = load_package(path)
    data = package.plain
    with _open_zip(path, data) as zf:
        sizes = {i.filename: i.file_size for i in zf.infolist()}
    try:
        parts: dict[str, str] | None = sheet_parts(data)
    except Exception:
        parts = None  # named below, unless calamine cannot read the file at all
    # What calamine parses: the package with its sheets marked so that it does not read each
    # one twice (merged ranges come from the scan of ``data``: _scan_sheets).
    view = _reader_view(data, parts)
    try:
        wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(view))
        names = list(wb.sheet_names)
    except Exception:  # calamine raises several error types for broken packages
        raise UnusableWorkbook(
            f"{path.name}: the workbook cannot be read (damaged or not a spreadsheet). / "
            "Työkirjaa ei voi lukea."
        ) from None
    if parts is None:
        raise UnusableWorkbook(
            f"{path.name}: the workbook's sheet list is damaged. / Työkirja on vioittunut."
        )
    if not any(match_sheet(n) in DATA_SHEETS for n in names):
        raise UnusableWorkbook(
            f"{path.name}: none of the register's sheets (Asiakkaat/Clients, Laskut/Invoices, "
            "Pyynnöt/Requests, Luovutukset/Disclosures) is in this workbook. / "
            "Työkirjassa ei ole rekisterin välilehtiä."
        )
    data_parts = {
        n: parts[n]
        for n in names
        if n in parts and match_sheet(n) in DATA_SHEETS and _wanted(match_sheet(n), sheets)
    }
    wanted = [n for n in names if _wanted(match_sheet(n), sheets)]
    split = _sheets_aside(wanted, parts, sizes)
    if not want_formulas:  # no scan; a thread parses some big sheets beside this one
        aside = _SheetsAside(view, split)
        collect_scan: Callable[[], Any] = lambda: None  # noqa: E731
    elif split:
        # A thread parses some big sheets and then scans the sheets, beside this one.
        aside = _SheetsAside(view, split, data, data_parts)
        collect_scan = aside.scan
    else:  # the scan beside python-calamine, on the second core (see forking.py)
        aside = _SheetsAside(view, [])
        collect_scan = forking.start(_scan_sheets, data, data_parts, fork=fork)
    del view  # calamine holds its own copy
    try:
        tables: dict[str, Table] = {}
        other: dict[str, tuple[tuple[int, int], list[list[Any]]]] = {}

        def load(name: str, sheet: Any = None) -> tuple[list[list[Any]], tuple[int, int]]:
            try:
                if sheet is None:  # one the other thread parsed
                    sheet = aside.sheet(name)
                return _pooled_grid(sheet), sheet.start or (0, 0)
            except Exception:
                raise _damaged_sheet(path, name) from None

        # This thread's own sheets first, while the other thread parses its own: all parsed,
        # then this thread's workbook (its own copy of the package) let go before they become
        # Python values; and when the other thread has sheets, what was built here goes back
        # to the system before those become Python values beside these.
        own = [name for name in wanted if name not in aside.names]
        parsed = {name: _parsed(wb, name, path) for name in own}
        wb = None
        loaded = {name: load(name, parsed.pop(name)) for name in own}
        if aside.names:
            return_free_memory()
        for name in wanted:
            spec = match_sheet(name)
            grid, start = loaded.pop(name) if name in loaded else load(name)
            if spec is None or spec.key in tables or not spec.columns:
                other[name] = (start, grid)
                continue
            tables[spec.key] = _table_from_grid(spec, name, grid, start)
    finally:
        aside.join()
        scan = collect_scan()
    if scan is forking.FAILED:
        raise UnusableWorkbook(
            f"{path.name}: a sheet of the workbook is damaged. / Työkirja on vioittunut."
        )
    settings_table = tables.pop(SETTINGS.key, None)
    if settings_table is not None:
        other[settings_table.name] = (
            (settings_table.header_row - 1, settings_table.first_col),
            [settings_table.header, *settings_table.rows],
        )
    settings, settings_rows = _read_settings(settings_table)
    lang = _language(settings, names)
    # The hash of the file on disk (encrypted or not): a write compares the file against it.
    snapshot = Snapshot(path, _sha256(package.data), encrypted=package.encrypted)
    return Register(
        snapshot,
        names,
        tables,
        settings,
        settings_rows,
        lang,
        None if scan is None else _formula_cells_in(tables.values(), scan.formulas),
        None if scan is None else scan.merged,
        other,
    )


def _formula_cells_in(
    tables: Iterable[Table], formulas: Mapping[str, list[tuple[int, int]]]
) -> dict[str, list[str]]:
    """The refs of the formula cells in each table's known columns, below its header."""
    out: dict[str, list[str]] = {}
    for table in tables:
        known = {table.first_col + i for i in table.columns.values()}
        refs = [
            f"{column_letter(c)}{r}"
            for c, r in formulas.get(table.name, [])
            if c in known and r > table.header_row
        ]
        if refs:
            out[table.name] = refs
    return out


def read_formula_cells(
    register: Register, plain: bytes | None = None, *, written: str | None = None
) -> None:
    """Give ``register``, read without its formula cells (``formulas=False``), those cells
    and its merged ranges: scanned from ``plain``, the (decrypted) package it was read from,
    or else from the file, which must then still be the one read, or the one a write of it
    made (SHA-256 ``written``: it differs only in the cells written, which hold values, not
    formulas).

    For the weekly run, which leaves the scan out of the read, where it would stand between
    the read and everything else, and has it done with validation on the second core.
    """
    from sheetreg.xlsxpatch import sheet_parts

    if plain is None:
        package = load_package(register.path)
        if _sha256(package.data) not in (register.snapshot.sha256, written):
            raise WriteRefused(
                f"{register.path.name} changed after sheetreg read it; run sheetreg again. / "
                "Työkirja muuttui lukemisen jälkeen."
            )
        plain = package.plain
    try:
        parts = sheet_parts(plain)
        names = [t.name for t in register.tables.values() if match_sheet(t.name) in DATA_SHEETS]
        scan = _scan_sheets(plain, {n: parts[n] for n in names if n in parts})
    except Exception:
        raise UnusableWorkbook(
            f"{register.path.name}: a sheet of the workbook is damaged. / Työkirja on vioittunut."
        ) from None
    register.formula_cells = _formula_cells_in(register.tables.values(), scan.formulas)
    register.merged_ranges = scan.merged


def _parsed(wb: Any, name: str, path: Path) -> Any:
    """python-calamine's sheet ``name`` of ``wb``; UnusableWorkbook naming it if damaged."""
    try:
        return wb.get_sheet_by_name(name)
    except Exception:
        raise _damaged_sheet(path, name) from None


def _damaged_sheet(path: Path, name: str) -> UnusableWorkbook:
    return UnusableWorkbook(
        f"{path.name}, sheet {name}: the sheet cannot be read (damaged). / Välilehteä ei voi lukea."
    )


class _Pool(dict[Any, Any]):
    """Equal cell values as one object: ``pool[value]`` is the first value equal to it.

    Numbers are never pooled, only given back: ``True == 1 == 1.0`` and ``0.0 == -0.0``, so a
    pool of numbers would hand one cell another's type or sign. Text and dates are equal only
    to their own kind.
    """

    __slots__ = ()

    def __missing__(self, value: Any) -> Any:
        if value.__class__ not in _NUMBERS:
            self[value] = value
        return value


_NUMBERS = frozenset({bool, int, float, complex})
_POOL_SAMPLE = 1024  # rows that decide which columns repeat their values


def _pooled_grid(sheet: Any) -> list[list[Any]]:
    """A python-calamine sheet's rows, the repeated values of a column as one object each.

    python-calamine makes a new object for every cell: 100,000 clients' cities, first names,
    yes/no answers and billing methods, and 200,000 invoices' dates, are a few hundred
    distinct values in 2 million objects (67 MB). Columns whose first rows repeat values
    (at least every other value seen before; not mostly numbers) get one object per distinct
    value, row by row as the rows are made, so the copies are let go while the next rows
    take their place. A column of unique values (e-mail, phone), or one mostly empty (its empty
    cells are one object already), is left as it is.
    """

    # Rows come from the sheet's first row, those before its used area too (to_python leaves
    # them out); the first used column is where to_python's start too. Anything else is
    # not the shape expected of this version of python-calamine: to_python then, unpooled.
    rows_in = iter(sheet.iter_rows())
    for _ in range(sheet.start[0] if sheet.start else 0):
        before = next(rows_in, None)
        if before is None or any(v != "" for v in before):
            return sheet.to_python()
    rows: list[list[Any]] = []
    for row in rows_in:
        rows.append(row)
        if len(rows) >= _POOL_SAMPLE:
            break
    width = len(rows[0]) if rows else 0
    pooled = []
    for j in range(width):
        column = [row[j] for row in rows if len(row) == width]
        # An empty cell is the one empty string already: a column mostly empty has little
        # to pool, and pooling would cost a lookup a row.
        filled = [v for v in column if v != ""]
        numbers = sum(1 for v in filled if v.__class__ in _NUMBERS)
        if len(filled) * 2 > len(column) and max(numbers, len(set(filled))) * 2 <= len(filled):
            pooled.append(j)
    if not pooled:
        rows.extend(rows_in)
        return rows if _as_read(rows, sheet) else sheet.to_python()
    pool = _pooler(pooled, _Pool().__getitem__)
    for row in rows:
        if len(row) == width:
            pool(row)
    for row in rows_in:
        if len(row) == width:
            pool(row)
        rows.append(row)
    return rows if _as_read(rows, sheet) else sheet.to_python()


def _pooler(columns: Sequence[int], get: Callable[[Any], Any]) -> Callable[[list[Any]], None]:
    """A function that puts ``get(row[j])`` in place of ``row[j]`` for each of ``columns``,
    written out column by column (no loop, no call but ``get``'s: a row of a register's
    sheet costs half of what a loop over its columns did)."""
    source = "def pool(row):\n" + "".join(
        f"    row[{int(j)}] = get(row[{int(j)}])\n" for j in columns
    )
    namespace: dict[str, Any] = {"get": get}
    exec(source, namespace)  # made of column numbers only
    return namespace["pool"]  # type: ignore[no-any-return]


def _as_read(rows: list[list[Any]], sheet: Any) -> bool:
    """Whether ``rows`` have the used area's shape, as to_python would give them."""
    if not rows:
        return not sheet.height
    # At C speed: 10^5 rows, and the width is a property of the Rust object.
    return len(rows) == sheet.height and all(map(int(sheet.width).__eq__, map(len, rows)))


PARSE_ASIDE_BYTES = 1 << 20  # a sheet's XML from which a second thread parses some sheets


def _sheets_aside(
    names: Sequence[str], parts: Mapping[str, str], sizes: Mapping[str, int]
) -> list[str]:
    """The sheets a second thread parses: about half the XML, when there is much of it.

    The biggest sheet stays here; the others go where less is queued, biggest first.
    """
    size = {n: sizes.get(parts.get(n, ""), 0) for n in names}
    big = sorted(names, key=lambda n: -size[n])
    if len(big) < 2 or size[big[1]] < PARSE_ASIDE_BYTES:
        return []
    here, there = size[big[0]], 0
    aside = []
    for name in big[1:]:
        if there < here:
            aside.append(name)
            there += size[name]
        else:
            here += size[name]
    return aside


class _SheetsAside:
    """Sheets parsed by python-calamine in a thread, with a workbook object of its own, from
    ``view`` (:func:`_reader_view`), and then the scan of the ``parts`` of ``data``
    (:func:`_scan_sheets`).

    calamine lets go of the GIL while it parses a sheet (though not while it turns one into
    Python values), and zlib while it inflates, so this runs on the second core. A failure
    is kept and raised where the sheet is asked for, as the same call would raise in the
    reader itself; a failed scan is :data:`forking.FAILED`, as from a forked child.
    """

    def __init__(
        self,
        view: bytes,
        names: Sequence[str],
        data: bytes | None = None,
        parts: Mapping[str, str] | None = None,
    ) -> None:
        self.names = frozenset(names)
        self._sheets: dict[str, Any] = {}
        self._scan: Any = forking.FAILED
        self._thread: threading.Thread | None = None
        if names:
            # The view goes in a box the thread empties once calamine has its own copy: the
            # thread's arguments are held until it ends.
            box = [view]
            self._thread = threading.Thread(target=self._run, args=(box, list(names), data, parts))
            self._thread.start()

    def _run(
        self,
        box: list[bytes],
        names: list[str],
        data: bytes | None,
        parts: Mapping[str, str] | None,
    ) -> None:
        import python_calamine as pc

        try:
            wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(box.pop()))
        except Exception as exc:  # calamine raises several error types
            self._sheets = dict.fromkeys(names, exc)
        else:
            for name in names:
                try:
                    self._sheets[name] = wb.get_sheet_by_name(name)
                except Exception as exc:
                    self._sheets[name] = exc
            del wb
        if data is not None and parts is not None:
            with contextlib.suppress(Exception):
                self._scan = _scan_sheets(data, parts)

    def scan(self) -> Any:
        """The scan's result (waits for the thread), or forking.FAILED."""
        self.join()
        return self._scan

    def sheet(self, name: str) -> Any:
        """The parsed sheet (waits for the thread), handed over once so that its memory
        goes with the caller's use of it; raises what parsing it raised."""
        self.join()
        got = self._sheets.pop(name, None)
        if got is None or isinstance(got, Exception):
            raise got or LookupError(name)
        return got

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _reader_view(data: bytes, parts: Mapping[str, str] | None) -> bytes:
    """``data`` as python-calamine is given it: :func:`sheetreg.xlsxpatch.reader_view` of
    the sheets' parts (``data`` itself when the sheet list could not be read)."""
    from sheetreg.xlsxpatch import reader_view

    if not parts:
        return data
    try:
        return reader_view(data, parts.values())
    except Exception:  # a package it cannot take apart: calamine reads it as it is
        return data


def _read_settings(table: Table | None) -> tuple[dict[str, str], dict[str, int]]:
    settings: dict[str, str] = {}
    rows: dict[str, int] = {}
    if table is None:
        return settings, rows
    # The header is row 1 (Asetus / Arvo); every later row is "label | value".
    for i, row in enumerate(table.rows):
        if len(row) < 2:
            continue
        label = values.as_text(row[0])
        setting = match_setting(label) if label else None
        if setting is None:
            continue
        value = values.as_text(row[1])
        if value is not None:
            settings[setting.key] = value
        rows[setting.key] = table.excel_row(i)
    return settings, rows


def _language(settings: Mapping[str, str], names: Sequence[str]) -> str:
    lang = settings.get("language", "").strip().casefold()
    if lang in {"fi", "suomi", "finnish"}:
        return "fi"
    if lang in {"en", "englanti", "english"}:
        return "en"
    # No setting: the language the Clients tab is named in.
    english = {n.strip().casefold() for n in names} & {CLIENTS.en.casefold()}
    return "en" if english else "fi"


# --- writing -------------------------------------------------------------------------------


@dataclass
class WriteResult:
    """What a safe write did."""

    path: Path
    written: bool
    edits: int = 0
    backup: Path | None = None
    sha256_before: str = ""
    sha256_after: str = ""
    removed_strings: int = 0
    encrypted: bool = False  # the workbook was written encrypted, with its own password


def lock_files(path: Path) -> list[Path]:
    """The lock files Excel and LibreOffice keep beside a workbook they have open."""
    name = path.name
    candidates = [path.with_name("~$" + name), path.with_name(f".~lock.{name}#")]
    if len(name) > 2:
        # Excel shortens long names: "~$" replaces the first two characters.
        candidates.append(path.with_name("~$" + name[2:]))
    return [p for p in candidates if p.exists()]


def ensure_not_open(path: Path) -> None:
    """Refuse when Excel or LibreOffice has the workbook open."""
    found = lock_files(path)
    if found:
        raise WriteRefused(
            f"{path.name} is open in Excel or LibreOffice (lock file {found[0].name}). "
            "Close it and run sheetreg again; nothing was written. / Työkirja on auki "
            "Excelissä tai LibreOfficessa: sulje se ja aja sheetreg uudelleen."
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    """The hash of a file, read in pieces (a big workbook is not held a second time)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _file_holds(path: Path, data: bytes) -> bool:
    """True when the file at ``path`` holds exactly ``data`` (compared in pieces)."""
    view = memoryview(data)
    with path.open("rb") as fh:
        for start in range(0, len(view), 1 << 20):
            piece = view[start : start + (1 << 20)]
            if fh.read(len(piece)) != piece:
                return False
        return fh.read(1) == b""


def default_backup_dir(path: Path) -> Path:
    """Where backups go unless configured: ``backups/`` beside the workbook."""
    return path.parent / "backups"


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new_file(folder: Path, prefix: str, suffix: str, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            Path(name).unlink()
        raise
    return Path(name)


def _temp_prefix(path: Path) -> str:
    # A leading dot and a .tmp suffix: never mistaken for the register, hidden in Finder.
    return f".{path.name}{TEMP_MARK}{os.getpid()}-"


def remove_stale_temps(path: Path, *folders: Path) -> list[Path]:
    """Remove temporary files left by a killed write (their process is gone).

    They live beside the workbook and in its backup folder, named
    ``.<workbook name>.sheetreg-<pid>-<random>.tmp``.
    """
    removed: list[Path] = []
    pattern = re.compile(re.escape(f".{path.name}{TEMP_MARK}") + r"(\d+)-.*\.tmp")
    for folder in (path.parent, *folders):
        if not folder.is_dir():
            continue
        for candidate in folder.glob(f".{glob_escape(path.name)}{TEMP_MARK}*.tmp"):
            m = pattern.fullmatch(candidate.name)
            if m is None or _process_alive(int(m[1])):
                continue
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def glob_escape(text: str) -> str:
    """Escape glob metacharacters in a file name."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # cannot tell cheaply; leave the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's, or not a real pid: leave the file alone
    return True


def backup_name(path: Path, when: dt.datetime) -> str:
    """The backup file name for a workbook at a moment: sortable by time."""
    return f"{path.stem}.{when:%Y%m%d-%H%M%S-%f}{path.suffix}"


def list_backups(path: Path, backup_dir: Path) -> list[Path]:
    """This workbook's backups, oldest first."""
    pattern = re.compile(re.escape(path.stem) + r"\.\d{8}-\d{6}-\d{6}" + re.escape(path.suffix))
    if not backup_dir.is_dir():
        return []
    return sorted(p for p in backup_dir.iterdir() if pattern.fullmatch(p.name))


def _reopen_check(tmp: Path, edits: Sequence[CellEdit], password: str | None = None) -> None:
    """Read the written file back with python-calamine and compare every edited cell.

    An encrypted file is read back from disk and decrypted in memory with ``password``, so
    the check covers the encryption too.
    """
    try:
        plain = tmp.read_bytes()
        if password is not None:
            plain = crypto.decrypt(plain, password, source=tmp.name)
    except Exception:
        raise FidelityError(
            "reopen check: the written workbook could not be read back; the original was left "
            "in place."
        ) from None
    _reopen_check_plain(plain, edits)


def _reopen_check_plain(
    plain: bytes, edits: Sequence[CellEdit], placed: dict[str, Placed] | None = None
) -> None:
    """The reopen check of a (plain) package's bytes: python-calamine reads every edited cell
    back, and each must be what was written.

    A big sheet is read back as an excerpt of its edited cells, each taken from the package
    byte for byte (see :func:`sheetreg.xlsxpatch.excerpt_package`): the rest of it is what the
    fidelity check, which every write makes, proves unchanged byte for byte. An excerpt, or a
    small sheet, is taken as the reader's rows; a big sheet that could not be cut goes by row
    by row, only its edited cells kept (as rows, 10^5 of them would hold every cell's value).
    ``placed`` is where the patch that made ``plain`` put cells, when it was made here: they
    are then taken from there, not searched for (:attr:`~sheetreg.xlsxpatch.PatchResult.placed`).
    """
    import python_calamine as pc

    from sheetreg.xlsxpatch import excerpt_package, sheet_parts

    aside: _SheetsAside | None = None
    cut: set[str] = set()
    try:
        plain = excerpt_package(plain, edits, cut, placed)
        wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(plain))
        # Sheet names are matched as Excel does (and the patcher): ignoring case.
        actual = {n.casefold(): n for n in wb.sheet_names}
        by_sheet: dict[str, list[CellEdit]] = {}
        for edit in edits:
            by_sheet.setdefault(actual.get(edit.sheet.casefold(), edit.sheet), []).append(edit)
        if len(by_sheet) > 1:  # two big sheets (an erasure's) are read back at once
            with zipfile.ZipFile(io.BytesIO(plain)) as zf:
                sizes = {i.filename: i.file_size for i in zf.infolist()}
            aside = _SheetsAside(plain, _sheets_aside(list(by_sheet), sheet_parts(plain), sizes))
            by_sheet = {
                **{n: e for n, e in by_sheet.items() if n not in aside.names},
                **{n: e for n, e in by_sheet.items() if n in aside.names},
            }
        for name, sheet_edits in by_sheet.items():
            if aside is not None and name in aside.names:
                sheet = aside.sheet(name)
            else:
                sheet = wb.get_sheet_by_name(name)
            if name.casefold() in cut or sheet.height * sheet.width <= _ROWS_KEPT_CELLS:
                _read_back_rows(sheet, name, sheet_edits)
            else:
                _read_back_streamed(sheet, name, sheet_edits)
    except FidelityError:
        raise
    except Exception:
        raise FidelityError(
            "reopen check: the written workbook could not be read back; the original was left "
            "in place."
        ) from None
    finally:
        if aside is not None:
            aside.join()


_LETTERS = re.compile(r"[A-Za-z]{1,3}")

# A sheet read back whole of at most this many cells is taken as the reader's rows.
_ROWS_KEPT_CELLS = 1 << 18


def _read_back_rows(sheet: Any, name: str, edits: Sequence[CellEdit]) -> None:
    """The reopen check of ``edits`` in ``sheet`` (python-calamine's) taken as its rows: an
    excerpt (the edited cells alone, blank between) or a small sheet."""
    r0, c0 = sheet.start or (0, 0)
    rows = list(sheet.iter_rows())
    n = len(rows)
    # Whether the rows count from the sheet's first row or from its first used row is told
    # by their number: from the first used row if there are as many as it has.
    skip = r0 if n == sheet.height and r0 else 0
    for edit in _not_read_back_at_once(rows, edits, skip, c0):
        c, r = _edited_cell(edit, c0)
        row = rows[r - skip] if 0 <= r - skip < n else ()
        _compare_read_back(name, edit, row[c] if 0 <= c < len(row) else "")


def _read_back_streamed(sheet: Any, name: str, edits: Sequence[CellEdit]) -> None:
    """The reopen check of ``edits`` in a big ``sheet`` read whole: row by row, keeping only
    the edited cells' values (by row << 14 | column), so that the sheet never becomes a list
    of lists here. Whether the rows count from the sheet's first row or from its first used
    row is told by their number, so the cells of both candidates are kept until the end."""
    r0, c0 = sheet.start or (0, 0)
    wanted = [(*_edited_cell(edit, c0), edit) for edit in edits]
    cols_of: dict[int, set[int]] = {}
    for c, r, _edit in wanted:
        cols_of.setdefault(r, set()).add(c)
    kept: dict[int, Any] = {}
    n = 0
    for n, row in enumerate(sheet.iter_rows(), 1):
        here = cols_of.get(n - 1)
        there = cols_of.get(n - 1 + r0) if r0 else None
        if here is None and there is None:
            continue
        need = there if here is None else here if there is None else here | there
        base, width = (n - 1) << 14, len(row)
        for c in need:
            if 0 <= c < width:
                kept[base | c] = row[c]
    skip = r0 if n == sheet.height and r0 else 0
    for c, r, edit in wanted:
        base = (r - skip) << 14 if r >= skip else -1
        _compare_read_back(
            name, edit, kept.get(base | c, "") if base >= 0 and 0 <= c < 1 << 14 else ""
        )


def _edited_cell(edit: CellEdit, c0: int) -> tuple[int, int]:
    """The 0-based column (from the sheet's first used column ``c0``) and row of an edit."""
    letters = edit.cell.rstrip("0123456789")
    if not _LETTERS.fullmatch(letters):
        raise FidelityError(f"reopen check: {edit.cell!r} is not a cell")
    return column_index(letters) - c0, int(edit.cell[len(letters) :]) - 1


def _compare_read_back(name: str, edit: CellEdit, got: Any) -> None:
    want = edit.value
    if got == want and want.__class__ is str:
        return  # text (a status), the common case: no further test
    if not _same_value(got, want):
        raise FidelityError(
            f"reopen check: {name}!{edit.cell.upper()} does not read back as written; the "
            "original was left in place."
        )


def _not_read_back_at_once(
    rows: list[Any], edits: Sequence[CellEdit], skip: int, c0: int
) -> Sequence[CellEdit]:
    """The edits whose cells ``rows`` (a sheet as read back, its first row the sheet's row
    ``skip`` + 1 and its first column ``c0`` + 1) are still to be compared with, one by one.

    Many edits (a first run's statuses) have their references parsed at once and their text
    compared in one pass: only those that are not text, or not found as written, are left
    (a value that does not read back is then named). Few edits, or references not as a
    patch writes them: all of them.
    """
    from sheetreg.xlsxpatch import parse_canonical_refs

    if len(edits) < 256:
        return edits
    parsed = parse_canonical_refs([edit.cell for edit in edits])
    if parsed is None:
        return edits
    at = [r - 1 - skip for r in parsed[0]]
    cols = [c - 1 - c0 for c in parsed[1]]
    if min(at) < 0 or max(at) >= len(rows) or min(cols) < 0 or max(cols) >= min(map(len, rows)):
        return edits
    got = [rows[r][c] for r, c in zip(at, cols, strict=True)]
    return [
        edit
        for edit, value in zip(edits, got, strict=True)
        if not (edit.value.__class__ is str and value == edit.value)
    ]


def _refuse_unless_passed(verdict: Any, check: str) -> None:
    """Raise FidelityError unless a check's verdict (None) says it passed."""
    if verdict is not None:
        raise FidelityError(
            verdict
            if isinstance(verdict, str)
            else f"the {check} could not run; the original was left in place."
        )


def _reopen_verdict(*args: Any) -> str | None:
    """The reopen check as a verdict (for a forked child): None, or why it failed.

    ``args`` are :func:`_reopen_check`'s (a file), or a package's bytes, the edits and
    perhaps where the patch put cells (:func:`_reopen_check_plain`).
    """
    try:
        if isinstance(args[0], bytes):
            _reopen_check_plain(*args)
        else:
            _reopen_check(*args)
    except FidelityError as exc:
        return str(exc)
    return None


def start_reopen_check(plain: bytes, edits: Sequence[CellEdit]) -> forking.Collector:
    """Start the reopen check of a patch's (plain) bytes before they are written; returns
    its collector (None when every edited cell reads back as written, else why not).

    For a caller that must change the patch a little further before writing it (an
    erasure's log gets its proof): the check runs on the second core meanwhile, and the
    write then reads back only the cells changed after it (``reopened`` in
    :func:`write_cells`). It must be called, or discarded.
    """
    return forking.start(_reopen_verdict, plain, edits, light=True)


def _same_value(got: Any, want: CellValue) -> bool:
    if want is None:
        return got in ("", None)
    if isinstance(want, bool):
        return got is want or got == want
    if isinstance(want, dt.datetime | dt.date):
        want_date = want.date() if isinstance(want, dt.datetime) else want
        if isinstance(got, dt.datetime):
            return got.date() == want_date if not isinstance(want, dt.datetime) else got == want
        if isinstance(got, dt.date):
            return got == want_date
        if isinstance(got, int | float):
            return values.as_date(got) == want_date
        return False
    if isinstance(want, int | float):
        return isinstance(got, int | float) and not isinstance(got, bool) and got == want
    return got == want


_F = TypeVar("_F", bound=Callable[..., Any])


def discards_warm(fn: _F) -> _F:
    """``fn`` lets go of its keyword argument ``warm`` (a :class:`WarmPatch`) as it returns
    or raises: discarded, unless ``fn`` sent it its edits (then a patch has it)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            warm = kwargs.get("warm")
            if warm is not None:
                warm.discard()

    return wrapper  # type: ignore[return-value]


@discards_warm
def write_cells(
    path: Path | str,
    edits: Mapping[str, CellValue] | Sequence[CellEdit],
    *,
    expected: Snapshot | None = None,
    backup_dir: Path | None = None,
    keep_backups: int = 10,
    password: str | None = None,
    patched: PatchResult | None = None,
    proof: forking.Collector | None = None,
    meanwhile: Callable[[], None] | None = None,
    reopened: tuple[forking.Collector, Sequence[CellEdit]] | None = None,
    warm: WarmPatch | None = None,
) -> WriteResult:
    """Apply cell edits to a workbook safely; refuse (WriteRefused) rather than risk it.

    ``edits`` is either a mapping like ``{"Sheet1!B2": "text", "Sheet1!C2": 3.5,
    "Sheet1!D2": None}`` or a sequence of :class:`CellEdit`. ``expected`` is the snapshot
    taken when the workbook was read; the write is refused if the file changed since.

    A password-protected workbook is decrypted in memory (with ``password``, else the
    keyring's ``workbook-password``), patched and checked there, and written back encrypted
    with the same password; its backup is the encrypted file as it was.

    ``patched`` is a caller's patch of exactly these edits on the workbook's (plain) bytes as
    read, made for its own purposes (the erasure searches it): it is not made again, and the
    fidelity check proves it against the file on disk like any other. ``proof`` is that
    check already under way for ``patched`` (see :func:`start_fidelity_check` and
    :func:`start_fidelity_check_early`): its verdict
    is awaited before the replace, as the writer's own would be. ``meanwhile`` is work of
    the caller's that needs nothing of the write (the weekly report's sections): it is done
    while the written file is read back, by a forked child then, before the replace.

    A patch made here is read back by python-calamine from its bytes, on the second core,
    while they are written; the file must then hold exactly those bytes. (An encrypted
    workbook is read back from the file and decrypted, so that the check covers the
    encryption.)

    ``reopened`` is (collector, rest): the reopen check of ``patched`` as it was before
    the edits ``rest`` were applied to it, already under way (see :func:`start_reopen_check`;
    ``proof`` must then cover those further edits too). The written file is then read
    back byte for byte, and python-calamine reads back only the cells of ``rest``.

    ``warm`` is :func:`warm_patch` of the workbook as read (``expected``): the patch is
    made by that spare if the file is still the same; it is discarded otherwise.
    """
    path = Path(path)
    plan = _as_edits(edits)
    if reopened is not None and (patched is None or proof is None):
        reopened[0].discard()  # it checks a patch that is not the one written
        reopened = None
    ensure_not_open(path)
    if path.is_symlink():  # write the real file, which may be open under its own name too
        path = path.resolve()
        ensure_not_open(path)
    data = _load_bytes(path)
    before = _sha256(data)
    if expected is not None and before != expected.sha256:
        raise WriteRefused(
            f"{path.name} changed after sheetreg read it (someone saved it meanwhile). "
            "Nothing was written; run sheetreg again. / Työkirja muuttui lukemisen jälkeen; "
            "mitään ei kirjoitettu."
        )
    if not plan:
        return WriteResult(path, written=False, sha256_before=before, sha256_after=before)
    package = _open_package(path, data, password)
    _open_zip(path, package.plain).close()
    backups = backup_dir or default_backup_dir(path)
    try:
        return _write_checked(
            path,
            package,
            before,
            plan,
            backups=backups,
            keep_backups=keep_backups,
            patched=patched,
            proof=proof,
            meanwhile=meanwhile,
            reopened=reopened,
            warm=warm if expected is not None else None,
        )
    except OSError as exc:  # a full disk, a read-only or vanished folder, …
        reason = exc.strerror or type(exc).__name__
        raise WriteRefused(
            f"{path.name}: cannot write ({reason}); the workbook was left as it was. / "
            "Työkirjaa ei voitu kirjoittaa; se jäi ennalleen."
        ) from None


def _write_checked(
    path: Path,
    package: Package,
    before: str,
    plan: Sequence[CellEdit],
    *,
    backups: Path,
    keep_backups: int,
    patched: PatchResult | None = None,
    proof: forking.Collector | None = None,
    meanwhile: Callable[[], None] | None = None,
    reopened: tuple[forking.Collector, Sequence[CellEdit]] | None = None,
    warm: WarmPatch | None = None,
) -> WriteResult:
    """Patch, verify, (encrypt,) write aside, reopen, back up, look once more, replace."""
    from sheetreg.xlsxpatch import EditBatch, patch_workbook

    plan = EditBatch(plan)  # pickled once for the children that get it

    remove_stale_temps(path, backups)
    if patched is None:
        # The check prepares the original's side on the second core while the patch is made.
        early = start_fidelity_check_early(package.plain, plan)
        aside: PatchAside | None = None
        # The read-back starts on the patch's bytes as soon as they are made (by the spare
        # that made them, if a spare does), beside the write; the file must then hold
        # exactly those bytes. (An encrypted file is read back from disk, so that the check
        # covers the encryption.)
        read_back = package.password is None
        try:
            # sheetreg's own text goes into the cells: no search of a table of 10^6 strings,
            # and next week's status replaces this week's without leaving an orphan string.
            if warm is not None and read_back and warm.fits(before):
                aside = warm.send(package.plain, plan)
            else:
                aside = start_patch(package.plain, plan, **_OPTIONS, read_back=read_back)
            if aside is not None:
                result = aside()
                reading = aside.read_back()
                if reading is not None:
                    reopened = (reading, ())
            else:
                result = patch_workbook(package.plain, plan, **_OPTIONS)
            if read_back and reopened is None:
                reopened = (start_reopen_check(result.data, plan), ())
            early.send(result)
        except BaseException:
            early.discard()
            if aside is not None:
                aside.discard()
            if reopened is not None:
                reopened[0].discard()
            raise
        fidelity: forking.Collector = early
    elif proof is None:
        result = patched
        fidelity = start_fidelity_check(package.plain, result, plan)
    else:
        result, fidelity = patched, proof
    folder = path.parent
    tmp: Path | None = None
    backup: Path | None = None
    written = result.data
    try:
        try:
            if package.password is not None:
                # Only the encrypted package ever reaches the disk, temporary file included.
                written = crypto.encrypt(result.data, package.password, source=path)
            tmp = _write_new_file(folder, _temp_prefix(path), ".tmp", written)
            with contextlib.suppress(OSError):
                shutil.copymode(path, tmp)  # keep the workbook's permissions
            reread = plan
            if reopened is not None:
                # Most cells were read back from the patch before it was written: the file
                # must hold exactly those bytes, and the cells changed since are read here.
                if not _file_holds(tmp, written):
                    raise FidelityError(
                        "reopen check: the written file differs from the checked one; the "
                        "original was left in place."
                    )
                reread = list(reopened[1])
            if not reread:  # every edited cell is read back from the bytes the file holds
                if meanwhile is not None:
                    meanwhile()
            elif meanwhile is None:
                # A spare reads it back if one waits: calamine's copy of a big sheet then
                # never lands in this process, which only waits meanwhile.
                reading = forking.on_spare(_reopen_verdict, tmp, reread, package.password)
                verdict = reading() if reading is not None else forking.FAILED
                if verdict is forking.FAILED:  # none waits, or it died: here
                    _reopen_check(tmp, reread, package.password)
                else:
                    _refuse_unless_passed(verdict, "reopen check")
            else:
                # The read-back goes to a child (calamine holds the GIL), the caller's work
                # is done here meanwhile; a failed check refuses the write as always.
                reopening = forking.start(
                    _reopen_verdict, tmp, reread, package.password, light=True
                )
                try:
                    meanwhile()
                except BaseException:
                    reopening.discard()
                    raise
                _refuse_unless_passed(reopening(), "reopen check")
            if reopened is not None:
                verdict = reopened[0]()
                if verdict is forking.FAILED:  # the child died: the whole read-back here
                    _reopen_check(tmp, plan, package.password)
                else:
                    _refuse_unless_passed(verdict, "reopen check")
        except BaseException:
            fidelity.discard()
            if reopened is not None:
                reopened[0].discard()
            raise
        _refuse_unless_passed(fidelity(), "fidelity check")
        # The backup holds the bytes already checked against the snapshot (encrypted, if the
        # workbook is); it is made before the last look, so that nothing slow stands between
        # that look and the replace (a save by the user in between would be overwritten).
        backup = _make_backup(path, package.data, backups)
        ensure_not_open(path)
        if _file_sha256(path) != before:
            raise WriteRefused(
                f"{path.name} changed while sheetreg was writing; nothing was written."
            )
        tmp.replace(path)
    except BaseException:
        for leftover in (tmp, backup):
            if leftover is not None:
                with contextlib.suppress(OSError):
                    leftover.unlink()
        raise
    # The workbook is replaced: from here on nothing may make the write look failed.
    with contextlib.suppress(OSError):
        _fsync_dir(folder)
    with contextlib.suppress(OSError):
        _rotate_backups(path, backups, keep_backups)
    return WriteResult(
        path,
        written=True,
        edits=len(plan),
        backup=backup,
        sha256_before=before,
        sha256_after=_sha256(written),
        removed_strings=result.removed_strings,
        encrypted=package.encrypted,
    )


def start_fidelity_check(
    original: bytes, result: PatchResult, plan: Sequence[CellEdit]
) -> forking.Collector:
    """Start the fidelity check of ``result`` against ``original``; returns its collector.

    The check needs only the two packages, so it runs on the second core (forking.py) while
    the caller goes on; the collector returns None when the patch is proven, else why not
    (a message, or :data:`forking.FAILED`). It must be called, or discarded.
    """
    return forking.start(_fidelity_verdict, original, result, plan, light=True)


class PatchAside:
    """A patch being made by a spare (see :func:`start_patch`); calling it gives the
    :class:`PatchResult`, or raises what :func:`sheetreg.xlsxpatch.patch_workbook` raised."""

    def __init__(
        self,
        collector: forking.Collector,
        args: tuple[Any, ...],
        read_back: forking.Collector | None = None,
    ) -> None:
        self._collector = collector
        self._args = args
        self._read_back = read_back

    def __call__(self) -> PatchResult:
        got = self._collector()
        if isinstance(got, SheetregError):
            self._drop_read_back()
            raise got
        if got is forking.FAILED:  # the spare died: patch here, where an error shows as it is
            self._drop_read_back()
            return _patched(*self._args)
        return got  # type: ignore[no-any-return]

    def read_back(self) -> forking.Collector | None:
        """The spare's read-back of the patch it gave (see :func:`start_patch`), taken once:
        its collector, as :func:`start_reopen_check`'s; None when there is none."""
        collector, self._read_back = self._read_back, None
        return collector

    def discard(self) -> None:
        """The patch is no longer wanted: reap the spare."""
        self._collector.discard()
        self._drop_read_back()

    def _drop_read_back(self) -> None:
        collector = self.read_back()
        if collector is not None:
            collector.discard()


def start_patch(
    plain: bytes,
    edits: Sequence[CellEdit],
    *,
    residues: bool = True,
    inline: bool = False,
    read_back: bool = False,
) -> PatchAside | None:
    """:func:`sheetreg.xlsxpatch.patch_workbook` of ``plain`` by a spare, or None when no
    spare waits (the caller then patches itself).

    A patch holds a big sheet twice over, as read and as written, and a page of this process
    once grown stays grown: made in a spare, forked while the process was small, that memory
    never lands beside the register. The package goes to it as it is (an out-of-band buffer)
    and the edits pickled once for all the children that get them (an
    :class:`~sheetreg.xlsxpatch.EditBatch`); the new package comes back the same way.

    With ``read_back``, the spare goes on to read its patch back with python-calamine (the
    reopen check of the patched bytes) once it has sent it: :meth:`PatchAside.read_back`
    gives that check's collector. The bytes and the edits are then not sent to another
    child, nor the edits unpickled again.
    """
    args = (plain, edits, residues, inline)
    if read_back:
        staged = forking.on_spare_staged(_patch_outcome, _read_back_outcome, *args)
        if staged is None:
            return None
        return PatchAside(staged[0], args, staged[1])
    collector = forking.on_spare(_patch_outcome, *args)
    return None if collector is None else PatchAside(collector, args)


def _read_back_outcome(
    outcome: PatchResult | SheetregError, plain: bytes, edits: Sequence[CellEdit], *_: Any
) -> str | None:
    """The spare's read-back of its own patch (:func:`start_patch` with ``read_back``): the
    reopen check's verdict; None after a refused patch (nobody collects it then)."""
    if isinstance(outcome, SheetregError):
        return None
    return _reopen_verdict(outcome.data, edits, outcome.placed)


def _patched(
    plain: bytes,
    edits: Sequence[CellEdit],
    residues: bool,
    inline: bool,
    package: Any = None,
) -> PatchResult:
    from sheetreg.xlsxpatch import patch_workbook

    return patch_workbook(plain, edits, residues=residues, inline=inline, package=package)


# How the safe writer patches (and a warm patch, and an erasure's): sheetreg's own text
# inline (see _write_checked), no residue search (a caller that needs one makes its own).
_OPTIONS = {"residues": False, "inline": True}


class WarmPatch:
    """A spare that holds a workbook's package, its Clients sheet already inflated, and
    makes the patch (then reads it back) as soon as the edits are sent: see
    :func:`warm_patch`."""

    def __init__(
        self,
        sha256: str,
        staged: tuple[Callable[[Any], None], forking.Collector, forking.Collector],
    ) -> None:
        self.sha256 = sha256
        self._send, self._first, self._second = staged
        self._open = True

    def fits(self, sha256: str) -> bool:
        """Whether it can make the patch of the file with this SHA-256 (the one it was
        given; it patches as the safe writer does), not having been sent edits yet."""
        return self._open and sha256 == self.sha256

    def send(self, plain: bytes, edits: Sequence[CellEdit]) -> PatchAside:
        """The patch of ``edits``, being made (as :func:`start_patch` with ``read_back``);
        ``plain`` is the package it has (patched here should the spare die). The collectors
        go to it: kept here too, the patched package would outlive its use (a collector
        keeps its result)."""
        self._open = False
        self._send(edits)
        args = (plain, edits, _OPTIONS["residues"], _OPTIONS["inline"])
        aside = PatchAside(self._first, args, self._second)
        del self._first, self._second, self._send
        return aside

    def discard(self) -> None:
        """Not wanted (nothing to write, a refusal): the spare is told and reaped. Does
        nothing once the edits were sent (the :class:`PatchAside` has it then)."""
        if self._open:
            self._open = False
            self._first.discard()
            self._second.discard()


def warm_patch(
    package: Package, register: Register, *, rows: bool | None = None
) -> WarmPatch | None:
    """Hand the package a command has just read ``register`` from to a spare, which
    prepares its patch (:func:`sheetreg.xlsxpatch.prepare_patch`: the Clients sheet, which
    every write of flags or erasures changes, inflated) while the edits are still being
    worked out; None when no spare waits, or for an encrypted workbook (read back from its
    file, not by the spare).

    Give it to the write (``warm`` of :func:`write_cells`, or of
    :func:`sheetreg.erasure.execute_erasures`), which sends it the edits if the file is
    still the one read; else it must be discarded.

    ``rows``: whether the spare also finds where the Clients rows are (for edits on most of
    them); None: when most rows have no privacy status yet (a first run of the flags). An
    erasure's few edits come at once, and would wait for that.
    """
    if package.encrypted:
        return None
    clients = register.table(CLIENTS.key)
    sheets = [clients.name] if clients is not None else []
    if rows is None:
        rows = clients is not None and _statuses_mostly_unwritten(clients)
    box: list[Any] = []  # the edits, from the patch to its read-back in the spare
    staged = forking.on_spare_staged_fed(
        _warm_patch_outcome, _warm_read_back, package.plain, sheets, rows, box
    )
    if staged is None:
        return None
    return WarmPatch(register.snapshot.sha256, staged)


def _statuses_mostly_unwritten(clients: Table) -> bool:
    """Whether most Clients rows have no privacy status yet (a first run): then the patch
    will write one on nearly every row, and the spare finds where the rows are while the
    statuses are worked out. Next week's few changed statuses do without (at 100,000 rows
    the search would take the CPU the validation beside them needs)."""
    if not clients.rows:
        return False
    if not clients.has("privacy_status"):
        return True
    blank = sum(1 for v in clients.column_values("privacy_status") if values.is_empty(v))
    return blank * 2 > len(clients.rows)


def _warm_patch_outcome(
    receive: Callable[[], Any],
    plain: bytes,
    sheets: list[str],
    rows: bool,
    box: list[Any],
) -> PatchResult | SheetregError:
    """The spare's side of :func:`warm_patch`: prepare, wait for the edits, patch."""
    from sheetreg.xlsxpatch import prepare_patch

    try:
        package = prepare_patch(plain, sheets, rows=rows)
    except Exception:
        package = None  # the patch meets the same and says what it is
    edits = receive()
    box.append(edits)
    try:
        return _patched(plain, edits, _OPTIONS["residues"], _OPTIONS["inline"], package)
    except SheetregError as exc:
        return exc


def _warm_read_back(
    outcome: PatchResult | SheetregError,
    plain: bytes,
    _sheets: list[str],
    _rows: bool,
    box: list[Any],
) -> str | None:
    return _read_back_outcome(outcome, plain, box[0])


def _patch_outcome(
    plain: bytes, edits: Sequence[CellEdit], residues: bool, inline: bool
) -> PatchResult | SheetregError:
    """The spare's side of :func:`start_patch`: the patch, or the refusal it ended in."""
    try:
        return _patched(plain, edits, residues, inline)
    except SheetregError as exc:
        return exc


def start_fidelity_check_early(original: bytes, plan: Sequence[CellEdit]) -> forking.Fed:
    """The fidelity check, started before the patch of ``plan`` is made; hand it the patch
    with ``send(result)``. The child prepares the original's side meanwhile (see
    :func:`sheetreg.xlsxpatch.verify_patch`); otherwise as :func:`start_fidelity_check`.
    """
    return forking.start_fed(_fidelity_verdict_fed, original, plan, light=True)


def _fidelity_verdict_fed(
    receive: Callable[[], PatchResult], original: bytes, plan: Sequence[CellEdit]
) -> str | None:
    return _fidelity_verdict(original, receive, plan)


def _fidelity_verdict(
    original: bytes, result: PatchResult | Callable[[], PatchResult], plan: Sequence[CellEdit]
) -> str | None:
    """None when the patched package differs from the original only as planned, else why."""
    from sheetreg.xlsxpatch import verify_patch

    try:
        verify_patch(original, result, plan)
    except FidelityError as exc:
        return str(exc)
    return None


def _as_edits(edits: Mapping[str, CellValue] | Sequence[CellEdit]) -> list[CellEdit]:
    from sheetreg.xlsxpatch import CellEdit

    if isinstance(edits, Mapping):
        out = []
        for ref, value in edits.items():
            sheet, sep, cell = ref.rpartition("!")
            if not sep or not sheet or not re.fullmatch(r"\$?[A-Za-z]{1,3}\$?\d+", cell):
                raise WriteRefused(f"{ref!r} is not a cell reference like 'Sheet1!B2'.")
            out.append(CellEdit(sheet.strip("'"), cell.replace("$", "").upper(), value))
        return out
    return list(edits)


def _make_backup(path: Path, data: bytes, backup_dir: Path) -> Path:
    backup_dir.mkdir(parents=True, exist_ok=True)
    # UTC names sort in time order even across a daylight-saving change.
    target = backup_dir / backup_name(path, dt.datetime.now(dt.UTC))
    # Written under a temporary name first, so a half-written backup never looks complete.
    tmp = _write_new_file(backup_dir, f".{path.name}{TEMP_MARK}{os.getpid()}-", ".tmp", data)
    tmp.replace(target)
    _fsync_dir(backup_dir)
    return target


def _rotate_backups(path: Path, backup_dir: Path, keep: int) -> None:
    backups = list_backups(path, backup_dir)
    for old in backups[: max(0, len(backups) - max(keep, 1))]:
        with contextlib.suppress(OSError):
            old.unlink()
