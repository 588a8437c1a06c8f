"""A lossless writer: patch cells inside an .xlsx/.xlsm package instead of re-saving it.

Loading and saving a workbook through openpyxl silently drops what openpyxl does not model
(threaded comments, x14 extensions, shapes, slicers, VBA, custom XML) and empties cached
formula results. This module edits the zip package directly: only the worksheet parts that
hold edits are rewritten, plus the bookkeeping parts an edit implies (the shared-string table,
styles when a date needs a date format, calcChain, an Excel table that grows, and the
relationship/content-type entries of a dropped calcChain). Every other member is copied with
the same name, order, timestamp and decompressed bytes.

Worksheets are never parsed into a DOM: a register of 100,000 rows must patch in seconds and
well under 400 MiB. Row elements are located with compiled byte regexes, only rows that carry
an edit are taken apart, and everything between them is spliced through unchanged.

Erasure grade: a shared string that an edit orphans is emptied in ``sharedStrings.xml``. It
keeps its slot (``<si><t/></si>``), so no reference anywhere is renumbered: every sheet
without an edit stays byte-identical, and its proof needs no decoding. Excel and LibreOffice
rebuild the table on their next save. The old values of overwritten text cells are
then searched for in the whole new package and reported as :class:`Residue` (part and kind
only; never the value).

Error messages name parts, sheets and cells, never cell values: the register holds personal
(and likely health) data.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import io
import itertools
import json
import math
import operator
import pickle
import posixpath
import re
import string
import struct
import urllib.parse
import zipfile
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple, SupportsIndex
from xml.parsers import expat

if TYPE_CHECKING:
    from lxml import etree

from sheetreg.errors import FidelityError, PatchError
from sheetreg.register import quick_init
from sheetreg.values import fold

__all__ = [
    "CellEdit",
    "CellValue",
    "PatchResult",
    "Residue",
    "find_text",
    "patch_further",
    "patch_workbook",
    "read_cells",
    "reader_view",
    "sheet_parts",
    "verify_patch",
]

CellValue = str | int | float | bool | dt.date | dt.datetime | None

# Deflate level for the rewritten package. On the 51 MiB sheet of a 100,000-row register,
# level 1 takes 0.18 s against 0.72 s at zlib's default 6, for a part of 9.2 instead of
# 6.7 MiB (benchmarks/bench_write.py prints these figures); Excel recompresses on its next save.
COMPRESS_LEVEL = 1

# Deflate and inflate: ISA-L's (python-isal), which writes the same standard deflate streams
# several times as fast as zlib at level 1, and smaller (the 43 MiB Clients sheet of a
# 100,000-client register: 0.05 s and 6.3 MiB, against 0.25 s and 6.8 MiB), inflates them in
# half zlib's time, and lets go of the GIL as it works; zlib where it is not installed. What it
# inflates is checked against the member's CRC-32 computed by zlib, and the reopen check reads
# the written package with another inflater (python-calamine's).
try:
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - isal is a dependency; this keeps a broken install usable
    _fast_zlib = zlib  # type: ignore[assignment]

MAX_CELL_CHARS = 32_767  # Excel's limit for the text of one cell
MAX_ROW = 1_048_576
MAX_COL = 16_384

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CELL_SHEET_TYPES = ("worksheet", "macrosheet", "xlMacrosheet", "xlIntlMacrosheet", "dialogsheet")

# numFmtIds Excel treats as dates/times without a formatCode in styles.xml (14-22, 45-47, and
# the East Asian built-ins 27-36 and 50-58).
_BUILTIN_DATE_FORMATS = frozenset([*range(14, 23), *range(45, 48), *range(27, 37), *range(50, 59)])

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_X_ESCAPE_LITERAL = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_X_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_REF = re.compile(r"([A-Za-z]{1,3})([1-9][0-9]{0,6})")
_RANGE_END = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})")
_ATTR = re.compile(rb"""([\w:.\-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ROW_R = re.compile(rb"""\sr\s*=\s*["'](\d+)["']""")
_CELL_R = re.compile(rb"""\sr\s*=\s*["']([A-Za-z]{1,3})(\d+)["']""")
_T_S = re.compile(rb"""\st\s*=\s*["']s["']""")
_XML_SPACE = re.compile(rb"[ \t\r\n]*")
_ROOT = re.compile(rb"<(?![?!])((?:[A-Za-z_][\w.\-]*:)?)([A-Za-z_][\w.\-]*)")


# --- public data types ---------------------------------------------------------------------


@quick_init  # a first weekly run makes one per client
@dataclass(frozen=True, slots=True)
class CellEdit:
    """One planned cell change: ``value`` None empties the cell."""

    sheet: str
    cell: str
    value: CellValue

    def __reduce__(self) -> tuple[type[CellEdit], tuple[str, str, CellValue]]:
        # Pickled as its three fields (a write's checks get 10^5 edits through a pipe):
        # 40% less time and size than the default's state dictionary.
        return (CellEdit, (self.sheet, self.cell, self.value))


class EditBatch(tuple[CellEdit, ...]):
    """Edits that cross pipes to several children (the patch's and its checks'): pickled
    once, by columns, however many children get them.

    10^5 edits pickled as objects cost each of them a call in Python, one pickle per child;
    three tuples of their fields pickle at C speed, and the stream is kept for the next
    child (a batch, like a tuple, does not change). Unpickled, it is a plain list.
    """

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        stream = self.__dict__.get("_stream")
        if stream is None:
            columns = (
                tuple(e.sheet for e in self),
                tuple(e.cell for e in self),
                tuple(e.value for e in self),
            )
            stream = self.__dict__["_stream"] = pickle.dumps(columns, pickle.HIGHEST_PROTOCOL)
        data: Any = pickle.PickleBuffer(stream) if int(protocol) >= 5 else stream
        return (_edits_from_columns, (data,))


def _edits_from_columns(stream: bytes) -> list[CellEdit]:
    return list(map(CellEdit, *pickle.loads(stream)))


@dataclass(frozen=True)
class Residue:
    """Where an old value of an edited cell still appears: the part, its kind, the needle."""

    part: str
    kind: str
    needle: int


class Placed(NamedTuple):
    """Where a patch put cells in a worksheet part as written (inflated): ``refs[k]`` from
    ``spans[2k]`` to ``spans[2k + 1]``. Those of the common case (a cell appended to its
    row), which are most of a first run's: the reopen check takes them from there instead
    of searching the part for them (see :func:`cells_excerpt`)."""

    refs: list[str]
    spans: array


@dataclass
class PatchResult:
    """The patched package and what changed in it.

    ``residues`` refer (by ``needle``) to the distinct old text values of the overwritten or
    emptied cells, numbered in the order their first edit appears in the edit list.
    ``placed`` is where cells went, by sheet part (see :class:`Placed`): known where the
    patch was made, it does not travel with it to another process.
    """

    data: bytes
    changed_parts: list[str]
    removed_strings: int
    residues: list[Residue]
    placed: dict[str, Placed] = field(default_factory=dict, compare=False, repr=False)

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        # A patch crosses pipes to and from the checks' children: under protocol 5 its
        # package (megabytes) goes as an out-of-band buffer, written from where it is.
        data: Any = pickle.PickleBuffer(self.data) if int(protocol) >= 5 else self.data
        return (PatchResult, (data, self.changed_parts, self.removed_strings, self.residues))


# --- small helpers -------------------------------------------------------------------------


# Column letters in Excel's order (A..Z, AA..ZZ, AAA..XFD), built from products, which is
# several times faster at import than converting 16,384 numbers one by one.
_COLS = [
    "",
    *(
        "".join(p)
        for width in (1, 2, 3)
        for p in itertools.product(string.ascii_uppercase, repeat=width)
    ),
][: MAX_COL + 1]
_COL_NUM = {name: i for i, name in enumerate(_COLS) if name}


_COL_NUM_B = {name.encode("ascii"): i for name, i in _COL_NUM.items()}


def _col_num(letters: str | bytes) -> int:
    """Column number of ``B`` or ``b"B"`` (MAX_COL + 1 when not a column)."""
    num = (_COL_NUM_B if isinstance(letters, bytes) else _COL_NUM).get(letters)  # type: ignore[call-overload]
    if num is None:
        num = (
            _COL_NUM_B.get(letters.upper())
            if isinstance(letters, bytes)
            else _COL_NUM.get(letters.upper())
        )
    return MAX_COL + 1 if num is None else num


def _ref(row: int, col: int) -> str:
    return f"{_COLS[col]}{row}"


def _parse_ref(cell: str) -> tuple[int, int] | None:
    """(row, col) of an A1-style reference (any case, no $); None when it is not one."""
    letters = cell.rstrip("0123456789")
    digits = cell[len(letters) :]
    col = _COL_NUM.get(letters) or _COL_NUM.get(letters.upper())
    if col is None or not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return None
    row = int(digits)
    return (row, col) if row <= MAX_ROW else None


def _parse_range(ref: str) -> tuple[int, int, int, int] | None:
    """``A1:C3`` or ``B2`` -> (row1, col1, row2, col2); None when not a plain cell range."""
    ends = ref.split(":")
    if not 1 <= len(ends) <= 2:
        return None
    cells = []
    for end in ends:
        m = _RANGE_END.fullmatch(end.strip())
        if m is None:
            return None
        cells.append((int(m[2]), _col_num(m[1])))
    (r1, c1), (r2, c2) = cells[0], cells[-1]
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def _range_text(r1: int, c1: int, r2: int, c2: int) -> str:
    if (r1, c1) == (r2, c2):
        return _ref(r1, c1)
    return f"{_ref(r1, c1)}:{_ref(r2, c2)}"


def _attrs(raw: bytes) -> dict[bytes, bytes]:
    return {m[1]: m[2] if m[2] is not None else m[3] for m in _ATTR.finditer(raw)}


def _entity(m: re.Match[str]) -> str:
    name = m[1]
    if name[0] == "#":
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        return chr(code)
    return _ENTITIES[name]


def _xml_unescape(raw: bytes) -> str:
    text = raw.decode("utf-8")
    return _ENTITY.sub(_entity, text) if "&" in text else text


def _ooxml_text(raw: bytes) -> str:
    """Decode the content of a ``<t>``: XML entities, then Excel's ``_xHHHH_`` escapes."""
    text = _xml_unescape(raw)
    if "_x" in text:
        text = _X_ESCAPE.sub(lambda m: chr(int(m[1], 16)), text)
    return text


def _escape_text(text: str) -> bytes:
    """Text content for a ``<t>`` or ``<v>``, escaped so every reader gets ``text`` back."""
    if "_x" in text:
        # Excel reads _xHHHH_ as an escaped character; escape the underscore to keep it literal.
        text = _X_ESCAPE_LITERAL.sub(r"_x005F_\1", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A literal CR would be normalised to LF by every XML parser.
    text = text.replace("\r", "&#13;")
    return text.encode("utf-8")


def _needs_preserve(text: str) -> bool:
    return bool(text) and (
        text[0].isspace() or text[-1].isspace() or "\n" in text or "\t" in text or "  " in text
    )


def _prefix_of(data: bytes) -> bytes:
    """The namespace prefix of the root element (``b"x:"`` for ``<x:worksheet>``)."""
    m = _ROOT.search(data, 0, 4096)
    return m[1] if m else b""


def _digit_alternation(numbers: Iterable[int]) -> bytes:
    """A regex matching exactly the given non-negative integers, as a trie (fast to match)."""
    trie: dict[str, dict] = {}
    for n in numbers:
        node = trie
        for ch in str(n):
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict]) -> str:
        alts = [ch + emit(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:
            return f"(?:{body})?" if len(alts) == 1 else body + "?"
        return body

    return emit(trie).encode("ascii")


@dataclass(frozen=True)
class _SheetRx:
    """Compiled patterns for one namespace prefix of a worksheet."""

    prefix: bytes
    row_start: re.Pattern[bytes]
    row_close: bytes
    cell: re.Pattern[bytes]
    cell_open: bytes
    cell_r_open: bytes
    cell_start: re.Pattern[bytes]
    cell_without_r: re.Pattern[bytes]
    sheet_data: re.Pattern[bytes]
    sheet_data_close: bytes
    dimension: re.Pattern[bytes]
    cols: re.Pattern[bytes]
    col: re.Pattern[bytes]
    v: re.Pattern[bytes]
    f: re.Pattern[bytes]
    t: re.Pattern[bytes]
    rph: re.Pattern[bytes]
    inline: re.Pattern[bytes]
    array_f: re.Pattern[bytes]


@functools.lru_cache(maxsize=8)
def _sheet_rx(prefix: bytes) -> _SheetRx:
    p = re.escape(prefix)
    return _SheetRx(
        prefix=prefix,
        row_start=re.compile(rb"<" + p + rb"row(?=[\s/>])([^>]*?)(/?)>"),
        row_close=b"</" + prefix + b"row>",
        cell=re.compile(rb"<" + p + rb"c(?=[\s/>])([^>]*?)(?:/>|>(.*?)</" + p + rb"c>)", re.S),
        cell_open=b"<" + prefix + b"c",
        cell_r_open=b"<" + prefix + b'c r="',
        cell_start=re.compile(rb"<" + p + rb"c[\s/>]"),
        cell_without_r=re.compile(rb"<" + p + rb"c(?=[\s/>])(?![^>]*\sr\s*=)"),
        sheet_data=re.compile(rb"<" + p + rb"sheetData(?=[\s/>])[^>]*?(/?)>"),
        sheet_data_close=b"</" + prefix + b"sheetData>",
        dimension=re.compile(
            rb"<" + p + rb"dimension(?=[\s/>])[^>]*?\sref\s*=\s*[\"']([^\"']*)[\"'][^>]*>"
        ),
        cols=re.compile(rb"<" + p + rb"cols(?=[\s>]).*?</" + p + rb"cols>", re.S),
        col=re.compile(rb"<" + p + rb"col(?=[\s/>])([^>]*?)/?>"),
        v=re.compile(rb"<" + p + rb"v(?:\s[^>]*)?>([^<]*)</" + p + rb"v>"),
        f=re.compile(rb"<" + p + rb"f(?=[\s/>])([^>]*?)(?:/>|>([^<]*)</" + p + rb"f>)"),
        t=re.compile(rb"<" + p + rb"t(?=[\s/>])[^>]*?(?:/>|>([^<]*)</" + p + rb"t>)"),
        rph=re.compile(rb"<" + p + rb"rPh(?=[\s/>]).*?</" + p + rb"rPh>", re.S),
        inline=re.compile(rb"<" + p + rb"is(?=[\s>]).*?</" + p + rb"is>", re.S),
        array_f=re.compile(rb"<" + p + rb"f\s[^>]*\bt\s*=\s*[\"'](?:array|dataTable)[\"'][^>]*>"),
    )


def _is_text_value_attr(value: bytes | None) -> bool:
    return value in (b"s", b"inlineStr", b"str")


# --- the package -----------------------------------------------------------------------------


class _Package:
    """A read-only view of an OPC zip package; ``error`` is the exception class to raise."""

    def __init__(self, data: bytes, error: type[Exception] = PatchError) -> None:
        self.error = error
        self.data = data
        if data[:4] == _OLE_MAGIC:
            raise error(
                "the workbook is encrypted (or a legacy .xls file); it must be decrypted "
                "before sheetreg can write it"
            )
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            self.infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise error("the workbook is not a valid .xlsx package (damaged zip)") from exc
        self.names = [i.filename for i in self.infos]
        if len(set(self.names)) != len(self.names):
            raise error("the package has duplicate member names")
        for info in self.infos:
            if info.flag_bits & 0x1:
                raise error(f"{info.filename}: the package member is encrypted")
        # OPC part names are case-insensitive; relationship targets may differ in case.
        self._by_fold = {n.casefold(): n for n in self.names}
        self._ends: dict[int, int] | None = None  # member start -> where its bytes end
        self._preloaded: dict[str, bytes] = {}  # see preload
        # Part -> (its bytes, where each row is): see index_rows.
        self._row_indexes: dict[str, tuple[bytes, _RowIndex]] = {}

    def has(self, name: str) -> bool:
        return name.casefold() in self._by_fold

    def real_name(self, name: str) -> str | None:
        return self._by_fold.get(name.casefold())

    def member(self, info: zipfile.ZipInfo) -> memoryview | None:
        """The member's bytes as stored: local header, compressed data, data descriptor.

        A member ends where the next one (or the central directory) starts; what lies between
        its data and there must be nothing, or a data descriptor (12 to 24 bytes: with or
        without its signature, ZIP64 or not). None when the bytes cannot be delimited so.
        """
        start = info.header_offset
        data = self.data
        if self._ends is None:
            starts = sorted({i.header_offset for i in self.infos})
            limit = getattr(self.zip, "start_dir", None)
            if not isinstance(limit, int):
                return None
            self._ends = dict(zip(starts, [*starts[1:], limit], strict=True))
        end = self._ends.get(start)
        if end is None or data[start : start + 4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack_from("<2H", data, start + 26)
        gap = end - (start + 30 + name_len + extra_len + info.compress_size)
        if gap != 0 and not (info.flag_bits & 0x8 and gap in (12, 16, 20, 24)):
            return None
        return memoryview(data)[start:end]

    def _compressed(self, info: zipfile.ZipInfo, *, named: bool = False) -> memoryview | None:
        """The member's compressed data (after its local header), or None if it cannot be
        delimited; with ``named``, also None unless the local header names the member as the
        central directory does (as zipfile checks before it reads)."""
        raw = self.member(info)
        if raw is None:
            return None
        name_len, extra_len = struct.unpack_from("<2H", raw, 26)
        if named:
            encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
            if raw[30 : 30 + name_len] != info.orig_filename.encode(encoding, "replace"):
                return None
        start = 30 + name_len + extra_len
        return raw[start : start + info.compress_size]

    def stored(self, name: str) -> tuple[int, int, memoryview] | None:
        """(method, CRC, compressed data) of a member, or None if it cannot be delimited."""
        info = self.zip.getinfo(name)
        body = self._compressed(info)
        return None if body is None else (info.compress_type, info.CRC, body)

    def _plain_body(self, real: str) -> tuple[zipfile.ZipInfo, memoryview] | None:
        """A stored or deflated member's compressed bytes, for :func:`_fast_zlib` to inflate;
        None when it is anything else (zipfile reads it then, and names what is wrong)."""
        info = self.zip.getinfo(real)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return None
        body = self._compressed(info, named=True)
        return None if body is None else (info, body)

    def _inflated(self, real: str) -> bytes | None:
        """The member's bytes, inflated by :data:`_fast_zlib`, its CRC-32 checked; None when
        it cannot be read so (zipfile reads it then, and raises what is wrong)."""
        found = self._plain_body(real)
        if found is None:
            return None
        info, body = found
        if info.compress_type == zipfile.ZIP_STORED:
            out = bytes(body)
        else:
            inflater = _fast_zlib.decompressobj(-15)
            try:
                out = inflater.decompress(body)
            except Exception:  # isal raises its own error type
                return None
            if not inflater.eof:
                return None
        if zlib.crc32(out) != info.CRC:
            return None
        return out

    def central_records(self) -> list[memoryview] | None:
        """Each member's central-directory record as stored, or None (ZIP64, odd layouts)."""
        data = self.data
        pos = getattr(self.zip, "start_dir", None)
        if not isinstance(pos, int):
            return None
        out = []
        for info in self.infos:
            if data[pos : pos + 4] != b"PK\x01\x02":
                return None
            (offset,) = struct.unpack_from("<L", data, pos + 42)
            if offset != info.header_offset or offset == 0xFFFFFFFF:
                return None  # prepended data or ZIP64: offsets cannot be copied as they are
            name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
            end = pos + 46 + name_len + extra_len + comment_len
            out.append(memoryview(data)[pos:end])
            pos = end
        return out

    def open(self, name: str) -> IO[bytes]:
        """The member's bytes as a stream, decompressed as read (its CRC checked at the end)."""
        real = self.real_name(name)
        if real is None:
            raise self.error(f"{name}: the package has no such part")
        found = self._plain_body(real)
        if found is not None:
            return _InflateStream(found[0], found[1], self.error)
        try:
            inner = self.zip.open(real)
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as exc:
            raise self.error(f"{real}: the package member cannot be read") from exc
        return _MemberStream(inner, real, self.error)

    def preload(self, names: Iterable[str]) -> None:
        """Read (inflate) these parts now, for the first :meth:`read` of each to give."""
        for name in names:
            real = self.real_name(name)
            if real is not None and real not in self._preloaded:
                self._preloaded[real] = self.read(real)

    def index_rows(self, names: Iterable[str]) -> None:
        """Find where each row of these (preloaded) worksheet parts is (:func:`_index_rows`),
        for the patch to take from there: done while the edits are still being worked out,
        it is the part of the patch's row walk that needs no edit."""
        for name in names:
            real = self.real_name(name)
            data = self._preloaded.get(real) if real is not None else None
            if data is not None:
                index = _index_rows(data)
                if index is not None:
                    self._row_indexes[real] = (data, index)

    def row_index(self, name: str, data: bytes) -> _RowIndex | None:
        """The rows of part ``name`` found by :meth:`index_rows`, if ``data`` is the very
        bytes they were found in."""
        real = self.real_name(name)
        found = self._row_indexes.get(real) if real is not None else None
        return found[1] if found is not None and found[0] is data else None

    def read(self, name: str) -> bytes:
        real = self.real_name(name)
        if real is None:
            raise self.error(f"{name}: the package has no such part")
        preloaded = self._preloaded.pop(real, None)
        if preloaded is not None:
            return preloaded
        inflated = self._inflated(real)
        if inflated is not None:
            return inflated
        try:
            return self.zip.read(real)
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as exc:
            raise self.error(f"{real}: the package member cannot be read") from exc


def _same_stored(a: tuple[int, int, memoryview], b: tuple[int, int, memoryview]) -> bool:
    """Whether two :meth:`_Package.stored` members are the same: method, CRC and bytes.

    Two memoryviews are compared byte by byte through their format (5 ns a byte: 50 ms for
    a sheet of 10 MB); hmac.compare_digest reads both buffers as they are, 6 times as fast.
    """
    return a[:2] == b[:2] and len(a[2]) == len(b[2]) and hmac.compare_digest(a[2], b[2])


class _InflateStream(io.RawIOBase):
    """A stored or deflated member being read, inflated by :data:`_fast_zlib` in pieces; at
    its end the CRC-32 is checked. Damage raises the package's error, naming the member."""

    # Compressed bytes inflated at a time: deflate's ratio is at most about 1,000 to 1, so a
    # call never makes more than 64 MB (a register's XML: about 0.6 MB).
    _PIECE = 1 << 16

    def __init__(self, info: zipfile.ZipInfo, body: memoryview, error: type[Exception]) -> None:
        super().__init__()
        self._name, self._error, self._crc_want = info.filename, error, info.CRC
        self._body = body
        self._pos = 0
        self._inflater = (
            _fast_zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        )
        self._buf = bytearray()
        self._crc = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fail(self) -> Exception:
        return self._error(f"{self._name}: the package member cannot be read")

    def _fill(self, size: int) -> None:
        while not self._eof and (size < 0 or len(self._buf) < size):
            piece = self._body[self._pos : self._pos + self._PIECE]
            self._pos += len(piece)
            if self._inflater is None:
                out = bytes(piece)
                done = self._pos >= len(self._body)
            else:
                if not piece:
                    raise self._fail()  # the stream ends before its end
                try:
                    out = self._inflater.decompress(piece)
                except Exception:  # isal raises its own error type
                    raise self._fail() from None
                done = self._inflater.eof
            self._crc = zlib.crc32(out, self._crc)
            self._buf += out
            if done:
                self._eof = True
                if self._crc != self._crc_want:
                    raise self._fail()

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        self._fill(size)
        if size < 0 or size >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
        else:
            out = bytes(self._buf[:size])
            del self._buf[:size]
        return out

    def close(self) -> None:
        self._body = memoryview(b"")
        self._buf.clear()
        super().close()


class _MemberStream(io.RawIOBase):
    """A package member being read: a damaged one raises the package's error, naming it."""

    def __init__(self, inner: IO[bytes], name: str, error: type[Exception]) -> None:
        super().__init__()
        self._inner, self._name, self._error = inner, name, error

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._inner.read(size)
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as exc:
            raise self._error(f"{self._name}: the package member cannot be read") from exc

    def close(self) -> None:
        self._inner.close()
        super().close()


@functools.cache
def _parser() -> etree.XMLParser:
    # lxml is imported on first use: `sheetreg validate` only needs it for workbook.xml,
    # and importing it costs more than parsing that part.
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def _parse_xml(pkg: _Package, name: str) -> etree._Element:
    from lxml import etree

    try:
        return etree.fromstring(pkg.read(name), _parser())
    except etree.XMLSyntaxError as exc:
        raise pkg.error(f"{name}: the part is not well-formed XML") from exc


@dataclass(frozen=True)
class _Rel:
    rid: str
    type: str
    target: str  # resolved part name ("" for external targets)


def _rels_part_of(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def _read_rels(pkg: _Package, source: str) -> list[_Rel]:
    """Relationships of ``source`` with targets resolved to part names."""
    rels_name = _rels_part_of(source)
    if not pkg.has(rels_name):
        return []
    root = _parse_xml(pkg, rels_name)
    base = posixpath.dirname(source)
    out = []
    for el in root.iter(f"{{{_PKG_REL_NS}}}Relationship"):
        target = urllib.parse.unquote(el.get("Target", ""))
        if el.get("TargetMode") == "External":
            resolved = ""
        elif target.startswith("/"):
            resolved = posixpath.normpath(target.lstrip("/"))
        else:
            resolved = posixpath.normpath(posixpath.join(base, target))
        real = pkg.real_name(resolved) if resolved else None
        out.append(_Rel(el.get("Id", ""), el.get("Type", ""), real or resolved))
    return out


def _rel_kind(rel_type: str) -> str:
    return rel_type.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class _SheetInfo:
    name: str
    sheet_id: int
    part: str
    kind: str  # the relationship kind: worksheet, chartsheet, ...


@dataclass
class _Workbook:
    part: str
    sheets: list[_SheetInfo]
    date1904: bool
    sst_part: str | None
    styles_part: str | None
    calc_chain_part: str | None

    def cell_sheet_parts(self) -> list[str]:
        return [s.part for s in self.sheets if s.kind in _CELL_SHEET_TYPES and s.part]

    def find_sheet(self, name: str, error: type[Exception]) -> _SheetInfo:
        for sheet in self.sheets:
            if sheet.name == name:
                return sheet
        # Excel treats sheet names case-insensitively, so this match is unique.
        for sheet in self.sheets:
            if sheet.name.casefold() == name.casefold():
                return sheet
        raise error(f"the workbook has no sheet named {name!r}")


def _load_workbook(pkg: _Package) -> _Workbook:
    from lxml import etree

    wb_part = next(
        (r.target for r in _read_rels(pkg, "") if _rel_kind(r.type) == "officeDocument"), ""
    )
    if not wb_part or not pkg.has(wb_part):
        wb_part = "xl/workbook.xml"
    if not pkg.has(wb_part):
        raise pkg.error("the package has no workbook part (not a spreadsheet)")
    wb_part = pkg.real_name(wb_part) or wb_part
    root = _parse_xml(pkg, wb_part)
    rels = {r.rid: r for r in _read_rels(pkg, wb_part)}
    sheets = []
    date1904 = False
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        local = etree.QName(el).localname
        if local == "workbookPr":
            date1904 = el.get("date1904", "0").lower() in ("1", "true")
        elif local == "sheet":
            rid = el.get(f"{{{_REL_NS}}}id") or el.get(
                "{http://purl.oclc.org/ooxml/officeDocument/relationships}id", ""
            )
            rel = rels.get(rid)
            sheet_id = el.get("sheetId", "0")
            sheets.append(
                _SheetInfo(
                    name=el.get("name", ""),
                    sheet_id=int(sheet_id) if sheet_id.isdigit() else 0,
                    part=rel.target if rel and pkg.has(rel.target) else "",
                    kind=_rel_kind(rel.type) if rel else "",
                )
            )

    def first(kind: str) -> str | None:
        return next(
            (r.target for r in rels.values() if _rel_kind(r.type) == kind and pkg.has(r.target)),
            None,
        )

    return _Workbook(
        part=wb_part,
        sheets=sheets,
        date1904=date1904,
        sst_part=first("sharedStrings"),
        styles_part=first("styles"),
        calc_chain_part=first("calcChain"),
    )


# --- shared strings ------------------------------------------------------------------------


class _SharedStrings:
    """The shared-string table, indexed lazily: a register's table can hold 10^6 strings."""

    def __init__(self, part: str, data: bytes, error: type[Exception] = PatchError) -> None:
        self.part = part
        self.data = data
        p = self.prefix = _prefix_of(data)
        pe = re.escape(p)
        root = re.compile(rb"<" + pe + rb"sst(?=[\s/>])[^>]*?(/?)>").search(data)
        if root is None:
            raise error(f"{part}: not a shared-string table")
        self.root = root
        self.self_closing = bool(root[1])
        self.body_start = root.end()
        if self.self_closing:
            self.body_end = self.body_start
        else:
            self.body_end = data.rfind(b"</" + p + b"sst>")
            if self.body_end < self.body_start:
                raise error(f"{part}: the shared-string table is truncated")
        self._si_start = re.compile(rb"<" + pe + rb"si(?=[\s/>])")
        self._si_elem = re.compile(
            rb"<" + pe + rb"si(?=[\s/>])[^>]*?(?:/>|>.*?</" + pe + rb"si>)", re.S
        )
        self._plain = re.compile(
            rb"<"
            + pe
            + rb"si(?=[\s/>])(?:><"
            + pe
            + rb"t(?:\s[^>]*)?>([^<]*)</"
            + pe
            + rb"t></"
            + pe
            + rb"si>)?"
        )
        self._t = re.compile(rb"<" + pe + rb"t(?=[\s/>])[^>]*?(?:/>|>([^<]*)</" + pe + rb"t>)")
        self._rph = re.compile(rb"<" + pe + rb"rPh(?=[\s/>]).*?</" + pe + rb"rPh>", re.S)
        self.orig_count = self._count_si(self.body_start, self.body_end)
        self.appended: list[bytes] = []
        self._appended_index: dict[str, int] = {}
        self._starts: array[int] | None = None
        self._plain_index: dict[str, int] | None = None
        self._prefetched: dict[str, int | None] = {}
        self._text_cache: dict[int, str] = {}
        self.removed: set[int] = set()  # emptied by blank()
        self._compact: bool | None = None

    @property
    def count(self) -> int:
        return self.orig_count + len(self.appended)

    def _count_si(self, start: int, end: int) -> int:
        head = b"<" + self.prefix + b"si"
        # Each ``<si`` a table has is ``<si>`` (every writer's): two passes, not six.
        every = self.data.count(head, start, end)
        if every == self.data.count(head + b">", start, end):
            return every
        return sum(
            self.data.count(head + c, start, end) for c in (b">", b" ", b"/", b"\n", b"\t", b"\r")
        )

    def starts(self) -> Sequence[int]:
        """Offsets from which each ``<si>`` is the next one (built once, in C-speed steps)."""
        if self._starts is None:
            p = self.prefix
            close = b"</" + p + b"si>"
            body = self.data[self.body_start : self.body_end]
            pieces = body.split(close)
            if len(pieces) - 1 != self.orig_count or b"<" + p + b"si/>" in body:
                self._build_index()  # unusual markup: index with the full pattern
            else:
                # start of item i+1 = body_start + len(pieces[0..i]) + (i+1) * len(close),
                # computed with C iterators: a big register holds a million strings.
                step = len(close)
                lengths = itertools.accumulate(map(len, pieces[:-2]))
                bases = range(self.body_start + step, self.body_start + step * len(pieces), step)
                self._starts = array("q", [self.body_start] if self.orig_count else [])
                self._starts.extend(map(operator.add, lengths, bases))
        assert self._starts is not None
        return self._starts

    def compact(self) -> bool:
        """Whether the body is nothing but its strings' ``<si>`` elements, one after the
        other: it starts with one, each ``</si>`` but the last is followed at once by the
        next, there are as many of those as of ``<si>`` (so each string is one element,
        none inside another; after the last may come its extension list), and no comment,
        CDATA section or processing instruction can hide markup (C-speed counts; cached).

        Then each string's extent (:meth:`starts`) is one whole element: a new table that
        is this one with some of them replaced is well-formed XML if this one is and each
        replacement is (see :func:`_strings_well_formed`).
        """
        if self._compact is None:
            p, data, start, end = self.prefix, self.data, self.body_start, self.body_end
            head, close = b"<" + p + b"si>", b"</" + p + b"si>"
            n = self.orig_count
            first = _XML_SPACE.match(data, start)
            self._compact = (
                n > 0
                and first is not None
                and data.startswith(head, first.end())
                and data.count(head, start, end) == n
                and data.count(close, start, end) == n
                and data.count(close + head, start, end) == n - 1
                and all(data.find(mark, start, end) < 0 for mark in (b"<!--", b"<![", b"<?"))
            )
        return self._compact

    def _build_index(self) -> None:
        """Index every string and the plain ones by text (when many lookups will follow)."""
        starts = array("q")
        plain: dict[str, int] = {}
        append = starts.append
        for i, m in enumerate(self._plain.finditer(self.data, self.body_start, self.body_end)):
            append(m.start())
            raw = m[1]
            if raw is not None:
                plain.setdefault(_ooxml_text(raw), i)
        self._starts = starts
        self._plain_index = plain

    def prefetch(self, texts: Iterable[str]) -> None:
        """Look up many texts in one pass over the plain strings, without indexing them all.

        Each text is matched in the encodings :meth:`_find_plain` knows; one found in none of
        them is appended on lookup (a duplicate of a string spelt otherwise is harmless).
        """
        bodies: dict[bytes, str] = {}
        for text in texts:
            self._prefetched[text] = None
            for body in self._bodies(text):
                bodies.setdefault(body, text)
        found = self._prefetched
        for i, m in enumerate(self._plain.finditer(self.data, self.body_start, self.body_end)):
            raw = m[1]
            if raw is not None:
                text = bodies.get(raw)
                if text is not None and found[text] is None:
                    found[text] = i

    @staticmethod
    def _bodies(text: str) -> set[bytes]:
        base = _escape_text(text)
        bodies = {base, base.replace(b"&gt;", b">")}
        return bodies | {b.replace(b'"', b"&quot;").replace(b"'", b"&apos;") for b in bodies}

    def span(self, index: int) -> tuple[int, int]:
        if self._starts is None and self.orig_count - 64 <= index < self.orig_count:
            start = self._tail_start(index)  # strings just appended by a patch: no index
        else:
            start = self.starts()[index]
        m = self._si_elem.search(self.data, start, self.body_end)
        if m is None:
            raise PatchError(f"{self.part}: string item {index} is malformed")
        return m.start(), m.end()

    def _tail_start(self, index: int) -> int:
        pos = self.body_end
        head = b"<" + self.prefix + b"si"
        for _ in range(self.orig_count - index):
            pos = self.data.rfind(head, self.body_start, pos)
            while pos >= 0 and self.data[pos + len(head) : pos + len(head) + 1] not in (
                b">",
                b" ",
                b"/",
                b"\n",
                b"\t",
                b"\r",
            ):
                pos = self.data.rfind(head, self.body_start, pos)
            if pos < 0:
                raise PatchError(f"{self.part}: string item {index} is missing")
        return pos

    def element(self, index: int) -> bytes:
        if index >= self.orig_count:
            return self.appended[index - self.orig_count]
        start, end = self.span(index)
        return self.data[start:end]

    def text_of(self, index: int) -> str:
        cached = self._text_cache.get(index)
        if cached is not None:
            return cached
        if not 0 <= index < self.count:
            raise PatchError(f"{self.part}: a cell refers to string {index}, which does not exist")
        elem = self.element(index)
        if b"rPh" in elem:
            elem = self._rph.sub(b"", elem)
        text = "".join(_ooxml_text(m[1]) for m in self._t.finditer(elem) if m[1])
        self._text_cache[index] = text
        return text

    def _element_for(self, text: str) -> bytes:
        p = self.prefix
        t_open = b"<" + p + (b't xml:space="preserve">' if _needs_preserve(text) else b"t>")
        return b"<" + p + b"si>" + t_open + _escape_text(text) + b"</" + p + b"t></" + p + b"si>"

    def _find_plain(self, text: str) -> int | None:
        if self._plain_index is not None:
            return self._plain_index.get(text)
        # Few lookups on a big table: search the encodings Excel and others use instead of
        # indexing a million strings.
        p = self.prefix
        bodies = self._bodies(text)
        si_t = b"<" + p + b"si><" + p + b"t"
        tail = b"</" + p + b"t></" + p + b"si>"
        best: int | None = None
        for body in bodies:
            for opening in (si_t + b">", si_t + b' xml:space="preserve">'):
                pos = self.data.find(opening + body + tail, self.body_start, self.body_end)
                if pos >= 0 and (best is None or pos < best):
                    best = pos
        if best is None:
            return None
        return self._count_si(self.body_start, best)

    def index_of(self, text: str, expected_lookups: int) -> int:
        """Index of a plain string equal to ``text``, appending one if there is none."""
        hit = self._appended_index.get(text)
        if hit is not None:
            return hit
        if text in self._prefetched:
            found = self._prefetched[text]
        else:
            if self._plain_index is None and expected_lookups > 64:
                self._build_index()
            found = self._find_plain(text)
        if found is not None:
            return found
        index = self.count
        self.appended.append(self._element_for(text))
        self._appended_index[text] = index
        return index

    def blank(self, remove: set[int]) -> None:
        """Empty the strings ``remove`` in place (erasure-grade: their text is gone).

        Each keeps its slot as an empty string, so that no reference anywhere is renumbered:
        every other sheet stays byte-identical, and the proof need not decode any of them.
        Excel and LibreOffice rebuild the table on their next save.
        """
        self.removed = set(remove)

    def render(self, count_delta: int) -> bytes:
        """The new part: removed strings emptied in place, appended strings, counts updated."""
        p = self.prefix
        empty = b"<" + p + b"si><" + p + b"t/></" + p + b"si>"
        pieces: list[bytes] = []
        data = self.data
        pos = self.body_start
        for hole in sorted(i for i in self.removed if i < self.orig_count):
            start, end = self.span(hole)
            pieces += [data[pos:start], empty]
            pos = end
        pieces.append(data[pos : self.body_end])
        n = self.count
        pieces.extend(
            empty if i in self.removed else self.appended[i - self.orig_count]
            for i in range(self.orig_count, n)
        )
        body = b"".join(pieces)
        root = self._root_tag(n, count_delta)
        if self.self_closing:
            close = b"</" + p + b"sst>"
            return data[: self.root.start()] + root + body + close + data[self.root.end() :]
        return data[: self.root.start()] + root + body + data[self.body_end :]

    def _root_tag(self, unique: int, count_delta: int) -> bytes:
        tag = self.root[0]
        if self.self_closing:
            tag = tag[:-2].rstrip() + b">"

        def fix_count(m: re.Match[bytes]) -> bytes:
            old = int(m[2]) if m[2].isdigit() else 0
            return m[1] + str(max(old + count_delta, 0)).encode() + m[3]

        tag = re.sub(rb"""(\scount\s*=\s*["'])(\d*)(["'])""", fix_count, tag)
        return re.sub(
            rb"""(\suniqueCount\s*=\s*["'])\d*(["'])""",
            lambda m: m[1] + str(unique).encode() + m[2],
            tag,
        )


# --- styles --------------------------------------------------------------------------------


def _is_date_format(code: str) -> bool:
    """True when an Excel number format code displays a date or time."""
    code = code.split(";", 1)[0]
    code = re.sub(r'"[^"]*"|\\.|_.|\*.', "", code)  # literals, escapes, padding
    code = re.sub(r"\[(?!h\]|hh\]|m\]|mm\]|s\]|ss\])[^\]]*\]", "", code, flags=re.I)
    return re.search(r"[dmyhs]", code, re.I) is not None


class _Styles:
    """The cellXfs of styles.xml, enough to tell date formats and to add one date xf."""

    def __init__(self, part: str, data: bytes) -> None:
        self.part = part
        self.data = data
        p = self.prefix = _prefix_of(data)
        pe = re.escape(p)
        self.num_fmts: dict[int, str] = {}
        for m in re.finditer(rb"<" + pe + rb"numFmt(?=[\s/>])([^>]*?)/?>", data):
            a = _attrs(m[1])
            fid = a.get(b"numFmtId", b"")
            if fid.isdigit():
                self.num_fmts[int(fid)] = _xml_unescape(a.get(b"formatCode", b""))
        m = re.search(rb"<" + pe + rb"cellXfs(?=[\s/>])[^>]*?(/?)>", data)
        if m is None or m[1]:
            raise PatchError(f"{part}: styles.xml has no cellXfs; cannot format a date")
        self.xfs_open = m
        self.xfs_end = data.find(b"</" + p + b"cellXfs>", m.end())
        if self.xfs_end < 0:
            raise PatchError(f"{part}: styles.xml cellXfs is truncated")
        xf = re.compile(rb"<" + pe + rb"xf(?=[\s/>])([^>]*?)(?:/>|>.*?</" + pe + rb"xf>)", re.S)
        self.xfs = [_attrs(x[1]) for x in xf.finditer(data, m.end(), self.xfs_end)]
        self.appended: list[bytes] = []
        self._date_for: dict[int, int] = {}

    def is_date(self, index: int) -> bool:
        if not 0 <= index < len(self.xfs):
            return index >= len(self.xfs) and index - len(self.xfs) < len(self.appended)
        fid = self.xfs[index].get(b"numFmtId", b"0")
        if not fid.isdigit():
            return False
        num = int(fid)
        if num in self.num_fmts:
            return _is_date_format(self.num_fmts[num])
        return num in _BUILTIN_DATE_FORMATS

    def date_style(self, base: int) -> int:
        """``base`` if it shows dates, else an existing date xf (alike if possible) or a new one."""
        if self.is_date(base):
            return base
        if base in self._date_for:
            return self._date_for[base]
        base_xf = self.xfs[base] if 0 <= base < len(self.xfs) else {}
        look = (b"fontId", b"fillId", b"borderId")
        dates = [i for i in range(len(self.xfs)) if self.is_date(i)]
        alike = [
            i for i in dates if all(self.xfs[i].get(k, b"0") == base_xf.get(k, b"0") for k in look)
        ]
        if alike or dates:
            choice = (alike or dates)[0]
        else:
            p = self.prefix
            attrs = b" ".join(
                k + b'="' + base_xf.get(k, b"0") + b'"'
                for k in (b"fontId", b"fillId", b"borderId", b"xfId")
            )
            self.appended.append(
                b"<" + p + b'xf numFmtId="14" ' + attrs + b' applyNumberFormat="1"/>'
            )
            choice = len(self.xfs) + len(self.appended) - 1
        self._date_for[base] = choice
        return choice

    def render(self) -> bytes:
        tag = re.sub(
            rb"""(\scount\s*=\s*["'])\d*(["'])""",
            lambda m: m[1] + str(len(self.xfs) + len(self.appended)).encode() + m[2],
            self.xfs_open[0],
        )
        d = self.data
        return (
            d[: self.xfs_open.start()]
            + tag
            + d[self.xfs_open.end() : self.xfs_end]
            + b"".join(self.appended)
            + d[self.xfs_end :]
        )


# --- planning ------------------------------------------------------------------------------


class _CellPlan(NamedTuple):
    row: int
    col: int
    ref: str
    value: CellValue
    edit_index: int


@dataclass
class _SheetPlan:
    info: _SheetInfo
    cells: dict[tuple[int, int], _CellPlan] = field(default_factory=dict)

    def by_row(self) -> dict[int, list[_CellPlan]]:
        rows: dict[int, list[_CellPlan]] = {}
        for key in sorted(self.cells):
            rows.setdefault(key[0], []).append(self.cells[key])
        return rows


def _check_value(value: object, where: str, error: type[Exception]) -> None:
    if value is None or isinstance(value, bool | int | dt.date):
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            raise error(f"{where}: a date-time with a time zone cannot be stored in Excel")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise error(f"{where}: NaN and infinity cannot be stored in Excel")
        return
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            raise error(f"{where}: text longer than {MAX_CELL_CHARS} characters")
        if _XML_ILLEGAL.search(value):
            raise error(f"{where}: text contains a control character Excel cannot store")
        return
    raise error(f"{where}: a {type(value).__name__} cannot be written to a cell")


def _plan(
    wb: _Workbook, edits: Sequence[CellEdit], error: type[Exception]
) -> dict[str, _SheetPlan]:
    """Validate ``edits`` and group them by worksheet part.

    A long run of edits of one sheet (flag's status on every row) is planned a run at a
    time (:meth:`_Planning.run`); whatever that cannot take whole, edit by edit, which also
    names the first edit that is wrong.
    """
    planning = _Planning(wb, error)
    if len(edits) < _PLAN_RUN_EDITS:
        planning.one_by_one(edits, 0)
        return planning.plans
    start = 0
    for _sheet, run in itertools.groupby(map(_EDIT_SHEET, edits)):
        end = start + sum(1 for _ in run)
        if end - start < _PLAN_RUN_EDITS or not planning.run(edits[start:end], start):
            planning.one_by_one(edits[start:end], start)
        start = end
    return planning.plans


_PLAN_RUN_EDITS = 256  # from this many edits of one sheet in a row, they are planned at once
_EDIT_SHEET = operator.attrgetter("sheet")
_EDIT_CELL = operator.attrgetter("cell")
_EDIT_VALUE = operator.attrgetter("value")
_UPPER = string.ascii_uppercase.encode("ascii")
_DIGITS = string.digits.encode("ascii")


def parse_canonical_refs(cells: list[Any]) -> tuple[list[int], list[int]] | None:
    """The rows and columns of ``cells``, references as a patch writes them (``K2``: upper
    case, no $, no leading zero), parsed at C speed; None when one is not such a reference
    (the caller then takes them one by one, which tells lower case from nonsense).

    Byte translations instead of regular expressions (a match costs one a thousand
    instructions, and a first run has 10^5 references), and the rows read as one JSON
    array. The lines joined hold only capitals, digits and newlines, and no digit is
    followed by a capital: each line is capitals and then digits. Its capitals must name a
    column, and its digits, with no leading zero, a row.
    """
    if not cells:
        return None
    try:
        joined = "\n".join(cells).encode("ascii")
    except (TypeError, UnicodeEncodeError):  # not a string, or not a plain reference
        return None
    if joined.translate(None, _UPPER + _DIGITS + b"\n") or b"0A" in joined.translate(_SHAPE):
        return None
    digits = joined.translate(None, _UPPER)
    if digits.startswith(b"0") or b"\n0" in digits:
        return None
    try:  # JSON refuses an empty line (no digits) as it does a leading zero
        rows = json.loads(b"[" + digits.replace(b"\n", b",") + b"]")
    except ValueError:
        return None
    cols = list(map(_COL_NUM_B.get, joined.translate(None, _DIGITS).split(b"\n")))
    # As many rows as cells (a newline inside one gives more), each on the sheet.
    if len(rows) != len(cells) or None in cols or max(rows) > MAX_ROW:
        return None
    return rows, cols  # type: ignore[return-value]  # None is not in cols


# A digit read as 0, a capital as A: "0A" marks a digit followed by a capital.
_SHAPE = bytes.maketrans(_UPPER + _DIGITS, b"A" * 26 + b"0" * 10)


class _Planning:
    """The plans being made of a write's edits, by :func:`_plan`."""

    def __init__(self, wb: _Workbook, error: type[Exception]) -> None:
        self.wb = wb
        self.error = error
        self.plans: dict[str, _SheetPlan] = {}  # by worksheet part
        self.sheets: dict[str, _SheetPlan] = {}  # by the name an edit gives
        self.checked_text: set[str] = set()  # a status repeated on every row is checked once

    def run(self, edits: Sequence[CellEdit], first: int) -> bool:
        """Plan ``edits`` (all of one sheet; the first is edit number ``first``) at C speed:
        their references parsed at once (:func:`parse_canonical_refs`), their values checked
        once each. False, having planned none of them, when any is not plainly right (a
        reference not canonical, a value to refuse, a cell edited twice):
        :meth:`one_by_one` then takes them, and says which is wrong."""
        name = edits[0].sheet
        cells = list(map(_EDIT_CELL, edits))
        parsed = parse_canonical_refs(cells)
        if parsed is None:
            return False
        rows, cols = parsed
        held = list(map(_EDIT_VALUE, edits))
        try:
            distinct = set(zip(map(type, held), held, strict=True))
        except TypeError:  # an unhashable value: refused edit by edit
            return False
        try:
            for kind, value in distinct:
                if kind is not str or value not in self.checked_text:
                    _check_value(value, "", self.error)
        except self.error:
            return False
        keys = list(zip(rows, cols, strict=True))
        planned = dict(
            zip(
                keys,
                map(
                    tuple.__new__,
                    itertools.repeat(_CellPlan),
                    zip(rows, cols, cells, held, range(first, first + len(edits)), strict=True),
                ),
                strict=True,
            )
        )
        sheet = self.sheets.get(name)
        if len(planned) != len(keys) or (sheet is not None and planned.keys() & sheet.cells.keys()):
            return False  # a cell edited twice: whether with the same value is told edit by edit
        if sheet is None:
            info = self.wb.find_sheet(name, self.error)
            if info.kind not in _CELL_SHEET_TYPES or not info.part:
                raise self.error(f"sheet {info.name!r} is not a worksheet with cells")
            sheet = self.sheets[name] = self.plans.setdefault(info.part, _SheetPlan(info))
            if sheet.cells.keys() & planned.keys():  # another name of a sheet already planned
                return False
        sheet.cells.update(planned)
        self.checked_text.update(value for kind, value in distinct if kind is str)
        return True

    def one_by_one(self, edits: Sequence[CellEdit], first: int) -> None:
        """Plan ``edits`` one by one (the first is edit number ``first``)."""
        refs: dict[str, tuple[int, int, str] | None] = {}
        for index, edit in enumerate(edits, first):
            sheet = self.sheets.get(edit.sheet)
            if sheet is None:
                info = self.wb.find_sheet(edit.sheet, self.error)
                if info.kind not in _CELL_SHEET_TYPES or not info.part:
                    raise self.error(f"sheet {info.name!r} is not a worksheet with cells")
                sheet = self.sheets[edit.sheet] = self.plans.setdefault(info.part, _SheetPlan(info))
            cell = edit.cell
            parsed = refs.get(cell) if isinstance(cell, str) else None
            if parsed is None:
                pos = _parse_ref(cell) if isinstance(cell, str) else None
                if pos is None:
                    raise self.error(f"{sheet.info.name}!{cell!r}: not a cell reference like B2")
                ref = _ref(*pos)
                # The edit's own string when it is already the canonical reference (as the
                # weekly job writes them): one string less a cell, 100,000 at a time.
                parsed = refs[cell] = (pos[0], pos[1], cell if ref == cell else ref)
            row, col, ref = parsed
            value = edit.value
            if type(value) is not str or value not in self.checked_text:
                _check_value(value, f"{sheet.info.name}!{ref}", self.error)
                if type(value) is str:
                    self.checked_text.add(value)
            key = (row, col)
            earlier = sheet.cells.get(key)
            if earlier is not None:
                if type(earlier.value) is type(value) and earlier.value == value:
                    continue
                raise self.error(f"{sheet.info.name}!{ref}: two different edits for the same cell")
            sheet.cells[key] = _CellPlan(row, col, ref, value, index)


def _written_by_row(plan: _SheetPlan) -> dict[int, set[int]]:
    """Row -> columns that the plan writes a value into (what makes a table grow)."""
    rows: dict[int, set[int]] = {}
    for cell in plan.cells.values():
        if cell.value is not None:
            rows.setdefault(cell.row, set()).add(cell.col)
    return rows


def _serial(value: dt.date, date1904: bool, where: str) -> int | float:
    """Excel's serial day number for a date or naive datetime."""
    if isinstance(value, dt.datetime):
        epoch = dt.datetime(1904, 1, 1) if date1904 else dt.datetime(1899, 12, 30)
        delta = value - epoch
        serial: int | float = delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400
    else:
        epoch_d = dt.date(1904, 1, 1) if date1904 else dt.date(1899, 12, 30)
        serial = (value - epoch_d).days
    if date1904:
        if serial < 0:
            raise PatchError(f"{where}: dates before 1904 cannot be stored in this workbook")
    else:
        if serial < 2:
            raise PatchError(f"{where}: dates before 1900 cannot be stored in Excel")
        if serial < 61:
            serial -= 1  # Excel's phantom 29 February 1900 shifts earlier dates by one
    if isinstance(serial, float) and serial.is_integer():
        return int(serial)
    return serial


def _number_text(value: int | float) -> bytes:
    return (str(value) if isinstance(value, int) else repr(value)).encode("ascii")


# --- worksheet cells -----------------------------------------------------------------------


@dataclass
class _OldCell:
    """One existing ``<c>`` in a row being patched."""

    start: int
    end: int
    col: int
    has_r: bool
    attrs: dict[bytes, bytes]
    inner: bytes


def _row_cells(rx: _SheetRx, content: bytes) -> list[_OldCell]:
    cells = []
    col = 0
    for m in rx.cell.finditer(content):
        attrs = _attrs(m[1])
        r = attrs.get(b"r")
        rm = _REF.fullmatch(r.decode("ascii", "replace")) if r else None
        col = _col_num(rm[1]) if rm else col + 1
        cells.append(_OldCell(m.start(), m.end(), col, rm is not None, attrs, m[2] or b""))
    return cells


def _decode_value(
    attrs: dict[bytes, bytes], inner: bytes, rx: _SheetRx, sst: _SharedStrings | None
) -> CellValue:
    """The value a reader sees in a cell (dates stay serial numbers)."""
    t = attrs.get(b"t", b"n")
    if t == b"inlineStr":
        m = rx.inline.search(inner)
        if m is None:
            return None
        body = rx.rph.sub(b"", m[0]) if b"rPh" in m[0] else m[0]
        return "".join(_ooxml_text(t_m[1]) for t_m in rx.t.finditer(body) if t_m[1])
    vm = rx.v.search(inner)
    if vm is None:
        return None
    raw = vm[1]
    if t == b"s":
        if sst is None:
            raise PatchError("a cell refers to a shared string but the package has none")
        try:
            return sst.text_of(int(raw))
        except ValueError:
            raise PatchError("a shared-string cell holds no index") from None
    if t == b"b":
        return raw.strip() in (b"1", b"true")
    if t in (b"str", b"e", b"d"):
        return _ooxml_text(raw)
    text = raw.strip()
    if not text:
        return None
    try:
        if re.fullmatch(rb"-?\d+", text):
            return int(text)
        return float(text)
    except ValueError:
        return _xml_unescape(text)


def _same_cell_value(got: CellValue, want: CellValue, serial: float | None) -> bool:
    if want is None:
        return got is None
    if isinstance(want, bool):
        return got is want
    if isinstance(want, str):
        return isinstance(got, str) and got == want
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    if serial is not None:
        return abs(got - serial) < 1e-9
    assert isinstance(want, int | float)
    return got == want or float(got) == float(want)


class _IndexedRow(NamedTuple):
    """A row as :func:`_index_rows` found it: ``<row`` at ``at``, its start tag ending at
    ``tag_end``, its content ending at ``close`` (its ``</row>``; -1 for ``<row .../>``),
    its last cell's column (:func:`_last_col`) and its start tag's attributes."""

    at: int
    tag_end: int
    close: int
    last_col: int | None
    attrs: bytes


_RowIndex = dict[int, _IndexedRow]


def _index_rows(data: bytes) -> _RowIndex | None:
    """Where each row of the worksheet ``data`` is, by row number, as the patch's row walk
    would find it (the first row of each number); up to the first row not written as every
    writer does (``r`` first), after which the walk finds rows as it goes. None when the
    part is not a worksheet the patch could walk."""
    rx = _sheet_rx(_prefix_of(data))
    try:
        sd, start, end = _sheet_body(data, rx, "", PatchError)
    except PatchError:
        return None
    rows: _RowIndex = {}
    if sd[1]:
        return rows
    # Each row's last cell is read as _last_col reads it; without an extension list and
    # with every cell's r first (as every writer does) in the whole body, from the row's
    # last "<c r=" alone.
    plain = data.find(b"extLst", start, end) < 0 and (
        _cell_r_not_first_rx(rx.prefix).search(data, start, end) is None
    )
    cell_r, skip = rx.cell_r_open, len(rx.cell_r_open)
    find, rfind, row_close = data.find, data.rfind, rx.row_close
    get_col = _COL_NUM_B.get
    new = tuple.__new__  # an _IndexedRow without its Python-level constructor: 20,000 of them
    pos = start
    for m in _row_r_rx(rx.prefix).finditer(data, start, end):
        if m.start() < pos:
            continue  # inside the row before (a row is not; the walk reads it so)
        digits = m[2]
        if not digits.isdigit() or digits[:1] == b"0":
            break  # not as the walk's search finds a row number: it finds the rest itself
        tag_end = m.end()
        if m[3]:  # <row .../>
            entry = new(_IndexedRow, (m.start(), tag_end, -1, 0, m[1]))
        else:
            close = find(row_close, tag_end, end)
            if close < 0:
                break
            if not plain:
                last_col = _last_col(rx, data, tag_end, close)
            elif tag_end == close:
                last_col = 0
            else:
                lt = rfind(cell_r, tag_end, close)
                quote = find(b'"', lt + skip, close) if lt >= 0 else -1
                if quote < 0:
                    last_col = None
                else:
                    letters = data[lt + skip : quote].rstrip(b"0123456789")
                    last_col = get_col(letters) or _col_num(letters)
            entry = new(_IndexedRow, (m.start(), tag_end, close, last_col, m[1]))
        rows.setdefault(int(digits), entry)
        pos = tag_end if entry.close < 0 else entry.close
    return rows


@functools.lru_cache(maxsize=8)
def _row_r_rx(prefix: bytes) -> re.Pattern[bytes]:
    """A row start tag with ``r`` first: (its attributes as the row pattern's group 1,
    the number as written, "/" for an empty row)."""
    p = re.escape(prefix)
    return re.compile(rb"<" + p + rb'row( r="([^"]*)"[^>]*?)(/?)>')


@functools.lru_cache(maxsize=8)
def _cell_r_not_first_rx(prefix: bytes) -> re.Pattern[bytes]:
    """A cell start tag whose first attribute is not ``r`` (written as a patch writes it)."""
    return re.compile(rb"<" + re.escape(prefix) + rb'c(?=[\s/>])(?! r=")')


# --- patching --------------------------------------------------------------------------------


class _Patcher:
    """Applies planned edits to one package."""

    def __init__(
        self, pkg: _Package, wb: _Workbook, plans: dict[str, _SheetPlan], *, inline: bool = False
    ) -> None:
        self.pkg = pkg
        self.inline = inline
        self.wb = wb
        self.plans = plans
        self._sst: _SharedStrings | None = None  # read when first needed (see sst)
        self._sst_read = False
        self._styles: _Styles | None = None
        self.count_delta = 0
        self.old_sst_refs: Counter[int] = Counter()
        self.old_texts: list[tuple[int, str]] = []  # (edit index, old text)
        self.formula_refs: dict[str, list[str]] = {}  # sheet part -> overwritten formula cells
        texts = {
            c.value for p in plans.values() for c in p.cells.values() if isinstance(c.value, str)
        }
        self.string_lookups = len(texts)
        if not inline and len(texts) > 32 and self.sst is not None:
            # One pass finds them all (the flag's statuses); it costs about 40 single finds.
            self.sst.prefetch(texts)
        # (type, value, style, extra attributes) -> (cell XML after r="..", uses a shared string)
        self._value_cache: dict[
            tuple[type, CellValue, bytes | None, bytes], tuple[bytes, bool]
        ] = {}
        self._spans_cache: dict[tuple[bytes, int, int], bytes] = {}
        # Sheet part -> where the common case's cells went in it (see Placed).
        self.placed: dict[str, Placed] = {}

    @property
    def sst(self) -> _SharedStrings | None:
        """The shared-string table (None when the workbook has none), read when first
        needed: text written inline over cells that held no shared string never needs it,
        and a register's table is megabytes to inflate and index (next week's statuses)."""
        if not self._sst_read:
            self._sst_read = True
            part = self.wb.sst_part
            self._sst = _SharedStrings(part, self.pkg.read(part)) if part else None
        return self._sst

    @property
    def sst_if_read(self) -> _SharedStrings | None:
        """The shared-string table if some edit needed it, else None (it is then unchanged)."""
        return self._sst

    @property
    def styles(self) -> _Styles:
        if self._styles is None:
            if self.wb.styles_part is None:
                raise PatchError("the workbook has no styles part; a date cannot be formatted")
            self._styles = _Styles(self.wb.styles_part, self.pkg.read(self.wb.styles_part))
        return self._styles

    # ---- one sheet

    def patch_sheet(self, part: str, data: bytes, plan: _SheetPlan) -> bytearray:
        """The worksheet with ``plan`` applied, built by splicing rows into a new buffer."""
        rx = _sheet_rx(_prefix_of(data))
        sd, body_start, body_end = _sheet_body(data, rx, part, PatchError)
        empty = bool(sd[1])
        head_end = sd.start()
        self._refuse_array_ranges(data, rx, (body_start, body_end), plan)
        sheet = _SheetContext(part, plan.info.name, rx, self._col_styles(rx, data[:head_end]))
        by_row = plan.by_row()
        pending = list(by_row)
        written = [(c.row, c.col) for c in plan.cells.values() if c.value is not None]
        head = data[:head_end]
        if written:
            had_cells = data.find(rx.cell_open, body_start, body_end) >= 0
            head = self._grow_dimension(rx, head, written, had_cells)
        view = memoryview(data)
        if empty:
            rows = b"".join(self._new_row(sheet, rnum, by_row[rnum]) for rnum in pending)
            if not rows:
                return bytearray(data)
            out = bytearray(head)
            out += sd[0][:-2].rstrip() + b">"
            out += rows
            out += rx.sheet_data_close
            out += view[sd.end() :]
            return out
        out = bytearray(head)
        out += view[head_end:body_start]
        pos = body_start
        i = 0
        prev = 0
        todo = len(pending)
        # Rows written with r first (every writer does) are found with bytes.find; the
        # first row that is not found (new, or r not first) hands over to the regex walk.
        row_key = b"<" + rx.prefix + b'row r="'
        # Rows found beforehand (prepare_patch), while the edits were being worked out.
        index = self.pkg.row_index(part, data) or {}
        row_head, cell_open, row_close = b"<" + rx.prefix + b"row", rx.cell_r_open, rx.row_close
        value_xml, col_style, grow = self._value_xml, sheet.col_style, self._grow_spans
        spans_value = self._spans_value
        placed = self.placed[part] = Placed([], array("q"))
        placed_ref, placed_at = placed.refs.append, placed.spans.append
        while i < todo:
            rnum = pending[i]
            row = index.get(rnum)
            if row is not None and row.at >= pos and row.close >= 0:
                at, tag_end, close, last_col, attrs = row
                plans = by_row[rnum]
                plan = plans[0]
                col = plan.col
                if (
                    len(plans) == 1
                    and plan.value is not None
                    and last_col is not None
                    and last_col < col
                    and b"customFormat" not in attrs
                ):
                    # The common case, inline: one cell appended after the row's last one,
                    # in the column's style (as _append_cells makes it). The row's start
                    # tag is copied around its spans hint, which grows (as _grow_spans has it).
                    spans = attrs.find(b' spans="')
                    quote = attrs.find(b'"', spans + 8) if spans >= 0 else -1
                    if quote >= 0:
                        base = at + len(row_head)
                        out += view[pos : base + spans + 8]
                        out += spans_value(attrs[spans + 8 : quote], col, col)
                        out += view[base + quote : close]
                    else:
                        out += view[pos:at]
                        out += row_head + grow(attrs, col, col) + b">"
                        out += view[tag_end:close]
                    placed_ref(plan.ref)
                    placed_at(len(out))
                    out += cell_open + plan.ref.encode() + b'"'
                    out += value_xml(sheet, plan, col_style(col), b"")
                    placed_at(len(out))
                    out += row_close
                    pos = close + len(row_close)
                    prev = rnum
                    i += 1
                    continue
                out += view[pos : row.at]
                span = (row.tag_end, row.close)
                appended = self._append_cells(
                    sheet, row.attrs, data, span, by_row[rnum], last_col=row.last_col
                )
                if appended is not None:
                    out += appended[0]
                    out += view[row.tag_end : row.close]
                    out += appended[1]
                    if len(by_row[rnum]) == 1:  # one cell, then the row's end tag
                        placed_ref(by_row[rnum][0].ref)
                        placed_at(len(out) - len(appended[1]))
                        placed_at(len(out) - len(row_close))
                    pos = row.close + len(rx.row_close)
                    prev = rnum
                    i += 1
                    continue
                pos = row.at  # the general path below takes the row
            at = data.find(row_key + str(rnum).encode() + b'"', pos, body_end)
            m = rx.row_start.match(data, at) if at >= 0 else None
            if m is None:
                break
            out += view[pos:at]
            if not m[2]:  # the common case: cells appended after the row's last one
                close = data.find(rx.row_close, m.end(), body_end)
                if close < 0:
                    raise PatchError(f"{part}: row {rnum} is not closed")
                appended = self._append_cells(sheet, m[1], data, (m.end(), close), by_row[rnum])
                if appended is not None:
                    out += appended[0]
                    out += view[m.end() : close]
                    out += appended[1]
                    if len(by_row[rnum]) == 1:  # one cell, then the row's end tag
                        placed_ref(by_row[rnum][0].ref)
                        placed_at(len(out) - len(appended[1]))
                        placed_at(len(out) - len(row_close))
                    pos = close + len(rx.row_close)
                    prev = rnum
                    i += 1
                    continue
            content, end = _row_body(data, m, rx, body_end, f"{part}: row {rnum}")
            patched = self._patch_row(sheet, m[1], content, by_row[rnum])
            out += view[at:end] if patched is None else patched
            pos = end
            prev = rnum
            i += 1
        for m in rx.row_start.finditer(data, pos, body_end):
            if i >= todo:
                break
            rnum = _row_number(m[1], prev)
            if rnum <= prev:
                raise PatchError(f"{part}: rows are out of order near row {rnum}")
            prev = rnum
            target = pending[i]
            if target > rnum:
                continue
            start = m.start()
            out += view[pos:start]
            pos = start
            while target < rnum:
                out += self._new_row(sheet, target, by_row[target])
                i += 1
                if i == todo:
                    break
                target = pending[i]
            if target == rnum:
                content, end = _row_body(data, m, rx, body_end, f"{part}: row {rnum}")
                patched = self._patch_row(sheet, m[1], content, by_row[rnum])
                out += view[m.start() : end] if patched is None else patched
                pos = end
                i += 1
        out += view[pos:body_end]
        for rnum in pending[i:]:
            out += self._new_row(sheet, rnum, by_row[rnum])
        out += view[body_end:]
        return out

    @staticmethod
    def _refuse_array_ranges(
        data: bytes, rx: _SheetRx, span: tuple[int, int], plan: _SheetPlan
    ) -> None:
        """Refuse edits inside an array formula or data table (Excel forbids changing part)."""
        start, end = span
        if data.find(b"array", start, end) < 0 and data.find(b"dataTable", start, end) < 0:
            return
        for m in rx.array_f.finditer(data, start, end):
            rng = _parse_range(_attrs(m[0]).get(b"ref", b"").decode("ascii", "replace"))
            if rng is None:
                continue
            r1, c1, r2, c2 = rng
            for (row, col), cell in plan.cells.items():
                if r1 <= row <= r2 and c1 <= col <= c2:
                    raise PatchError(
                        f"{plan.info.name}!{cell.ref}: the cell is part of an array formula or "
                        "data table"
                    )

    @staticmethod
    def _col_styles(rx: _SheetRx, head: bytes) -> list[tuple[int, int, bytes]]:
        cols = rx.cols.search(head)
        out = []
        if cols:
            for m in rx.col.finditer(cols[0]):
                a = _attrs(m[1])
                lo, hi, style = a.get(b"min", b""), a.get(b"max", b""), a.get(b"style")
                if style and style != b"0" and lo.isdigit() and hi.isdigit():
                    out.append((int(lo), int(hi), style))
        return out

    @staticmethod
    def _row_style(raw_attrs: bytes) -> bytes | bool | None:
        """The row's own style when it has customFormat; False when the column's applies."""
        if b"customFormat" not in raw_attrs:
            return False
        a = _attrs(raw_attrs)
        if a.get(b"customFormat", b"0") not in (b"1", b"true"):
            return False
        s = a.get(b"s")
        return s if s and s != b"0" else None

    def _grow_dimension(
        self, rx: _SheetRx, head: bytes, cells: list[tuple[int, int]], had_cells: bool
    ) -> bytes:
        m = rx.dimension.search(head)
        if m is None:
            return head
        rows = [r for r, _ in cells]
        cols = [c for _, c in cells]
        r1, c1, r2, c2 = min(rows), min(cols), max(rows), max(cols)
        old = _parse_range(m[1].decode("ascii", "replace")) if had_cells else None
        if old is not None:
            r1, c1, r2, c2 = min(r1, old[0]), min(c1, old[1]), max(r2, old[2]), max(c2, old[3])
            if (r1, c1, r2, c2) == old:
                return head
        new_ref = _range_text(r1, c1, r2, c2).encode("ascii")
        tag = m[0][: m.start(1) - m.start()] + new_ref + m[0][m.end(1) - m.start() :]
        return head[: m.start()] + tag + head[m.end() :]

    def _new_row(self, sheet: _SheetContext, rnum: int, plans: list[_CellPlan]) -> bytes:
        p = sheet.rx.prefix
        cells = [
            b"<"
            + p
            + b'c r="'
            + plan.ref.encode()
            + b'"'
            + self._value_xml(sheet, plan, sheet.col_style(plan.col), b"")
            for plan in plans
            if plan.value is not None
        ]
        if not cells:
            return b""
        return (
            b"<"
            + p
            + b'row r="'
            + str(rnum).encode()
            + b'">'
            + b"".join(cells)
            + sheet.rx.row_close
        )

    def _patch_row(
        self, sheet: _SheetContext, raw_attrs: bytes, content: bytes, plans: list[_CellPlan]
    ) -> bytes | None:
        """The row with ``plans`` applied; None when it stays exactly as it was."""
        appended = self._append_cells(sheet, raw_attrs, content, (0, len(content)), plans)
        if appended is not None:
            return appended[0] + content + appended[1]
        rx = sheet.rx
        row_style = self._row_style(raw_attrs)
        cells = _row_cells(rx, content)
        splices: list[tuple[int, int, bytes]] = []
        by_col = {c.col: k for k, c in enumerate(cells)}
        new_cols: list[int] = []
        for plan in plans:
            k = by_col.get(plan.col)
            if k is not None:
                old = cells[k]
                next_implicit = k + 1 < len(cells) and not cells[k + 1].has_r
                splices.append(
                    (old.start, old.end, self._overwrite(sheet, plan, old, next_implicit))
                )
            elif plan.value is not None:
                style = sheet.col_style(plan.col) if row_style is False else row_style
                cell = b"<" + rx.prefix + b'c r="' + plan.ref.encode() + b'"'
                cell += self._value_xml(sheet, plan, style, b"")
                after = next((c for c in cells if c.col > plan.col), None)
                at = after.start if after else (cells[-1].end if cells else 0)
                splices.append((at, at, cell))
                new_cols.append(plan.col)
        if not splices:
            return None
        splices.sort(key=lambda s: (s[0], s[1]))
        pieces = []
        pos = 0
        for start, end, rendered in splices:
            pieces += [content[pos:start], rendered]
            pos = end
        pieces.append(content[pos:])
        attrs_out = (
            self._grow_spans(raw_attrs, min(new_cols), max(new_cols)) if new_cols else raw_attrs
        )
        return b"<" + rx.prefix + b"row" + attrs_out + b">" + b"".join(pieces) + rx.row_close

    def _append_cells(
        self,
        sheet: _SheetContext,
        raw_attrs: bytes,
        data: bytes,
        span: tuple[int, int],
        plans: list[_CellPlan],
        *,
        last_col: int | bool | None = False,
    ) -> tuple[bytes, bytes] | None:
        """The common case, fast: only new cells, all right of the row's last cell.

        The row's content is ``data[span[0]:span[1]]``; what goes before it (the start tag) and
        after it (the new cells and the end tag) is returned. Only the last cell is looked at;
        it must carry ``r`` (first, as every writer puts it). None when the general path is
        needed. ``last_col`` is :func:`_last_col` of the row when already found.
        """
        rx = sheet.rx
        first = plans[0].col
        if last_col is False:
            last_col = _last_col(rx, data, *span)
        if last_col is None or last_col >= first:
            return None
        cells = []
        row_style = self._row_style(raw_attrs)
        p = rx.prefix
        for plan in plans:
            if plan.value is None:
                continue  # emptying a cell that does not exist
            style = sheet.col_style(plan.col) if row_style is False else row_style
            cells.append(b"<" + p + b'c r="' + plan.ref.encode() + b'"')
            cells.append(self._value_xml(sheet, plan, style, b""))
        if not cells:
            return None  # nothing to add: the general path leaves the row as it is
        attrs = self._grow_spans(raw_attrs, first, plans[-1].col)
        return b"<" + p + b"row" + attrs + b">", b"".join(cells) + rx.row_close

    def _grow_spans(self, raw_attrs: bytes, lo: int, hi: int) -> bytes:
        """Widen the row's optional ``spans`` hint to cover columns ``lo``..``hi``."""
        at = raw_attrs.find(b' spans="')
        if at >= 0:  # the usual layout, read without a regex
            q = at + 8
            close = raw_attrs.find(b'"', q)
            if close >= 0:
                new = self._spans_value(raw_attrs[q:close], lo, hi)
                return raw_attrs[:q] + new + raw_attrs[close:]
        if b"spans" not in raw_attrs:
            return raw_attrs
        m = _SPANS_ATTR.search(raw_attrs)
        if m is None:
            return raw_attrs
        return raw_attrs[: m.start(2)] + self._spans_value(m[2], lo, hi) + raw_attrs[m.end(2) :]

    def _spans_value(self, spans: bytes, lo: int, hi: int) -> bytes:
        """A ``spans`` value (``1:12``) widened to cover columns ``lo``..``hi``."""
        key = (spans, lo, hi)
        new = self._spans_cache.get(key)
        if new is None:
            nums = [int(x) for x in re.findall(rb"\d+", spans)]
            new_lo, new_hi = min([*nums, lo]), max([*nums, hi])
            new = (
                spans
                if nums[:1] == [new_lo] and nums[-1:] == [new_hi] and len(nums) == 2
                else f"{new_lo}:{new_hi}".encode()
            )
            self._spans_cache[key] = new
        return new

    def _overwrite(
        self, sheet: _SheetContext, plan: _CellPlan, old: _OldCell, keep_placeholder: bool
    ) -> bytes:
        """The new ``<c>`` replacing ``old`` (b"" to drop it): keeps ``s`` and ``ph``."""
        self._forget_old(sheet, plan, old)
        style = old.attrs.get(b"s")
        extra = b' ph="' + old.attrs[b"ph"] + b'"' if old.attrs.get(b"ph") else b""
        open_c = b"<" + sheet.rx.prefix + b'c r="' + plan.ref.encode() + b'"'
        if plan.value is None:
            if style and style != b"0":
                return open_c + b' s="' + style + b'"' + extra + b"/>"
            # A cell without r after this one would shift left: keep an empty placeholder.
            return open_c + b"/>" if keep_placeholder else b""
        return open_c + self._value_xml(sheet, plan, style, extra)

    def _value_xml(
        self, sheet: _SheetContext, plan: _CellPlan, style: bytes | None, extra: bytes
    ) -> bytes:
        """What follows ``<c r="..."`` for a value: attributes, children and ``</c>``."""
        value = plan.value
        key = (type(value), value, style, extra)
        hit = self._value_cache.get(key)
        if hit is not None:
            if hit[1]:
                self.count_delta += 1
            return hit[0]
        p = sheet.rx.prefix
        uses_sst = False
        if isinstance(value, dt.date):
            base = int(style) if style and style.isdigit() else 0
            style = str(self.styles.date_style(base)).encode()
            number = _serial(value, self.wb.date1904, f"{sheet.name}!{plan.ref}")
            attrs, body = b"", b"<" + p + b"v>" + _number_text(number) + b"</" + p + b"v>"
        elif isinstance(value, bool):
            attrs, body = (
                b' t="b"',
                b"<" + p + b"v>" + (b"1" if value else b"0") + b"</" + p + b"v>",
            )
        elif isinstance(value, int | float):
            attrs, body = b"", b"<" + p + b"v>" + _number_text(value) + b"</" + p + b"v>"
        elif not self.inline and self.sst is not None:
            assert isinstance(value, str)
            index = self.sst.index_of(value, self.string_lookups)
            uses_sst = True
            attrs, body = b' t="s"', b"<" + p + b"v>" + str(index).encode() + b"</" + p + b"v>"
        else:
            assert isinstance(value, str)
            t_open = b"<" + p + (b't xml:space="preserve">' if _needs_preserve(value) else b"t>")
            attrs = b' t="inlineStr"'
            body = (
                b"<" + p + b"is>" + t_open + _escape_text(value) + b"</" + p + b"t></" + p + b"is>"
            )
        s_attr = b' s="' + style + b'"' if style else b""
        xml = s_attr + extra + attrs + b">" + body + b"</" + p + b"c>"
        if uses_sst:
            self.count_delta += 1
        if len(self._value_cache) < 4096:
            self._value_cache[key] = (xml, uses_sst)
        return xml

    def _forget_old(self, sheet: _SheetContext, plan: _CellPlan, old: _OldCell) -> None:
        """Record what an overwritten cell held: formula (calcChain), old text (residues, GC)."""
        rx = sheet.rx
        fm = rx.f.search(old.inner)
        if fm is not None:
            fa = _attrs(fm[1])
            kind = fa.get(b"t", b"normal")
            if kind in (b"array", b"dataTable") or (kind == b"shared" and b"ref" in fa):
                raise PatchError(
                    f"{sheet.name}!{plan.ref}: the cell holds a shared or array formula "
                    "others depend on"
                )
            self.formula_refs.setdefault(sheet.part, []).append(plan.ref)
        t = old.attrs.get(b"t")
        if t == b"s":
            vm = rx.v.search(old.inner)
            if vm is not None and vm[1].strip().isdigit():
                index = int(vm[1])
                self.count_delta -= 1
                self.old_sst_refs[index] += 1
                if self.sst is not None and index < self.sst.count:
                    self.old_texts.append((plan.edit_index, self.sst.text_of(index)))
        elif _is_text_value_attr(t):
            text = _decode_value(old.attrs, old.inner, rx, None)
            if isinstance(text, str):
                self.old_texts.append((plan.edit_index, text))


class _SheetContext:
    """What the row patcher needs to know about the sheet it is in."""

    def __init__(
        self, part: str, name: str, rx: _SheetRx, col_styles: list[tuple[int, int, bytes]]
    ) -> None:
        self.part = part
        self.name = name
        self.rx = rx
        self._col_styles = col_styles
        self._by_col: dict[int, bytes | None] = {}

    def col_style(self, col: int) -> bytes | None:
        """The style of a ``<col>`` covering ``col``, which a new cell there inherits."""
        if col in self._by_col:
            return self._by_col[col]
        style = next((s for lo, hi, s in self._col_styles if lo <= col <= hi), None)
        self._by_col[col] = style
        return style


# --- calcChain, tables, rels ---------------------------------------------------------------


def _patch_calc_chain(data: bytes, removed: set[tuple[int, str]]) -> bytes | None:
    """calcChain without the cells whose formulas were overwritten; None when it ends empty.

    The ``i`` (sheet id) and ``l`` (new dependency level) attributes carry over to the
    following entries, so an entry that inherited them gets them written explicitly.
    """
    p = re.escape(_prefix_of(data))
    entry = re.compile(rb"<" + p + rb"c(?=[\s/>])([^>]*?)(?:/>|>.*?</" + p + rb"c>)", re.S)
    pieces = []
    pos = 0
    current_i = 0
    kept = 0
    carry_l = False
    need_i = False
    for m in entry.finditer(data):
        a = _attrs(m[1])
        if b"i" in a and a[b"i"].isdigit():
            current_i = int(a[b"i"])
        ref = a.get(b"r", b"").decode("ascii", "replace").upper()
        if (current_i, ref) in removed:
            pieces.append(data[pos : m.start()])
            pos = m.end()
            carry_l = carry_l or a.get(b"l") in (b"1", b"true")
            need_i = True
            continue
        kept += 1
        if need_i or carry_l:
            tag_end = m.end(1)  # new attributes go after the existing ones
            add = b""
            if need_i and b"i" not in a:
                add += b' i="' + str(current_i).encode() + b'"'
            if carry_l and b"l" not in a:
                add += b' l="1"'
            pieces += [data[pos:tag_end], add]
            pos = tag_end
        need_i = carry_l = False
    pieces.append(data[pos:])
    return b"".join(pieces) if kept else None


def _remove_relationship(data: bytes, kind: str) -> bytes:
    def drop(m: re.Match[bytes]) -> bytes:
        t = _attrs(m[0]).get(b"Type", b"").decode()
        return b"" if _rel_kind(t) == kind else m[0]

    return re.sub(
        rb"<(?:[\w.\-]+:)?Relationship(?=[\s/>])[^>]*?(?:/>|>.*?</(?:[\w.\-]+:)?Relationship>)",
        drop,
        data,
        flags=re.S,
    )


def _remove_override(data: bytes, part: str) -> bytes:
    def drop(m: re.Match[bytes]) -> bytes:
        name = _attrs(m[0]).get(b"PartName", b"").decode()
        return b"" if name.lstrip("/").casefold() == part.casefold() else m[0]

    return re.sub(rb"<(?:[\w.\-]+:)?Override(?=[\s/>])[^>]*?/>", drop, data)


def _table_parts(pkg: _Package, sheet_part: str) -> list[str]:
    return [
        r.target
        for r in _read_rels(pkg, sheet_part)
        if _rel_kind(r.type) == "table" and pkg.has(r.target)
    ]


_TABLE_ROOT = re.compile(rb"<((?:[\w.\-]+:)?)table(?=[\s/>])([^>]*)>")


def _grow_table(data: bytes, grown_rows: dict[int, set[int]]) -> bytes | None:
    """A table grown by the rows edited directly below it; None when it does not grow."""
    root = _TABLE_ROOT.search(data)
    if root is None:
        return None
    a = _attrs(root[2])
    rng = _parse_range(a.get(b"ref", b"").decode("ascii", "replace"))
    if rng is None or a.get(b"totalsRowCount", b"0") not in (b"0", b""):
        return None  # Excel does not extend a table across its totals row
    r1, c1, r2, c2 = rng
    new_r2 = r2
    while any(c1 <= col <= c2 for col in grown_rows.get(new_r2 + 1, ())):
        new_r2 += 1
    if new_r2 == r2:
        return None
    old_ref = _range_text(r1, c1, r2, c2).encode()
    new_ref = _range_text(r1, c1, new_r2, c2).encode()
    ref_attr = re.compile(rb"""(\sref\s*=\s*["'])([^"']*)(["'])""")
    tag = ref_attr.sub(lambda m: m[1] + new_ref + m[3], root[0], count=1)
    out = data[: root.start()] + tag + data[root.end() :]
    p = re.escape(root[1])
    af = re.compile(rb"<" + p + rb"autoFilter(?=[\s/>])[^>]*>").search(out, root.start() + len(tag))
    if af is not None:
        am = ref_attr.search(af[0])
        if am is not None:
            frng = _parse_range(am[2].decode("ascii", "replace"))
            if frng is not None and frng[2] == r2:
                new_f = _range_text(frng[0], frng[1], new_r2, frng[3]).encode()
                ftag = af[0][: am.start(2)] + new_f + af[0][am.end(2) :]
                out = out[: af.start()] + ftag + out[af.end() :]
    assert old_ref != new_ref
    return out


# --- shared-string references ----------------------------------------------------------------


def _last_col(rx: _SheetRx, content: bytes, start: int = 0, end: int | None = None) -> int | None:
    """The column number of a row's last cell (0 for an empty row), read from that cell only.

    The row's content is ``content[start:end]``. None when that is not certain: the last
    cell lacks a leading ``r`` attribute, a later cell has none, or the row carries an
    extension list.
    """
    end = len(content) if end is None else end
    if start >= end:
        return 0
    if content.find(b"extLst", start, end) >= 0:
        return None
    last = content.rfind(rx.cell_r_open, start, end)
    if last < 0:
        return None
    ref_at = last + len(rx.cell_r_open)
    if rx.cell_start.search(content, ref_at, end):
        return None  # a later cell without a leading r attribute
    quote = content.find(b'"', ref_at, end)
    if quote < 0:
        return None
    return _col_num(content[ref_at:quote].rstrip(b"0123456789"))


def _cell_tag_before(data: bytes, rx: _SheetRx, pos: int) -> tuple[int, bytes]:
    """The start tag of the ``<c>`` that encloses ``pos`` (a position inside its content)."""
    n = len(rx.cell_open)
    lt = data.rfind(rx.cell_open, 0, pos)
    while lt >= 0 and data[lt + n : lt + n + 1] not in (b" ", b">", b"/", b"\t", b"\n", b"\r"):
        lt = data.rfind(rx.cell_open, 0, lt)
    if lt < 0:
        return -1, b""
    return lt, data[lt : data.find(b">", lt) + 1]


def _sst_ref_pattern(rx: _SheetRx, indices: Iterable[int]) -> re.Pattern[bytes]:
    p = re.escape(rx.prefix)
    return re.compile(rb"<" + p + rb"v>(" + _digit_alternation(indices) + rb")</" + p + rb"v>")


def _sst_refs(
    data: bytes | bytearray,
    rx: _SheetRx,
    pattern: re.Pattern[bytes],
    start: int = 0,
    end: int | None = None,
) -> Iterator[re.Match[bytes]]:
    """Matches of ``pattern`` (a ``<v>`` of chosen indices) that sit in ``t="s"`` cells."""
    for m in pattern.finditer(data, start, len(data) if end is None else end):
        _, tag = _cell_tag_before(data, rx, m.start())
        if _T_S.search(tag):
            yield m


# --- residues --------------------------------------------------------------------------------


def _part_kind(name: str) -> str:
    low = name.casefold()
    base = posixpath.basename(low)
    if "sharedstrings" in base:
        return "shared-strings"
    if low.startswith("xl/threadedcomments/") or "threadedcomment" in base:
        return "threaded-comment"
    if re.match(r"comments?\d*\.xml$", base):
        return "comment"
    if low.startswith(
        ("xl/worksheets/", "xl/macrosheets/", "xl/dialogsheets/")
    ) and not low.endswith(".rels"):
        return "sheet"
    if base == "workbook.xml":
        return "defined-name"
    if low.startswith("docprops/"):
        return "doc-property"
    if low.startswith(("xl/charts/", "xl/chartsheets/")) and not low.endswith(".rels"):
        return "chart-cache"
    if low.startswith(("xl/pivotcache/", "xl/pivottables/")) and not low.endswith(".rels"):
        return "pivot-cache"
    if low.startswith("customxml/"):
        return "custom-xml"
    return "other"


def _is_xml_part(name: str, content_types: dict[str, str]) -> bool:
    ct = content_types.get(name.casefold(), "")
    ext = posixpath.splitext(name)[1].casefold()
    return ct.endswith(("+xml", "/xml")) or ext in (".xml", ".rels", ".vml")


def _content_types(pkg: _Package) -> dict[str, str]:
    """Content type of every member, from [Content_Types].xml (defaults and overrides)."""
    if not pkg.has("[Content_Types].xml"):
        return {}
    from lxml import etree

    try:
        root = etree.fromstring(pkg.read("[Content_Types].xml"), _parser())
    except etree.XMLSyntaxError:
        return {}
    defaults = {}
    overrides = {}
    for el in root:
        if not isinstance(el.tag, str):
            continue
        local = etree.QName(el).localname
        if local == "Default":
            defaults[el.get("Extension", "").casefold()] = el.get("ContentType", "")
        elif local == "Override":
            overrides[el.get("PartName", "").lstrip("/").casefold()] = el.get("ContentType", "")
    out = {}
    for name in pkg.names:
        key = name.casefold()
        ext = posixpath.splitext(key)[1].lstrip(".")
        out[key] = overrides.get(key) or defaults.get(ext, "")
    return out


def _decode_part(raw: bytes) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", "replace")
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    head = raw[:200]
    m = re.search(rb"""encoding\s*=\s*["']([\w.\-]+)["']""", head)
    enc = m[1].decode("ascii").lower() if m else "utf-8"
    try:
        return raw.decode(enc, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def _needle_variants(needle: str) -> list[str]:
    folded = needle.casefold()
    escaped = folded.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    variants = {folded, escaped, escaped.replace('"', "&quot;").replace("'", "&apos;")}
    variants.add(escaped.replace("\r", "_x000d_"))
    return sorted(v for v in variants if v)


def _in_content(text: str, pos: int, has_cdata: bool) -> bool:
    """True when ``pos`` lies in character data or an attribute value, not in markup."""
    lt = text.rfind("<", 0, pos)
    gt = text.rfind(">", 0, pos)
    if gt > lt or lt < 0:
        return True
    if has_cdata and text.rfind("<![cdata[", 0, pos) > text.rfind("]]>", 0, pos):
        return True  # inside a CDATA section, '<' and '>' are text
    quote = ""
    for ch in text[lt:pos]:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
    return bool(quote)


def _automaton(variant_sets: list[list[str]]) -> _Automata:
    """The automata of every variant (see :class:`_Automata`): one pass over a part finds all
    needles at once, however many there are."""
    import ahocorasick

    owners: dict[str, list[int]] = {}
    for index, variants in enumerate(variant_sets):
        for variant in variants:
            owners.setdefault(variant, []).append(index)
    automaton = ahocorasick.Automaton()
    for variant, indexes in owners.items():
        automaton.add_word(variant, (variant, tuple(indexes)))
    automaton.make_automaton()
    return _Automata(automaton, *_quick_automaton(list(owners)))


class _Automata(NamedTuple):
    """The needles' variants, to search for in two steps.

    ``careful`` (pyahocorasick, over case-folded text) yields every hit, one at a time, for
    the check that it lies in content, not markup. ``quick`` (the Rust aho-corasick of
    ahocorasick_rs, over the folded UTF-8 bytes, four times as fast) and ``short`` (the
    variants of under four bytes, looked for one by one, so that a short one hiding in markup
    everywhere makes no long list of matches) only tell whether any variant occurs at all:
    a piece where none does needs no careful search. ``quick`` is None when it cannot tell.
    """

    careful: Any
    quick: Any
    short: tuple[bytes, ...]


def _quick_automaton(variants: list[str]) -> tuple[Any, tuple[bytes, ...]]:
    try:
        encoded = [v.encode("utf-8") for v in variants]
    except UnicodeEncodeError:  # a lone surrogate: never in decoded text, left to the careful
        return None, ()
    if not encoded or any("\ufffd" in v for v in variants):
        return None, ()  # U+FFFD stands in the careful search's text for bytes not UTF-8
    import ahocorasick_rs

    long = [v for v in encoded if len(v) >= 4]
    short = tuple(v for v in encoded if len(v) < 4)
    if not long:
        return ahocorasick_rs.BytesAhoCorasick([b"\0" * 4]), short  # matches nothing in XML
    impl = ahocorasick_rs.Implementation.DFA
    return ahocorasick_rs.BytesAhoCorasick(long, implementation=impl), short


_ASCII = bytes(range(128))


def _quick_fold(piece: bytes) -> bytes | None:
    """``piece`` as the careful search reads it, case-folded, in UTF-8; None when that search
    would read it otherwise (it resolves character references).

    ASCII letters are lowered by ``bytes.lower``; each other character present is replaced by
    its case fold (folding maps each character on its own, and the folds are folded: so the
    replacements need no order). Bytes not UTF-8 stay as they are: no variant matches them,
    as none matches the U+FFFD that the careful search reads in their place.
    """
    if b"&" in piece and b"&#" in piece:  # a search for one byte is many times as fast
        return None
    low = piece.lower()
    if low.isascii():
        return low
    for ch in set(low.translate(None, _ASCII).decode("utf-8", "replace")):
        folded = ch.casefold()
        if folded != ch:
            low = low.replace(ch.encode("utf-8"), folded.encode("utf-8"))
    return low


def _may_hold(piece: bytes, automata: _Automata) -> bool:
    """False when no variant occurs in ``piece`` (a piece of a UTF-8 part); True otherwise, or
    when the quick search cannot tell."""
    if automata.quick is None:
        return True
    low = _quick_fold(piece)
    if low is None:
        return True
    # Not overlapping: if any variant occurs, a match is reported (the first to end).
    return any(v in low for v in automata.short) or bool(
        automata.quick.find_matches_as_indexes(low)
    )


# A part is searched this many bytes at a time: the sheets of a big register are tens of
# megabytes, and as text (decoded, case-folded, then copied by the automaton in 4 bytes a
# character) each would cost several times that at once.
_SEARCH_PIECE = 1 << 20


def _text_hits(
    open_part: Callable[[], IO[bytes]], automata: _Automata, needles: int, longest: int
) -> list[int]:
    """Indexes of the needles (in ``automata``, see :func:`_automaton`) found in one part.

    A UTF-8 part is read and searched in pieces (see :func:`_xml_pieces`), each carefully
    only where the quick search finds some variant in it; one in another encoding, or with a
    CDATA section (where '<' is text, so a piece's edge could fall in it), is searched whole.
    """
    found: set[int] = set()
    # ``longest`` is the longest variant in characters; one written as character references
    # (&#x10FFFF;) takes up to 10 bytes each.
    overlap = 10 * longest + 16
    with open_part() as stream:
        for n, piece in enumerate(_xml_pieces(stream, _SEARCH_PIECE, overlap)):
            if n == 0 and not _plainly_utf8(piece):
                break
            if b"[" in piece and b"<![" in piece:  # one byte first: memchr's speed
                break  # a CDATA section (or a DTD's): searched whole below
            if not _may_hold(piece, automata):
                continue
            text = str(piece, "utf-8", "replace")
            _search_text(text.removeprefix("\ufeff"), automata.careful, found, needles, whole=False)
            if len(found) == needles:
                break
        else:
            return sorted(found)
        if len(found) == needles:
            return sorted(found)
    with open_part() as stream:
        _search_text(_decode_part(stream.read()), automata.careful, found, needles, whole=True)
    return sorted(found)


def _plainly_utf8(head: bytes) -> bool:
    """True when a part starting with ``head`` is UTF-8 (no other BOM nor declared encoding)."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    m = re.search(rb"""encoding\s*=\s*["']([\w.\-]+)["']""", head[:200])
    return m is None or m[1].lower() in (b"utf-8", b"utf8")


def _xml_pieces(stream: IO[bytes], size: int, overlap: int) -> Iterator[bytes]:
    """The stream's bytes in pieces of about ``size`` bytes that overlap.

    Each piece starts at the start or at a '<', and ends at the end or at a '<' at least
    ``overlap`` bytes past the next piece's start: so any text of up to ``overlap`` bytes lies
    whole in the piece where it starts, with the markup before it back to that piece's first
    '<' (enough to tell markup from content), and no character or character reference is cut
    ('<' is never part of either, nor of a UTF-8 sequence).
    """
    buf = bytearray()
    eof = False

    def fill(upto: int) -> None:
        nonlocal eof
        while not eof and len(buf) < upto:
            block = stream.read(max(size, upto - len(buf)))
            if block:
                buf.extend(block)
            else:
                eof = True

    while True:
        fill(size + overlap + 1)
        cut = buf.find(b"<", size)
        while cut < 0 and not eof:
            searched = len(buf)
            fill(searched + size)
            cut = buf.find(b"<", searched)
        end = buf.find(b"<", cut + overlap) if cut >= 0 else -1
        while cut >= 0 and end < 0 and not eof:
            searched = max(len(buf), cut + overlap)
            fill(searched + size)
            end = buf.find(b"<", searched)
        if cut < 0 or end < 0:
            yield bytes(buf)  # the rest is in this piece
            return
        yield bytes(buf[:end])
        del buf[:cut]


def _search_text(text: str, automaton: Any, found: set[int], needles: int, *, whole: bool) -> None:
    """Add to ``found`` the needles that occur in character data or attribute values of
    ``text``: a ``whole`` part, or a piece of one without CDATA that starts at a '<'."""
    text = fold(text)
    if "&#" in text:
        text = re.sub(r"&#(x[0-9a-f]+|[0-9]+);", lambda m: _numeric_ref(m[1]), text)
    has_cdata = whole and "<![cdata[" in text
    tries: dict[str, int] = {}
    for end, (variant, indexes) in automaton.iter(text):
        if found.issuperset(indexes):
            continue
        count = tries.get(variant, 0)
        if count < 0:
            continue  # settled by the full check below
        if count >= 64:
            # A short value hiding in markup everywhere: one check of the whole text instead.
            tries[variant] = -1
            if _found_in_content(text, variant, has_cdata):
                found.update(indexes)
            continue
        tries[variant] = count + 1
        if _in_content(text, end - len(variant) + 1, has_cdata):
            found.update(indexes)
            if len(found) == needles:
                return


def _found_in_content(text: str, variant: str, has_cdata: bool) -> bool:
    """Whether ``variant`` occurs in character data or an attribute value of ``text``."""
    pos = text.find(variant)
    tries = 0
    while pos >= 0:
        if _in_content(text, pos, has_cdata):
            return True
        tries += 1
        if tries > 64:
            # A short value hiding in markup everywhere ("ei" in every customHeight): one
            # regex pass over text nodes and attribute values instead of a check per hit.
            if has_cdata:
                return True  # be conservative rather than parse CDATA sections
            pattern = re.compile(r"""(?:>[^<]*?|=\s*"[^"]*?|=\s*'[^']*?)""" + re.escape(variant))
            return pattern.search(text, max(pos - 1, 0)) is not None or _in_content(
                text, pos, has_cdata
            )
        pos = text.find(variant, pos + 1)
    return False


def _numeric_ref(code: str) -> str:
    try:
        ch = chr(int(code[1:], 16)) if code[0] == "x" else chr(int(code))
    except (ValueError, OverflowError):
        return f"&#{code};"
    # Markup characters stay escaped so that the markup test still sees real markup.
    return {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;"}.get(
        ch, ch
    ).casefold()


def _find_text_in(
    names: Sequence[str],
    open_part: Callable[[str], IO[bytes]],
    content_types: dict[str, str],
    needles: Sequence[str],
) -> list[Residue]:
    variant_sets = [_needle_variants(n) if n else [] for n in needles]
    if not any(variant_sets):
        return []
    automata = _automaton(variant_sets)
    longest = max(len(v) for variants in variant_sets for v in variants)
    out = []
    for name in names:
        if not _is_xml_part(name, content_types):
            continue
        kind = _part_kind(name)
        hits = _text_hits(functools.partial(open_part, name), automata, len(needles), longest)
        out.extend(Residue(name, kind, i) for i in hits)
    return out


# --- public API ----------------------------------------------------------------------------


def sheet_parts(data: bytes) -> dict[str, str]:
    """Map each worksheet's name to its part name, resolved via xl/workbook.xml and its rels.

    Chart sheets (no cells) are left out.
    """
    pkg = _Package(data)
    return {
        s.name: s.part for s in _load_workbook(pkg).sheets if s.part and s.kind in _CELL_SHEET_TYPES
    }


def open_package(data: bytes) -> _Package:
    """The package's members, to ``read`` whole or ``open`` as streams: inflated by ISA-L
    (twice as fast as zipfile's zlib), their CRC-32 checked; a damaged one raises PatchError
    naming it."""
    return _Package(data)


def find_text(
    data: bytes, needles: Sequence[str], parts: Collection[str] | None = None
) -> list[Residue]:
    """Every XML part of the package in which a needle occurs (case-insensitive).

    Needles are matched raw, XML-escaped and through numeric character references, in
    character data and attribute values (not in element or attribute names, so a short needle
    does not match markup). ``Residue.needle`` is the needle's index in ``needles``. Text split
    across rich-text runs is not found. ``parts`` limits the search to those members.
    """
    pkg = _Package(data)
    names = pkg.names if parts is None else [n for n in pkg.names if n in parts]
    return _find_text_in(names, pkg.open, _content_types(pkg), needles)


def read_cells(data: bytes, sheet: str, refs: Iterable[str]) -> dict[str, CellValue]:
    """Decode the given cells of ``sheet`` from the package (dates come back as serials).

    Keys are the refs as given; a missing or empty cell reads as None.
    """
    pkg = _Package(data)
    wb = _load_workbook(pkg)
    info = wb.find_sheet(sheet, PatchError)
    if info.kind not in _CELL_SHEET_TYPES or not info.part:
        raise PatchError(f"sheet {info.name!r} is not a worksheet with cells")
    wanted: dict[tuple[int, int], list[str]] = {}
    for ref in refs:
        pos = _parse_ref(ref)
        if pos is None:
            raise PatchError(f"{info.name}!{ref!r}: not a cell reference like B2")
        wanted.setdefault(pos, []).append(ref)
    out: dict[str, CellValue] = {ref: None for refs_ in wanted.values() for ref in refs_}
    data_sheet = pkg.read(info.part)
    sst = _SharedStrings(wb.sst_part, pkg.read(wb.sst_part)) if wb.sst_part else None
    rx = _sheet_rx(_prefix_of(data_sheet))
    rows = {r for r, _ in wanted}
    for rnum, content in _iter_rows(data_sheet, rx, rows, info.part, PatchError):
        for cell in _row_cells(rx, content):
            for ref in wanted.get((rnum, cell.col), ()):
                out[ref] = _decode_value(cell.attrs, cell.inner, rx, sst)
    return out


# A worksheet part of at least this size is read back as an excerpt of its edited cells
# (see excerpt_package).
EXCERPT_MIN_BYTES = 1 << 20


def excerpt_package(
    data: bytes,
    edits: Iterable[CellEdit],
    cut: set[str] | None = None,
    placed: dict[str, Placed] | None = None,
) -> bytes:
    """The package ``data`` with each worksheet of at least :data:`EXCERPT_MIN_BYTES` that
    ``edits`` edit (sheet names matched ignoring case) cut down to the edited cells
    (:func:`cells_excerpt`); every other member is copied as stored. ``data`` itself when
    nothing is cut. A sheet named in an edit that is not a cell reference is left whole
    (where a check of the edits names the reference). The names of the sheets cut, case
    folded, are added to ``cut`` when it is given.

    ``placed`` is where the patch that made ``data`` put cells, by sheet part
    (:attr:`PatchResult.placed`), which spares :func:`cells_excerpt` its search for them.

    When every edited sheet can be cut so and none of the cells cut out refers to the
    shared-string table (the weekly run writes its text inline), the small sheets are cut
    too and the table is left empty: a reader parses all of it when it opens a package
    (half a million strings in a 100,000-client register), and no cell read back needs it.

    What the reopen check of the edits in a big sheet reads back: a reader then parses the
    cells written, not the 10^5 rows the fidelity check proves unchanged byte for byte.
    Raises PatchError when a member cannot be read (its CRC-32 is checked).
    """
    by_sheet: dict[str, list[Any]] = {}
    for edit in edits:
        cells = by_sheet.get(edit.sheet)
        if cells is None:
            cells = by_sheet[edit.sheet] = []
        cells.append(edit.cell)
    by_name: dict[str, list[Any]] = {}
    for name, cells in by_sheet.items():
        by_name.setdefault(name.casefold(), []).extend(cells)
    pkg = _Package(data)
    wb = _load_workbook(pkg)
    excerpts: list[tuple[str, str, bytes, bool]] = []  # (part, folded name, excerpt, big)
    every = True  # every edited sheet cut
    for sheet in wb.sheets:
        edited = by_name.pop(sheet.name.casefold(), None)
        if edited is None:
            continue
        real = pkg.real_name(sheet.part) if sheet.part else None
        if real is None or sheet.kind not in _CELL_SHEET_TYPES:
            every = False
            continue
        big = pkg.zip.getinfo(real).file_size >= EXCERPT_MIN_BYTES
        refs = _canonical_refs(edited) if big or every else None
        where = placed.get(sheet.part) if placed else None
        excerpt = cells_excerpt(pkg.read(real), refs, where) if refs is not None else None
        if excerpt is None:
            every = False
        else:
            excerpts.append((real, sheet.name.casefold(), excerpt, big))
    sst = pkg.real_name(wb.sst_part) if wb.sst_part else None
    plain = (
        every
        and not by_name  # no edit names a sheet the package lacks
        and sst is not None
        and not any(_refers_to_sst(excerpt) for _p, _n, excerpt, _b in excerpts)
    )
    new_parts: dict[str, bytes | bytearray] = {}
    for real, folded, excerpt, big in excerpts:
        if big or plain:
            new_parts[real] = excerpt
            if cut is not None:
                cut.add(folded)
    if plain and new_parts:
        assert sst is not None
        new_parts[sst] = _EMPTY_SST
    return _write_package(pkg, new_parts, set()) if new_parts else data


# A cell that refers to the shared-string table (t="s"), and a table with no string.
_SST_CELL = re.compile(rb"""<(?:[\w.\-]+:)?c\s[^>]*?\st\s*=\s*["']s["']""")
_EMPTY_SST = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="'
    b'http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="0" uniqueCount="0"/>'
)


def _refers_to_sst(xml: bytes) -> bool:
    """Whether a cell of ``xml`` refers to the shared-string table (``t="s"``). Text with
    neither ``"s"`` nor ``'s'`` in it holds no such cell: that is looked for first, at C
    speed, and the pattern (a cell at a time) only where one is."""
    if b'"s"' not in xml and b"'s'" not in xml:
        return False
    return _SST_CELL.search(xml) is not None


def _canonical_refs(cells: Iterable[Any]) -> set[str] | None:
    """The A1-style references ``cells`` as a patch writes them (upper case, no $); None
    when one is not a cell reference."""
    cells = list(cells)
    if parse_canonical_refs(cells) is not None:  # as the weekly job writes them
        return set(cells)
    refs = set()
    for cell in cells:
        if not isinstance(cell, str) or _parse_ref(cell) is None:
            return None
        refs.add(cell.upper())
    return refs


def cells_excerpt(data: bytes, refs: Collection[str], placed: Placed | None = None) -> bytes | None:
    """The worksheet ``data`` with only the cells at ``refs`` (upper case, as
    :func:`_canonical_refs` gives them) in its sheetData: each taken byte for byte from the
    part, found by its leading ``r`` attribute (as the patch writes it), in a ``<row>`` of
    its own number. Everything before and after the rows is kept as it is. A cell that is not
    there is left out (it reads as empty).

    What the reopen check of the edits in a big sheet reads back: a reader then parses the
    cells written, not every cell of the sheet; the fidelity check proves that each sits in
    its own row, in column order, and that the rest of the sheet is unchanged byte for byte.
    A column with many edited cells (a first run's statuses) is searched in one pass; each
    other cell (an erasure's, next week's changed statuses) in its own row, found by its
    leading ``r`` (a row that is not there reads as empty). None when a cell occurs twice or
    is not closed, the cells or their rows are not in order, or a row lacks its leading ``r``
    (its number then follows from its place, which a search for ``r`` does not see): the
    caller then reads the whole part.

    ``placed`` is where the patch that wrote ``data`` put some of the cells
    (:class:`Placed`): each is taken from there if it is there (a whole cell, ``<c r=`` with
    its reference to ``</c>``, inside the sheetData), and only the others are searched for.
    That a cell is nowhere else, and where its row is, is for the fidelity check to prove
    (as it proves the rest): what is read back is the cell's bytes, as the part holds them.
    """
    rx = _sheet_rx(_prefix_of(data))
    try:
        sd, start, end = _sheet_body(data, rx, "", PatchError)
    except PatchError:
        return None
    if sd[1] or not refs:
        return None
    found: list[tuple[int, int, int]] = []  # (start, end, row) of each cell found
    if placed is not None and placed.refs:
        known = _placed_cells(data, rx, (start, end), refs, placed)
        if known is None:
            return None
        found = known
        taken = set(placed.refs)  # each of them in refs (_placed_cells)
        refs = [] if len(taken) == len(refs) else [ref for ref in refs if ref not in taken]
    by_column: dict[str, list[str]] = {}
    for ref in refs:
        by_column.setdefault(ref.rstrip("0123456789"), []).append(ref)
    dense = sorted(h for h, cells in by_column.items() if len(cells) >= _DENSE_COLUMN_CELLS)
    cell_close = b"</" + rx.prefix + b"c>"
    row_open, row_close = b"<" + rx.prefix + b'row r="', rx.row_close

    def stop(after: int, limit: int) -> int:
        """Where the cell whose start tag goes on at ``after`` ends (-1: not closed): at
        its "/>", or its "</c>" (attributes up to the first ">", as the cell pattern of the
        patch and its checks reads them)."""
        gt = data.find(b">", after, limit)
        if gt < 0:
            return -1
        if data[gt - 1] == 0x2F:
            return gt + 1
        close = data.find(cell_close, gt, limit)
        return close + len(cell_close) if close >= 0 else -1

    if dense:
        wanted = {ref.encode("ascii") for head in dense for ref in by_column[head]}
        letters = b"|".join(re.escape(head.encode("ascii")) for head in dense)
        if len(dense) > 1:
            letters = b"(?:" + letters + b")"
        # The whole cell in the one pattern (its start tag's attributes up to the first
        # ">", then "/>" or its content and "</c>"): no call a cell to find its end. One
        # column's letters are left bare: the pattern's literal start then takes them in,
        # and the search skips the other columns' cells at C speed (half the time).
        find = re.compile(
            re.escape(rx.cell_r_open)
            + rb"("
            + letters
            + rb'(\d+))"[^>]*?(?:/>|>.*?'
            + re.escape(cell_close)
            + rb")",
            re.S,
        )
        # (start, end, ref, row digits) of each edited cell, in the part's order.
        cut = [
            (m.start(), m.end(), m[1], m[2])
            for m in find.finditer(data, start, end)
            if m[1] in wanted
        ]
        if len({ref for _s, _e, ref, _d in cut}) != len(cut):
            return None  # a cell twice
        found += [(at, stop_at, int(d)) for at, stop_at, _ref, d in cut]
    sparse = sorted(
        (int(ref[len(head) :]), _COL_NUM[head], ref)
        for head, cells in by_column.items()
        if head not in dense
        for ref in cells
    )
    if sparse:
        without_r = re.compile(rb"<" + re.escape(rx.prefix) + rb'row(?! r=")(?=[\s/>])')
        if without_r.search(data, start, end):
            return None
    pos = start
    for rnum, _col, ref in sparse:  # each in its row, the rows searched for in order
        key = row_open + str(rnum).encode("ascii") + b'"'
        at = data.find(key, pos, end)
        if at < 0:
            if data.find(key, start, pos) >= 0:
                return None  # the rows are out of order
            continue  # no such row: the cell reads as empty
        m = rx.row_start.match(data, at)
        if m is None:
            return None
        pos = at
        if m[2]:
            continue  # <row .../>: the cell reads as empty
        row_end = data.find(row_close, m.end(), end)
        if row_end < 0:
            return None
        needle = rx.cell_r_open + ref.encode("ascii") + b'"'
        cell_at = data.find(needle, m.end(), row_end)
        if cell_at < 0:
            continue
        if data.find(needle, cell_at + len(needle), row_end) >= 0:
            return None
        cell_end = stop(cell_at + len(needle), row_end)
        if cell_end < 0:
            return None
        found.append((cell_at, cell_end, rnum))
    found.sort()
    if (not found or found[0][0] >= start) and all(
        a[1] <= b[0] and a[2] < b[2] for a, b in itertools.pairwise(found)
    ):
        # A cell a row (a first run's statuses, with an erasure's): each row made in one go.
        rows = [row_open + b"%d" % r + b'">' + data[at:stop] + row_close for at, stop, r in found]
        return b"".join([data[:start], *rows, data[end:]])
    view = memoryview(data)
    pieces: list[bytes | memoryview] = [view[:start]]
    current = 0
    last_end = start
    for cell_at, cell_end, rnum in found:
        if cell_at < last_end:
            return None  # one inside another
        if rnum != current:
            if rnum < current:
                return None
            if current:
                pieces.append(row_close)
            pieces.append(row_open + str(rnum).encode("ascii") + b'">')
            current = rnum
        pieces.append(view[cell_at:cell_end])
        last_end = cell_end
    if current:
        pieces.append(row_close)
    pieces.append(view[end:])
    return b"".join(pieces)


def _placed_cells(
    data: bytes, rx: _SheetRx, body: tuple[int, int], refs: Collection[str], placed: Placed
) -> list[tuple[int, int, int]] | None:
    """(start, end, row) of each cell ``placed`` says where it is (of those in ``refs``),
    each checked to be there: inside the sheetData's ``body`` (from, to), from
    ``<c r="REF"`` to its ``</c>``, with no other cell's start in between. None when one is
    not."""
    start, end = body
    parsed = parse_canonical_refs(placed.refs)
    if parsed is None or len(placed.spans) != 2 * len(placed.refs):
        return None
    head, close, other = rx.cell_r_open, b"</" + rx.prefix + b"c>", rx.cell_open
    starts, ends = placed.spans[0::2], placed.spans[1::2]
    startswith, endswith, find = data.startswith, data.endswith, data.find
    if not all(
        start <= at
        and stop <= end
        and startswith(head + ref.encode() + b'"', at)
        and endswith(close, at, stop)
        and find(other, at + 1, stop) < 0
        and ref in refs
        for ref, at, stop in zip(placed.refs, starts, ends, strict=True)
    ):
        return None
    return list(zip(starts, ends, parsed[0], strict=True))


def _sheet_body(
    data: bytes, rx: _SheetRx, part: str, error: type[Exception]
) -> tuple[re.Match[bytes], int, int]:
    sd = rx.sheet_data.search(data)
    if sd is None:
        raise error(f"{part}: the worksheet has no sheetData")
    if sd[1]:
        return sd, sd.end(), sd.end()
    end = data.find(rx.sheet_data_close, sd.end())
    if end < 0:
        raise error(f"{part}: the worksheet's sheetData is not closed")
    return sd, sd.end(), end


class _RowSpan(NamedTuple):
    rnum: int
    start: int
    end: int
    tag_end: int
    attrs: bytes


def _row_body(
    data: bytes, m: re.Match[bytes], rx: _SheetRx, body_end: int, where: str
) -> tuple[bytes, int]:
    """The content of the row whose start tag ``m`` matched, and where the row ends."""
    if m[2]:  # <row .../>
        return b"", m.end()
    close = data.find(rx.row_close, m.end(), body_end)
    if close < 0:
        raise PatchError(f"{where} is not closed")
    return data[m.end() : close], close + len(rx.row_close)


def _row_number(attrs: bytes, prev: int) -> int:
    """A ``<row>``'s number from its attributes; without ``r`` it follows ``prev``."""
    if attrs.startswith(b' r="'):  # the common layout, read without a regex
        return int(attrs[4 : attrs.index(b'"', 4)])
    rm = _ROW_R.search(attrs)
    return int(rm[1]) if rm else prev + 1


def _walk_rows(
    data: bytes,
    rx: _SheetRx,
    start: int,
    end: int,
    *,
    part: str,
    error: type[Exception],
    prev: int = 0,
) -> Iterator[_RowSpan]:
    """Every row from ``start``: a row without r is numbered after ``prev``, the one before."""
    for m in rx.row_start.finditer(data, start, end):
        rnum = _row_number(m[1], prev)
        if rnum <= prev:
            raise error(f"{part}: rows are out of order near row {rnum}")
        prev = rnum
        if m[2]:
            row_end = m.end()
        else:
            close = data.find(rx.row_close, m.end(), end)
            if close < 0:
                raise error(f"{part}: row {rnum} is not closed")
            row_end = close + len(rx.row_close)
        yield _RowSpan(rnum, m.start(), row_end, m.end(), m[1])


def _iter_rows(
    data: bytes, rx: _SheetRx, rows: set[int], part: str, error: type[Exception]
) -> Iterator[tuple[int, bytes]]:
    _, start, end = _sheet_body(data, rx, part, error)
    last = max(rows, default=0)
    for span in _walk_rows(data, rx, start, end, part=part, error=error):
        if span.rnum > last:
            break
        if span.rnum in rows:
            close = span.end - len(rx.row_close) if span.end > span.tag_end else span.tag_end
            yield span.rnum, data[span.tag_end : close]


def prepare_patch(data: bytes, sheets: Iterable[str], *, rows: bool = False) -> _Package:
    """The package ``data`` ready for :func:`patch_workbook` (its ``package``): read, and the
    parts of the named sheets (those the edits still being made will surely change, the
    Clients sheet) inflated, so that the patch then has that done already; with ``rows``
    (when the edits will touch most rows) their rows found too (:func:`_index_rows`)."""
    pkg = _Package(data)
    wb = _load_workbook(pkg)
    parts = [wb.find_sheet(name, PatchError).part for name in sheets]
    pkg.preload(parts)
    if rows:
        pkg.index_rows(parts)
    return pkg


def patch_workbook(
    data: bytes,
    edits: Sequence[CellEdit],
    *,
    residues: bool = True,
    inline: bool = False,
    package: _Package | None = None,
) -> PatchResult:
    """Apply ``edits`` to the package ``data``, touching nothing else; raise PatchError if unsafe.

    Only worksheets with edits are rewritten (row by row, never as a DOM), plus the
    shared-string table, styles (a date format), calcChain, grown tables and, when calcChain
    is dropped, the workbook rels and content types. Shared strings orphaned by the edits are
    removed; where the old text of edited cells still appears is reported in ``residues``
    (a search of every part, which a caller that searches for itself turns off).

    Text goes into the shared-string table (an existing string is reused), or with
    ``inline`` into the cell itself (``t="inlineStr"``, as a workbook without a table gets):
    then the table is not searched or rewritten, and a later edit of the cell leaves no
    orphan string behind. Excel and LibreOffice move such text into the table on their next
    save. ``package`` is :func:`prepare_patch` of ``data``, when made beforehand.
    """
    pkg = _Package(data) if package is None else package
    wb = _load_workbook(pkg)
    plans = _plan(wb, edits, PatchError)
    if not plans:
        return PatchResult(data, [], 0, [])
    patcher = _Patcher(pkg, wb, plans, inline=inline)
    new_parts: dict[str, bytes | bytearray] = {}
    changed: set[str] = set()
    for part, plan in plans.items():
        original = pkg.read(part)
        new_parts[part] = patcher.patch_sheet(part, original, plan)
        if new_parts[part] != original:
            changed.add(part)
        del original

    removed_parts: set[str] = set()
    # Tables directly above an edited row grow, the way Excel extends a table as you type.
    for part, plan in plans.items():
        tables = _table_parts(pkg, part)
        rows = _written_by_row(plan) if tables else {}
        for table in tables if rows else ():
            bigger = _grow_table(pkg.read(table), rows)
            if bigger is not None:
                new_parts[table] = bigger
                changed.add(table)

    # calcChain: forget overwritten formula cells; an empty chain is dropped with its rel.
    formula_cells = {
        (plans[part].info.sheet_id, ref)
        for part, refs in patcher.formula_refs.items()
        for ref in refs
    }
    if formula_cells and wb.calc_chain_part:
        chain = _patch_calc_chain(pkg.read(wb.calc_chain_part), formula_cells)
        if chain is None:
            removed_parts.add(wb.calc_chain_part)
            rels_part = _rels_part_of(wb.part)
            new_parts[rels_part] = _remove_relationship(pkg.read(rels_part), "calcChain")
            changed |= {wb.calc_chain_part, rels_part}
            if pkg.has("[Content_Types].xml"):
                new_parts["[Content_Types].xml"] = _remove_override(
                    pkg.read("[Content_Types].xml"), wb.calc_chain_part
                )
                changed.add("[Content_Types].xml")
        else:
            new_parts[wb.calc_chain_part] = chain
            changed.add(wb.calc_chain_part)

    # Erasure-grade garbage collection of the strings the edits orphaned.
    removed_strings = 0
    sst = patcher.sst_if_read
    if sst is not None and wb.sst_part:
        candidates = {i for i in patcher.old_sst_refs if i < sst.count}
        if candidates:
            still_used = _referenced(pkg, wb, new_parts, candidates)
            orphans = candidates - still_used
            if orphans:
                sst.blank(orphans)
                removed_strings = len(orphans)
        if sst.appended or sst.removed or patcher.count_delta:
            new_parts[wb.sst_part] = sst.render(patcher.count_delta)
            changed.add(wb.sst_part)
    if patcher._styles is not None and patcher._styles.appended:
        new_parts[patcher._styles.part] = patcher._styles.render()
        changed.add(patcher._styles.part)

    out = _write_package(pkg, {n: c for n, c in new_parts.items() if n in changed}, removed_parts)
    changed_parts = [n for n in pkg.names if n in changed]

    needles: list[str] = []
    seen: set[str] = set()
    for _, text in sorted(patcher.old_texts, key=lambda t: t[0]):
        if text and text not in seen:
            seen.add(text)
            needles.append(text)
    found: list[Residue] = []
    if needles and residues:
        names = [n for n in pkg.names if n not in removed_parts]

        def open_new(name: str) -> IO[bytes]:
            return io.BytesIO(new_parts[name]) if name in changed else pkg.open(name)

        found = _find_text_in(names, open_new, _content_types(pkg), needles)
    placed = {part: patcher.placed[part] for part in changed if part in patcher.placed}
    return PatchResult(out, changed_parts, removed_strings, found, placed)


def patch_further(
    result: PatchResult, edits: Sequence[CellEdit], *, verify: bool = False, inline: bool = False
) -> PatchResult:
    """``result`` with more ``edits`` applied, as one patch of the original (no residues).

    Its changed parts are those of both steps, so that :func:`verify_patch` of the original
    against it, with the edits of both steps, proves the whole. Costs the second step only.
    With ``verify`` the second step is proven against ``result`` (FidelityError if not): with
    a proof of ``result`` against the original, that proves the whole as well.
    """
    more = patch_workbook(result.data, edits, residues=False, inline=inline)
    if verify:
        verify_patch(result.data, more, edits)
    changed = list(dict.fromkeys([*result.changed_parts, *more.changed_parts]))
    return PatchResult(
        more.data, changed, result.removed_strings + more.removed_strings, list(result.residues)
    )


def _cell_sheets(wb: _Workbook) -> list[str]:
    return list(dict.fromkeys(wb.cell_sheet_parts()))


def _referenced(
    pkg: _Package, wb: _Workbook, new_parts: dict[str, bytes | bytearray], candidates: set[int]
) -> set[int]:
    """Which of ``candidates`` some ``t="s"`` cell in any sheet still refers to."""
    found: set[int] = set()
    for part in _cell_sheets(wb):
        data = new_parts.get(part) or pkg.read(part)
        rx = _sheet_rx(_prefix_of(data))
        pos = 0
        while found != candidates:
            # Look only for what is still unseen (a common first name has 10^4 references),
            # but make the pattern anew only once it has met a few already seen: a pattern
            # of a hundred numbers takes longer to make than a few dozen matches take.
            seen_again = 0
            for m in _sst_refs(data, rx, _sst_ref_pattern(rx, candidates - found), pos):
                pos = m.end()
                index = int(m[1])
                if index not in found:
                    found.add(index)
                    if found == candidates:
                        break
                else:
                    seen_again += 1
                    if seen_again > _SEEN_AGAIN:
                        break
            else:
                break  # the end of this sheet
        if found == candidates:
            break
    return found


_SEEN_AGAIN = 64  # matches of indices already found before the pattern is made again


def _write_package(
    pkg: _Package, new_parts: dict[str, bytes | bytearray], removed: set[str]
) -> bytes:
    """The same members in the same order and with the same timestamps.

    Only the changed parts are deflated afresh; every other member is copied as stored, its
    compressed bytes, headers and central-directory record included (with its new offset), so
    an unchanged part costs neither inflating nor deflating. A package whose members cannot be
    delimited safely (ZIP64, data before the first member) is rewritten whole instead.
    """
    records = pkg.central_records()
    if records is None:
        return _rewrite_package(pkg, new_parts, removed)
    # The members' pieces (the unchanged ones as views of the original) are joined once at
    # the end: the new package is made in one allocation of its final size, not grown in a
    # buffer and then copied out of it (a 100,000-client package is 19 MB).
    pieces: list[bytes | bytearray | memoryview] = []
    size = 0
    directory = bytearray()
    count = 0
    deflated = _deflate_all(new_parts)
    for info, record in zip(pkg.infos, records, strict=True):
        if info.filename in removed:
            continue
        offset = size
        content = new_parts.get(info.filename)
        if content is None:
            copied = _copied_member(pkg, info, record, offset)
            if copied is None:
                return _rewrite_package(pkg, new_parts, removed)
            pieces.append(copied[0])
            size += len(copied[0])
            directory += copied[1]
        else:
            data = deflated[info.filename]
            local, central = _member_headers(
                info, size=len(content), compressed=len(data[0]), crc=data[1], offset=offset
            )
            pieces += (local, data[0])  # the compressed data is not copied into its header's
            size += len(local) + len(data[0])
            directory += central
        count += 1
    end = _end_record(pkg, count, directory, size)
    if end is None:
        return _rewrite_package(pkg, new_parts, removed)
    pieces += (directory, end, pkg.zip.comment)
    return b"".join(pieces)


def _copied_member(
    pkg: _Package, info: zipfile.ZipInfo, record: memoryview, offset: int
) -> tuple[memoryview, bytes] | None:
    """A member copied as stored (:meth:`_Package.member`) to ``offset``, and its central
    record with that offset; None when it cannot be delimited."""
    raw = pkg.member(info)
    if raw is None:
        return None
    return raw, bytes(record[:42]) + struct.pack("<L", offset) + bytes(record[46:])


def _end_record(pkg: _Package, count: int, directory: bytearray, size: int) -> bytes | None:
    """The end of central directory record of ``count`` members taking ``size`` bytes, the
    package's comment after it; None when that needs ZIP64."""
    comment = pkg.zip.comment
    if size >= 0xFFFFFFFF or count >= 0xFFFF or len(comment) > 0xFFFF:
        return None
    return struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), size, len(comment)
    )


def _deflate(content: bytes | bytearray) -> tuple[bytes, int]:
    """Raw deflate data and CRC-32 of ``content``."""
    packer = _fast_zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    return packer.compress(content) + packer.flush(), _fast_zlib.crc32(content)


def _deflate_all(parts: dict[str, bytes | bytearray]) -> dict[str, tuple[bytes, int]]:
    """Every part deflated; two big ones at a time (zlib lets go of the GIL meanwhile)."""
    big = [name for name, content in parts.items() if len(content) > 1 << 20]
    done: dict[str, tuple[bytes, int]] = {}
    if len(big) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            done = dict(zip(big, pool.map(_deflate, [parts[n] for n in big]), strict=True))
    for name, content in parts.items():
        if name not in done:
            done[name] = _deflate(content)
    return done


def _member_headers(
    info: zipfile.ZipInfo,
    *,
    size: int,
    compressed: int,
    crc: int,
    offset: int,
    method: int = zipfile.ZIP_DEFLATED,
) -> tuple[bytes, bytes]:
    """Local header (the compressed data follows it) and central record of a member named
    and dated as ``info``: ``size`` bytes of content, ``compressed`` bytes as stored."""
    try:
        name = info.filename.encode("ascii")
        flags = 0
    except UnicodeEncodeError:
        name = info.filename.encode("utf-8")
        flags = 0x800
    y, mo, d, h, mi, s = info.date_time
    dos_time = h << 11 | mi << 5 | s // 2
    dos_date = (y - 1980) << 9 | mo << 5 | d
    comment = info.comment
    if compressed >= 0xFFFFFFFF or size >= 0xFFFFFFFF:
        raise PatchError(f"{info.filename}: the part is too large for a .xlsx package")
    fields = (flags, method, dos_time, dos_date, crc, compressed, size)
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *fields, len(name), 0)
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        info.create_system << 8 | 20,
        20,
        *fields,
        len(name),
        0,
        len(comment),
        0,
        0,
        info.external_attr,
        offset,
    )
    return local + name, central + name + comment


def _rewrite_package(
    pkg: _Package, new_parts: dict[str, bytes | bytearray], removed: set[str]
) -> bytes:
    """The same members in the same order and with the same timestamps, deflated afresh."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as out:
        out.comment = pkg.zip.comment
        for info in pkg.infos:
            if info.filename in removed:
                continue
            content = new_parts.get(info.filename)
            if content is None:
                content = pkg.read(info.filename)
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.create_system = info.create_system
            zi.external_attr = info.external_attr
            zi.comment = info.comment
            out.writestr(zi, content, compresslevel=COMPRESS_LEVEL)
    return buf.getvalue()


# --- the package as python-calamine reads it ---------------------------------------------------

# What calamine's search of a worksheet for its merged ranges stops at. python-calamine asks
# for them with every sheet it parses, and calamine finds them by reading the part's XML
# again, element by element, up to a <mergeCells>: that comes after the sheetData, so the
# search costs as much as the parse itself (a third of the read of a 20,000-client register).
# Put in front of the part, it ends that search at once; merged ranges are found by
# sheetreg's own scan of the sheets instead (workbook.py), and the cells read the same (the
# cell reader skips what is not a dimension or the sheetData).
_READER_MARK = b"<mergeCells></mergeCells>"
# A deflate stream's stored block (BFINAL 0, BTYPE 00, then byte aligned: LEN and NLEN) of
# the mark. Deflate's back-references count from where they are, so a block put before a
# stream leaves what follows reading as before: the part is neither inflated nor deflated.
_READER_MARK_BLOCK = (
    b"\x00" + struct.pack("<2H", len(_READER_MARK), len(_READER_MARK) ^ 0xFFFF) + _READER_MARK
)
_CRC_POLY = 0xEDB88320  # CRC-32's polynomial, bits reversed (as zlib computes it)


def _crc_times(a: int, b: int) -> int:
    """``a`` times ``b`` modulo CRC-32's polynomial (bits reversed; zlib's multmodp)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1


def _crc_x_powers() -> list[int]:
    powers = [1 << 30]  # x^1; x^(2^k) after it
    for _ in range(31):
        powers.append(_crc_times(powers[-1], powers[-1]))
    return powers


_CRC_X_POWERS = _crc_x_powers()


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of ``a + b`` from ``a``'s CRC, ``b``'s and ``b``'s length (zlib's
    crc32_combine, which Python's zlib leaves out): no pass over ``b``."""
    shift = 1 << 31  # x^0: then times x^(8 * len2)
    n, k = len2, 3
    while n:
        if n & 1:
            shift = _crc_times(_CRC_X_POWERS[k & 31], shift)
        n >>= 1
        k += 1
    return _crc_times(shift, crc1) ^ crc2


def reader_view(data: bytes, parts: Collection[str]) -> bytes:
    """The package ``data`` for python-calamine to read, its cells as they are: each of the
    worksheet ``parts`` that is deflated or stored and starts with ``<`` in a plain 8-bit
    encoding gets :data:`_READER_MARK` before its XML, so that calamine does not read the
    part a second time for merged ranges. Those it then reports as none: ``data`` itself
    is what a reader of merged ranges must be given (as it is when nothing can be marked:
    ZIP64, members that cannot be delimited).

    The mark goes in as a stored deflate block before the compressed data (or, stored, the
    data), with the member's CRC-32 combined and its sizes grown: a copy of the members'
    bytes, never an inflate or a deflate.
    """
    try:
        pkg = _Package(data)
    except PatchError:
        return data  # calamine names what is wrong with it
    records = pkg.central_records()
    wanted = {name.casefold() for name in parts}
    if records is None or not wanted or len(data) >= 0xFFFFFFFF - 0xFFFF:
        return data
    pieces: list[bytes | memoryview] = []
    size = 0
    directory = bytearray()
    marked = 0
    for info, record in zip(pkg.infos, records, strict=True):
        offset = size
        body = (
            pkg._compressed(info, named=True)
            if info.filename.casefold() in wanted
            and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
            else None
        )
        if body is not None and _plain_xml_start(info, body):
            mark = _READER_MARK if info.compress_type == zipfile.ZIP_STORED else _READER_MARK_BLOCK
            crc = crc32_combine(zlib.crc32(_READER_MARK), info.CRC, info.file_size)
            local, central = _member_headers(
                info,
                size=info.file_size + len(_READER_MARK),
                compressed=len(mark) + len(body),
                crc=crc,
                offset=offset,
                method=info.compress_type,
            )
            pieces += (local, mark, body)
            size += len(local) + len(mark) + len(body)
            directory += central
            marked += 1
            continue
        copied = _copied_member(pkg, info, record, offset)
        if copied is None:
            return data
        pieces.append(copied[0])
        size += len(copied[0])
        directory += copied[1]
    end = _end_record(pkg, len(pkg.infos), directory, size)
    if not marked or end is None:
        return data
    return b"".join([*pieces, directory, end, pkg.zip.comment])


def _plain_xml_start(info: zipfile.ZipInfo, body: memoryview) -> bool:
    """Whether the member's content starts with ``<`` (no byte-order mark, no space), in an
    encoding a mark in ASCII can go before: no ``encoding`` declared but UTF-8's."""
    if info.compress_type == zipfile.ZIP_STORED:
        head = bytes(body[:256])
    else:
        try:
            head = zlib.decompressobj(-15).decompress(body[:1024], 256)
        except zlib.error:
            return False
    if not head.startswith(b"<") or head[1:2] == b"\x00":
        return False
    declared = re.match(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)[\"']", head)
    return declared is None or declared[1].lower() in (b"utf-8", b"utf8")


# --- verification ----------------------------------------------------------------------------


_MISSING = object()


def _fail(message: str) -> FidelityError:
    return FidelityError(f"fidelity check: {message}")


def _check_well_formed(name: str, data: bytes) -> None:
    """Parse a changed part with expat (no tree, so a 100 MB sheet costs no memory)."""
    parser = expat.ParserCreate(namespace_separator=" ")
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise _fail(f"{name} is not well-formed XML after the patch (line {exc.lineno})") from None


def _position_name(data: bytes, rx: _SheetRx, pos: int) -> str:
    """'cell B7' or 'row 7' for a byte offset in a worksheet, for messages."""
    lt, tag = _cell_tag_before(data, rx, pos + 1)
    if lt >= 0 and data.find(rx.cell_open, lt + 1, pos + 1) < 0:
        m = _CELL_R.search(tag)
        if m is not None and data.rfind(rx.row_close, lt, pos + 1) < 0:
            return f"cell {m[1].decode().upper()}{m[2].decode()}"
    row = data.rfind(b"<" + rx.prefix + b"row", 0, pos + 1)
    if row >= 0:
        m = _ROW_R.search(data, row, data.find(b">", row))
        if m is not None:
            return f"row {m[1].decode()}"
    return f"byte {pos}"


_SPANS_ATTR = re.compile(rb"""(\sspans\s*=\s*["'])([^"']*)(["'])""")
# Text that reads as itself between <t> and </t>: no entity, no _xHHHH_ escape, no markup,
# no space but single ones between words (a line end or a space at either end is not kept
# as such without xml:space).
_PLAIN_TEXT = re.compile(r"[^\s&<>_]+(?: [^\s&<>_]+)*")
_BULK_PROOF_CELLS = 256  # from this many edits in a sheet, the bulk proof is tried first
_DENSE_COLUMN_CELLS = 64  # from this many edits in a column, its cells are found in one pass


@functools.lru_cache(maxsize=8)
def _row_spans_rx(rx: _SheetRx) -> re.Pattern[bytes]:
    """A row start tag's ``spans`` hint (group 1: the tag before it), to mask it."""
    p = re.escape(rx.prefix)
    return re.compile(rb"(<" + p + rb"""row\s[^>]*?)\sspans\s*=\s*["'][^"']*["']""")


def _first_difference(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on prefix equality: C-speed compares
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class _VerifyContext:
    old_sst: _SharedStrings | None
    new_sst: _SharedStrings | None
    changed_strings: set[int]  # old indices whose text is no longer at the same index
    new_styles: _Styles | None
    date1904: bool


def _changed_strings(
    old: _SharedStrings | None,
    new: _SharedStrings | None,
    layout: list[tuple[int, int]] | None = None,
) -> set[int]:
    """Old string indices a reference can no longer be trusted to keep its text through.

    ``layout``, when given and the tables could be compared string by string in place, gets
    where the new table's body is not the original's strings copied as they were: each
    changed string's new extent, then all after the last string they have in common (what
    was appended); it is left empty otherwise."""
    if old is None or new is None:
        return set()
    size = old.body_end - old.body_start
    if new.data.startswith(memoryview(old.data)[old.body_start : old.body_end], new.body_start):
        if layout is not None:
            layout.append((new.body_start + size, new.body_end))
        return set()  # only appended
    found = _changed_in_place(old, new, layout)
    if found is None:
        if layout is not None:
            layout.clear()
        return _changed_by_index(old, new)
    return found


def _strings_well_formed(
    old: _SharedStrings, new: _SharedStrings, layout: list[tuple[int, int]]
) -> bool:
    """Whether the new string table is well-formed XML, told from how it differs from the
    original (``layout``, from :func:`_changed_strings`): True when the original is compact
    (each string one whole element: :meth:`_SharedStrings.compact`), the new table has its
    prolog and root start tag (the counts aside), the two parse as a document, and each
    changed string's new extent, and what follows the last common string, parses on its
    own inside that root. False when that does not tell: the caller parses the whole table.

    The strings the patch left as they were are taken as the original has them, as the
    rest of a sheet is: a table that was well-formed stays so. At 100,000 clients the
    whole table is several megabytes; what changed is a few hundred strings.
    """
    if not layout or new.self_closing or not old.compact():
        return False
    a, b = old.data, new.data
    if a[: old.root.start()] != b[: new.root.start()]:
        return False
    if _COUNT_ATTRS.sub(b"", old.root[0]) != _COUNT_ATTRS.sub(b"", new.root[0]):
        return False
    # Each piece after the table's prolog and root start tag (its encoding and entities
    # hold), closed as the table is.
    head, close = b[: new.body_start], b"</" + new.prefix + b"sst>"
    pieces = [head + b[new.body_end :]]
    pieces += [head + b[start:end] + close for start, end in layout]
    for piece in pieces:
        parser = expat.ParserCreate(namespace_separator=" ")
        try:
            parser.Parse(piece, True)
        except expat.ExpatError:
            return False
    return True


# A string table's count attributes, with their values (a patch changes them).
_COUNT_ATTRS = re.compile(rb"""\s(?:count|uniqueCount)\s*=\s*(?:"[^"]*"|'[^']*')""")


def _changed_in_place(
    old: _SharedStrings, new: _SharedStrings, layout: list[tuple[int, int]] | None = None
) -> set[int] | None:
    """:func:`_changed_strings` from the original's index alone (made before the patch
    exists): the strings compared in runs, each run where the new table has it once the
    strings changed before it are counted in; a changed string's new extent found by its
    end tag. None when a string's new extent is not one element with its end tag.
    ``layout`` as :func:`_changed_strings` has it (in order)."""
    o_bounds = array("q", old.starts())
    o_bounds.append(old.body_end)
    head, close = b"<" + new.prefix + b"si", b"</" + new.prefix + b"si>"
    common = min(old.orig_count, new.orig_count)
    changed = set(range(new.orig_count, old.orig_count))
    shift = new.body_start - old.body_start  # where the new table has what the old has
    block = 1024
    runs = [(lo, min(lo + block, common)) for lo in range(0, common, block)][::-1]
    a, b = old.data, new.data
    while runs:
        lo, hi = runs.pop()
        start, end = o_bounds[lo], o_bounds[hi]
        if a[start:end] == b[start + shift : end + shift]:
            continue
        if hi - lo == 1:
            tail = b.find(close, start + shift, new.body_end)
            if tail < 0:
                return None
            tail += len(close)
            if b.count(head, start + shift, tail) != 1:
                return None
            changed.add(lo)
            if layout is not None:
                layout.append((start + shift, tail))
            shift += tail - (start + shift) - (end - start)
            continue
        mid = (lo + hi) // 2
        runs += ((mid, hi), (lo, mid))  # the lower half first: the shift counts what came before
    if o_bounds[common] + shift > new.body_end:
        return None
    if layout is not None:
        layout.append((o_bounds[common] + shift, new.body_end))
    return changed


def _changed_by_index(old: _SharedStrings, new: _SharedStrings) -> set[int]:
    o_starts, n_starts = old.starts(), new.starts()
    # The starts with the body's end after them, as arrays: as lists, a million strings'
    # bounds would be a million int objects (38 MB).
    o_bounds, n_bounds = array("q", o_starts), array("q", n_starts)
    o_bounds.append(old.body_end)
    n_bounds.append(new.body_end)
    changed = set(range(len(n_starts), len(o_starts)))
    common = min(len(o_starts), len(n_starts))
    # Runs of strings compared as bytes, a differing run halved down to its strings (a stack,
    # not a recursive closure: that would be a reference cycle, holding the bounds until the
    # cyclic collector runs).
    block = 1024
    runs = [(lo, min(lo + block, common)) for lo in range(0, common, block)][::-1]
    while runs:
        lo, hi = runs.pop()
        if old.data[o_bounds[lo] : o_bounds[hi]] == new.data[n_bounds[lo] : n_bounds[hi]]:
            continue
        if hi - lo <= 8:
            changed.update(i for i in range(lo, hi) if old.element(i) != new.element(i))
            continue
        mid = (lo + hi) // 2
        runs += ((mid, hi), (lo, mid))  # the lower half first
    return changed


_Cut = tuple[bytearray, dict[tuple[int, int], re.Match[bytes]]]  # a body cut, and what was cut


def _cut_planned(
    rx: _SheetRx, planned: dict[tuple[int, int], _CellPlan], data: bytes, start: int, end: int
) -> _Cut | None:
    """The body without the cells at planned references, and those cells (None when a
    reference occurs twice, or a cell looked for in its row is malformed; a cell of a dense
    column that is not closed is not found, and so stays in the body).

    A column with many planned cells (a status on every row) is searched in one pass
    for its cells; the few cells of other columns (an erasure's) are looked for in their
    own rows only, so that a pass does not stop at every cell of a sheet. Whatever is not
    cut is compared byte for byte by the caller, so a cell outside its row shows there.
    """
    per_column: dict[int, int] = {}
    for _, col in planned:
        per_column[col] = per_column.get(col, 0) + 1
    dense = {col for col, n in per_column.items() if n >= _DENSE_COLUMN_CELLS}
    spans: list[tuple[int, tuple[int, int], re.Match[bytes]]] = []
    if dense:
        refs = {p.ref.encode(): key for key, p in planned.items() if key[1] in dense}
        letters = b"|".join(sorted(_COLS[col].encode() for col in dense))
        # The whole cell in one pattern, with the groups of rx.cell (attributes, content),
        # its attributes starting with its r.
        prefix = re.escape(rx.prefix)
        find = re.compile(
            rb"<"
            + prefix
            + rb'c( r="(?:'
            + letters
            + rb')\d+"[^>]*?)(?:/>|>(.*?)</'
            + prefix
            + rb"c>)",
            re.S,
        )
        get = refs.get
        for c in find.finditer(data, start, end):
            attrs = c[1]
            key = get(attrs[4 : attrs.index(b'"', 4)])
            if key is not None:
                spans.append((c.start(), key, c))
    sparse = sorted(key for key in planned if key[1] not in dense)
    if sparse and not _cut_sparse(rx, data, start, end, sparse, spans=spans):
        return None
    spans.sort(key=operator.itemgetter(0))
    found: dict[tuple[int, int], re.Match[bytes]] = {}
    # Built in place from views: a list of 10^5 pieces, then their join, would hold the
    # body twice over.
    rest = bytearray()
    view = memoryview(data)
    pos = start
    for at, key, c in spans:
        if key in found or at < pos:
            return None
        found[key] = c
        rest += view[pos:at]
        pos = c.end()
    rest += view[pos:end]
    return rest, found


def _cut_sparse(
    rx: _SheetRx,
    data: bytes,
    start: int,
    end: int,
    keys: list[tuple[int, int]],
    *,
    spans: list[tuple[int, tuple[int, int], re.Match[bytes]]],
) -> bool:
    """Add the cells at ``keys`` (sorted by row), each found inside its own row, to
    ``spans``; False when a row or cell is not where the patcher puts it."""
    row_r = b"<" + rx.prefix + b'row r="'
    pos = start
    row_num = -1
    row_start = row_end = start
    for rnum, col in keys:
        if rnum != row_num:
            row_start = data.find(row_r + str(rnum).encode() + b'"', pos, end)
            m = rx.row_start.match(data, row_start) if row_start >= 0 else None
            if m is None:
                return False
            if m[2]:  # an empty row: none of its cells can be there
                row_end = m.end()
            else:
                row_end = data.find(rx.row_close, m.end(), end)
                if row_end < 0:
                    return False
            row_num, pos = rnum, row_end
        needle = rx.cell_r_open + _ref(rnum, col).encode() + b'"'
        at = data.find(needle, row_start, row_end)
        if at < 0:
            continue  # not there (an emptied cell, or one the old sheet lacks)
        if data.find(needle, at + len(needle), row_end) >= 0:
            return False
        c = rx.cell.match(data, at, row_end)
        if c is None:
            return False
        spans.append((at, (rnum, col), c))
    return True


class _BulkSide(NamedTuple):
    """The original's side of the bulk proof of a sheet: the SHA-256 of its body with the
    rows' ``spans`` hints masked and the planned cells cut out (:func:`_bulk_cut`), and
    where in that rest each planned cell belongs (:func:`_places`; None when that cannot be
    told there)."""

    digest: bytes
    places: dict[tuple[int, int], int] | None


# A written cell's kind, as the bulk proof proves it once for all cells of that kind: its
# attributes after r, its content, and the value's type and value (True == 1, but a number is
# no proof of a boolean).
_Kind = tuple[bytes, bytes | None, type, CellValue]


class _Taken(NamedTuple):
    """A written cell of some kind, where it is in the (masked) part."""

    key: tuple[int, int]
    start: int
    end: int
    attrs: bytes
    content: bytes | None


def _cell_kind(attrs: bytes, content: bytes | None, value: CellValue) -> _Kind:
    """The kind of a written cell with ``attrs`` (`` r="REF"`` first) and ``content``."""
    return (attrs[attrs.index(b'"', 4) + 1 :], content, value.__class__, value)


def _cell_extent(data: bytes, at: int, limit: int, close_tag: bytes) -> tuple[int, int] | None:
    """Where the cell starting at ``at`` ends its start tag and itself, as ``rx.cell``
    matches it up to ``limit``: the start tag at the first ">"; the cell there ("/>", then
    it ends right after the tag) or at the first end tag ``close_tag`` after it. None when
    either is missing."""
    tag_end = data.find(b">", at, limit)
    if tag_end < 0:
        return None
    if data[tag_end - 1] == 0x2F:
        return tag_end, tag_end + 1
    close = data.find(close_tag, tag_end, limit)
    return None if close < 0 else (tag_end, close + len(close_tag))


def _masked(rx: _SheetRx, data: bytes, part: str) -> tuple[bytes, int, int]:
    """The part with its rows' ``spans`` hints masked (a written column may widen them),
    and where its body starts and ends."""
    spans = _row_spans_rx(rx)
    _sd, start, end = _sheet_body(data, rx, part, FidelityError)
    if spans.search(data, start, end) is not None:
        data = spans.sub(operator.itemgetter(1), data)
        _sd, start, end = _sheet_body(data, rx, part, FidelityError)
    return data, start, end


def _bulk_cut(
    rx: _SheetRx, planned: dict[tuple[int, int], _CellPlan], data: bytes, part: str
) -> tuple[bytes, bytearray, dict[tuple[int, int], re.Match[bytes]], int] | None:
    """The part with its rows' ``spans`` hints masked (:func:`_masked`); its body without
    the planned cells, and those cells (:func:`_cut_planned`, found in the masked part); and
    where its body starts. None when the cut cannot be made."""
    data, start, end = _masked(rx, data, part)
    cut = _cut_planned(rx, planned, data, start, end)
    if cut is None:
        return None
    return data, cut[0], cut[1], start


def _placed_cut(
    rx: _SheetRx,
    planned: dict[tuple[int, int], _CellPlan],
    data: bytes,
    part: str,
    places: dict[tuple[int, int], int],
) -> tuple[bytes, bytearray, dict[_Kind, _Taken], int] | None:
    """As :func:`_bulk_cut`, the planned cells taken from where the original's cut says
    they belong (``places``, from :func:`_places`) instead of searched for: in the masked
    part, each at its place in the rest plus what was cut before it, in the order of their
    places (and columns at the same place). An emptied cell may be there (as a cell with no
    value) or not. None when a cell with a value is not there, written with ``r`` first and
    whole, or a cell overlaps the one before (the search then tries).

    Instead of the cells, the first cell of each kind (:data:`_Kind`) comes back, with where
    it is. What is cut is only what is found there; the rest must still equal the
    original's, so a cell written anywhere else shows as a difference.
    """
    if len(places) != len(planned):
        return None
    data, start, end = _masked(rx, data, part)
    order = sorted((place, key[1], key) for key, place in places.items())
    kinds: dict[_Kind, _Taken] = {}
    rest = bytearray()
    view = memoryview(data)
    r_open, skip, close_tag = rx.cell_r_open, len(rx.cell_open), b"</" + rx.prefix + b"c>"
    starts = data.startswith
    pos = start
    cut = 0  # bytes cut out before the next cell
    for place, _col, key in order:
        at = start + place + cut
        if at < pos:
            return None
        cell = planned[key]
        if not starts(r_open + cell.ref.encode() + b'"', at):
            if cell.value is None:
                continue  # emptied, and not there
            return None
        extent = _cell_extent(data, at, end, close_tag)
        if extent is None:
            return None
        tag_end, stop = extent
        if stop == tag_end + 1:  # "/>": no content
            attrs, content = data[at + skip : tag_end - 1], None
        else:
            attrs, content = data[at + skip : tag_end], data[tag_end + 1 : stop - len(close_tag)]
        rest += view[pos:at]
        kind = _cell_kind(attrs, content, cell.value)
        if kind not in kinds:
            kinds[kind] = _Taken(key, at, stop, attrs, content)
        pos = stop
        cut += stop - at
    rest += view[pos:end]
    return data, rest, kinds, start


def _places(
    rx: _SheetRx,
    planned: dict[tuple[int, int], _CellPlan],
    rest: bytearray,
    found: dict[tuple[int, int], re.Match[bytes]],
    start: int,
) -> dict[tuple[int, int], int] | None:
    """Where in ``rest`` (a body cut by :func:`_bulk_cut`, which found the cells ``found``
    and started at ``start``) each planned cell belongs: a cell that was cut, where it was;
    a new one, in its row after the cells of lower columns and before those of higher. None
    when a new cell's row is not there as a patch finds it (or is empty), or its cells are
    not each of them written with ``r`` first and one after the other."""
    places = dict(_in_rest(found, start))
    row_r = b"<" + rx.prefix + b'row r="'
    cell_r, row_close = rx.cell_r_open, rx.row_close
    cell_close = b"</" + rx.prefix + b"c>"
    skip = len(cell_r)
    # Bytes, not the bytearray: what is sliced out of it (a reference a cell) is then
    # hashable, and looked up as it is.
    text = bytes(rest)
    find, rfind, col_of = text.find, text.rfind, _COL_NUM_B.get
    pos = 0
    row_num = tag_end = close = -1
    digits = b""
    # A row's start tag is found as rx.row_start matches it: it ends at the first ">" (an
    # empty row's with "/>"); a cell as rx.cell does (_cell_extent).
    for rnum, col in sorted(key for key in planned if key not in places):
        if rnum != row_num:
            digits = b"%d" % rnum
            at = find(row_r + digits + b'"', pos)
            gt = find(b">", at) if at >= 0 else -1
            if gt < 0 or text[gt - 1] == 0x2F:  # not there, or <row .../>: the patch changes it
                return None
            tag_end = gt + 1
            close = find(row_close, tag_end)
            if close < 0:
                return None
            row_num, pos = rnum, close
        # From the row's end back over the cells of higher columns: each must end where
        # the one after it (or the row) starts.
        place = close
        while True:
            lt = rfind(cell_r, tag_end, place)
            if lt < 0:
                if place != tag_end:
                    return None  # something before the row's first cell with r
                break
            extent = _cell_extent(text, lt, close, cell_close)
            if extent is None or extent[1] != place:
                return None
            ref = text[lt + skip : find(b'"', lt + skip, place)]
            letters = ref.rstrip(b"0123456789")
            if ref[len(letters) :] != digits:
                return None
            other = col_of(letters) or _col_num(letters)
            if other < col:
                break
            if other == col:
                return None
            place = lt
        places[rnum, col] = place
    return places


def _as_placed(
    found: dict[tuple[int, int], re.Match[bytes]], start: int, places: dict[tuple[int, int], int]
) -> bool:
    """Whether each cell ``found`` in a body (starting at ``start``) stands where
    :func:`_places` says it belongs, in the rest the same cut of the original left, and
    cells in the same place in column order."""
    get = places.get
    last_at, last_col = -1, 0
    for key, here in _in_rest(found, start):
        if get(key) != here or (here == last_at and key[1] <= last_col):
            return False
        last_at, last_col = here, key[1]
    return True


def _in_rest(
    found: dict[tuple[int, int], re.Match[bytes]], start: int
) -> Iterator[tuple[tuple[int, int], int]]:
    """Each cell ``found`` in a body starting at ``start`` (in their order there), and where
    it stands in the rest that cutting them all leaves."""
    cut = 0
    for key, m in found.items():
        at = m.start()
        yield key, at - start - cut
        cut += m.end() - at


def _cut_ahead(part: str, old: bytes, plan: _SheetPlan) -> _BulkSide | None:
    """The original's side of the bulk proof of a sheet (:class:`_BulkSide`): half of that
    proof's work, done before the patch exists; the cut itself (the size of the sheet) is
    let go at once."""
    rx = _sheet_rx(_prefix_of(old))
    got = _bulk_cut(rx, plan.cells, old, part)
    if got is None:
        return None
    _masked, rest, found, start = got
    places = _places(rx, plan.cells, rest, found, start)
    return _BulkSide(hashlib.sha256(rest).digest(), places)


class _SheetVerifier:
    """Checks one rewritten worksheet against its original and the planned edits.

    ``old_cut`` is :func:`_cut_ahead` of ``old`` and ``plan``, when it was made beforehand;
    ``reread`` reads ``old`` again. With both, the original sheet is let go before the bulk
    proof (the cut's digest is all it needs) and read again only if the rows must be walked
    after all: at 100,000 clients that is 45 MB less while the new sheet is cut.
    """

    def __init__(
        self,
        part: str,
        old: bytes,
        new: bytes,
        plan: _SheetPlan | None,
        ctx: _VerifyContext,
        *,
        old_cut: _BulkSide | None = None,
        reread: Callable[[], bytes] | None = None,
    ) -> None:
        self.part = part
        self.old_cut = old_cut
        self.reread = reread
        self.old = old
        self.new = new
        self.plan = plan
        self.ctx = ctx
        self.rx = _sheet_rx(_prefix_of(old))
        if _prefix_of(new) != self.rx.prefix:
            raise _fail(f"{part}: the worksheet's namespace prefix changed")
        self.d_pattern = (
            _sst_ref_pattern(self.rx, ctx.changed_strings) if ctx.changed_strings else None
        )
        self._decoded: dict[tuple[bytes | None, bytes], object] = {}
        self._parser: expat.XMLParserType | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._root_close = b""

    def run(self) -> None:
        rx, old, new, part = self.rx, self.old, self.new, self.part
        sd_o, bs_o, be_o = _sheet_body(old, rx, part, FidelityError)
        sd_n, bs_n, be_n = _sheet_body(new, rx, part, FidelityError)
        self._compare_outside(sd_o, be_o, sd_n, be_n)
        del sd_o  # a match holds its subject
        if self.plan is not None and len(self.plan.cells) >= _BULK_PROOF_CELLS:
            if self.old_cut is not None and self.reread is not None:
                del old
                self.old = b""
            if self._run_bulk():
                return
            if not self.old:
                assert self.reread is not None
                self.old = self.reread()  # the same bytes: the positions found still hold
            old = self.old
        by_row = self.plan.by_row() if self.plan else {}
        rows = sorted(by_row)
        old_loc = self._locate(old, bs_o, be_o, rows)
        new_loc = self._locate(new, bs_n, be_n, rows)
        po, pn = bs_o, bs_n
        for rnum in rows:
            (so, eo), (sn, en) = old_loc[rnum], new_loc[rnum]
            self._compare_segment(po, so, pn, sn)
            new_row = new[sn:en]
            self._compare_edited_row(rnum, old[so:eo], new_row, by_row[rnum])
            self._feed(new_row)
            po, pn = eo, en
        self._compare_segment(po, be_o, pn, be_n)
        self._feed(b"", final=True)

    def _run_bulk(self) -> bool:
        """Many edits (flag writes a status on every row), proven without a walk of the rows.

        The edited cells are cut out of both bodies and the rest compared as bytes (row
        ``spans`` hints aside); then each written cell must sit in its own row between its
        neighbours in column order (where the original's cut says it belongs, or else as
        found around it), be well-formed and decode to the value written. True when
        that proves the sheet; False when its shape needs the row walk, which also names
        what is wrong. Cells are found by a leading ``r`` attribute, as the patcher writes
        them; a shape this does not expect is never taken as proof.
        """
        plan, rx, old = self.plan, self.rx, self.old
        assert plan is not None
        planned = plan.cells
        old_side = self.old_cut
        self.old_cut = None
        if old_side is None:
            old_side = _cut_ahead(self.part, old, plan)
            if old_side is None:
                return False
        # The written cells where the original's cut says they belong; else searched for.
        taken = (
            None
            if old_side.places is None
            else _placed_cut(rx, planned, self.new, self.part, old_side.places)
        )
        found = None
        if taken is not None:
            new, new_rest, kinds, bs_n = taken
        else:
            got = _bulk_cut(rx, planned, self.new, self.part)
            if got is None:
                return False
            # The new part with its spans hints masked: the cells found are matches in it.
            new, new_rest, found, bs_n = got
            del got
        del taken
        # The rest of the two bodies must be the same bytes (spans hints aside).
        if hashlib.sha256(new_rest).digest() != old_side.digest:
            return False
        if self.d_pattern is not None and next(_sst_refs(new_rest, rx, self.d_pattern), None):
            return False  # an unedited cell refers to a string that changed: the walk names it
        del new_rest
        if found is not None:
            for key, p in planned.items():
                if p.value is not None and key not in found:
                    return False
            # Each cell where the original's cut says it belongs (so in its own row, between
            # its neighbours): checked at once; else one by one.
            placed = old_side.places is not None and _as_placed(found, bs_n, old_side.places)
            if not placed and not self._in_their_rows(new, bs_n, found):
                return False
            # The same attributes (r aside), content and value: proven once for all rows.
            kinds = {}
            for key, m in found.items():
                attrs, content = m.group(1, 2)
                kind = _cell_kind(attrs, content, planned[key].value)
                if kind not in kinds:
                    kinds[kind] = _Taken(key, m.start(), m.end(), attrs, content)
        inline = (
            b"<" + rx.prefix + b"is><" + rx.prefix + b"t>",
            b"</" + rx.prefix + b"t></" + rx.prefix + b"is>",
        )
        distinct: list[bytes] = []  # a cell of each kind proven
        for (tail, content, _type, value), ((rnum, col), at, stop, attrs, _) in kinds.items():
            # Plain text written inline (a status) is what it holds: nothing to decode.
            if not (
                value.__class__ is str
                and tail.endswith(b' t="inlineStr"')
                and content == inline[0] + value.encode() + inline[1]
                and _PLAIN_TEXT.fullmatch(value) is not None
            ):
                cell = _OldCell(at, stop, col, True, _attrs(attrs), content or b"")
                self._check_edited({col: cell}, {col: planned[rnum, col]}, rnum)
            distinct.append(new[at:stop])
        # Well-formed XML: each cell is <c r="REF" then what one of these has after its r,
        # so these prove them all.
        self._feed(b"".join(distinct))
        self._feed(b"", final=True)
        return True

    def _in_their_rows(
        self, new: bytes, bs_n: int, found: dict[tuple[int, int], re.Match[bytes]]
    ) -> bool:
        """Whether each cell ``found`` in the new part (its body starting at ``bs_n``) sits in
        its own row, ``<row r="rnum" ...>`` and not empty, after a cell of a lower column or
        the row's start tag, before one of a higher column or the row's end."""
        rx = self.rx
        row_r = b"<" + rx.prefix + b'row r="'
        row_open = row_r[:-4]
        cell_open, row_close, cell_match = rx.cell_r_open, rx.row_close, rx.cell.match
        for (rnum, col), m in found.items():
            start, end = m.span()
            digits = str(rnum).encode()
            # Its row: the nearest row start before it, <row r="rnum" ...> and not empty.
            at = new.rfind(row_open, bs_n, start)
            if at < 0 or not new.startswith(row_r + digits + b'"', at):
                return False
            tag_end = new.find(b">", at, start)
            if tag_end < 0 or new[tag_end - 1] == 0x2F:  # "/>": an empty row
                return False
            if tag_end + 1 != start:  # a cell before it in the row: it ends here, lower column
                lt = new.rfind(cell_open, tag_end, start)
                before = cell_match(new, lt) if lt >= 0 else None
                if before is None or before.end() != start:
                    return False
                ref = new[lt + len(cell_open) : new.find(b'"', lt + len(cell_open), start)]
                letters = ref.rstrip(b"0123456789")
                if ref[len(letters) :] != digits or _col_num(letters) >= col:
                    return False
            if not new.startswith(row_close, end):  # a cell after it, at a higher column
                if not new.startswith(cell_open, end):
                    return False
                ref = new[end + len(cell_open) : new.find(b'"', end + len(cell_open))]
                letters = ref.rstrip(b"0123456789")
                if ref[len(letters) :] != digits or _col_num(letters) <= col:
                    return False
        return True

    def _feed(self, fragment: bytes, *, final: bool = False) -> None:
        """Check that every rewritten row is well-formed XML (the rest equals the original).

        The rows go through one incremental expat parser inside a copy of the root start tag,
        so namespace prefixes resolve as in the part and no tree is ever built.
        """
        try:
            if self._parser is None:
                self._parser = expat.ParserCreate(namespace_separator=" ")
                m = _ROOT.search(self.new, 0, 4096)
                if m is None:
                    raise _fail(f"{self.part}: the worksheet has no root element")
                self._root_close = b"</" + m[1] + m[2] + b">"
                self._parser.Parse(self.new[m.start() : self.new.index(b">", m.end()) + 1], False)
                dim = self.rx.dimension.search(self.new, 0, 1 << 16)
                if dim is not None:
                    self._parser.Parse(dim[0], False)
            if fragment:
                # Batched: one expat call per row costs more than the parsing itself.
                self._pending.append(fragment)
                self._pending_size += len(fragment)
            if final or self._pending_size > 1 << 20:
                self._parser.Parse(b"".join(self._pending), False)
                self._pending.clear()
                self._pending_size = 0
            if final:
                self._parser.Parse(self._root_close, True)
        except expat.ExpatError as exc:
            raise _fail(f"{self.part}: a rewritten row is not well-formed XML ({exc})") from None

    def _compare_outside(
        self, sd_o: re.Match[bytes], be_o: int, sd_n: re.Match[bytes], be_n: int
    ) -> None:
        rx = self.rx

        def masked(head: bytes) -> bytes:
            return rx.dimension.sub(b"<dimension/>", head, count=1)

        if masked(self.old[: sd_o.start()]) != masked(self.new[: sd_n.start()]):
            raise _fail(f"{self.part}: the worksheet changed outside its cells")
        m = rx.dimension.search(self.new, 0, sd_n.start())
        if m is not None and _parse_range(m[1].decode("ascii", "replace")) is None:
            raise _fail(f"{self.part}: the dimension is not a cell range")
        tail_o = self.old[sd_o.end() if sd_o[1] else be_o + len(rx.sheet_data_close) :]
        tail_n = self.new[sd_n.end() if sd_n[1] else be_n + len(rx.sheet_data_close) :]
        if tail_o != tail_n:
            raise _fail(f"{self.part}: the worksheet changed after its cells")

    def _locate(
        self, data: bytes, start: int, end: int, rows: list[int]
    ) -> dict[int, tuple[int, int]]:
        """Span of each edited row, or an empty span where it would be inserted."""
        loc: dict[int, tuple[int, int]] = {}
        j = 0
        pos = start
        prev = 0
        row_key = b"<" + self.rx.prefix + b'row r="'
        rx = self.rx
        while j < len(rows):  # fast: rows that carry r first, found with bytes.find
            at = data.find(row_key + str(rows[j]).encode() + b'"', pos, end)
            m = rx.row_start.match(data, at) if at >= 0 else None
            if m is None:
                break
            row_end = m.end() if m[2] else data.find(rx.row_close, m.end(), end)
            if row_end < 0:
                raise _fail(f"{self.part}: row {rows[j]} is not closed")
            row_end += 0 if m[2] else len(rx.row_close)
            loc[rows[j]] = (at, row_end)
            pos = row_end
            prev = rows[j]
            j += 1
        if j < len(rows):
            walk = _walk_rows(
                data, self.rx, pos, end, part=self.part, error=FidelityError, prev=prev
            )
            for span in walk:
                while j < len(rows) and rows[j] < span.rnum:
                    loc[rows[j]] = (span.start, span.start)
                    j += 1
                if j < len(rows) and rows[j] == span.rnum:
                    loc[rows[j]] = (span.start, span.end)
                    j += 1
                if j == len(rows):
                    break
        for rnum in rows[j:]:
            loc[rnum] = (end, end)
        return loc

    def _compare_segment(self, so: int, eo: int, sn: int, en: int) -> None:
        """Rows without edits: byte-identical, or (after renumbering) the same values."""
        old_seg, new_seg = self.old[so:eo], self.new[sn:en]
        if old_seg == new_seg:
            if self.d_pattern is not None:
                for m in _sst_refs(self.new, self.rx, self.d_pattern, sn, en):
                    where = _position_name(self.new, self.rx, m.start())
                    raise _fail(f"{self.part}: {where} refers to a shared string that changed")
            return
        if self.d_pattern is None:
            pos = _first_difference(old_seg, new_seg)
            where = _position_name(self.new, self.rx, sn + pos)
            raise _fail(f"{self.part}: {where} differs from the original but was not edited")
        if self._compare_renumbered(so, eo, sn, en):
            return
        old_rows = list(_walk_rows(self.old, self.rx, so, eo, part=self.part, error=FidelityError))
        new_rows = list(_walk_rows(self.new, self.rx, sn, en, part=self.part, error=FidelityError))
        if [r.rnum for r in old_rows] != [r.rnum for r in new_rows]:
            raise _fail(
                f"{self.part}: rows near row {old_rows[0].rnum if old_rows else '?'} changed"
            )
        gaps_o = [self.old[a.end : b.start] for a, b in itertools.pairwise(old_rows)]
        gaps_n = [self.new[a.end : b.start] for a, b in itertools.pairwise(new_rows)]
        if gaps_o != gaps_n:
            raise _fail(f"{self.part}: the markup between rows changed")
        for o, n in zip(old_rows, new_rows, strict=True):
            old_row, new_row = self.old[o.start : o.end], self.new[n.start : n.end]
            if old_row != new_row or self._has_changed_ref(new_row):
                self._compare_row_semantic(o.rnum, old_row, new_row, {})
                self._feed(new_row)

    def _rows_with_changed_refs(self, data: bytes, start: int, end: int) -> list[tuple[int, int]]:
        rx = self.rx
        opening = b"<" + rx.prefix + b"row"
        spans: list[tuple[int, int]] = []
        for m in _sst_refs(data, rx, self.d_pattern, start, end):  # type: ignore[arg-type]
            if spans and m.start() < spans[-1][1]:
                continue
            row = data.rfind(opening, start, m.start())
            close = data.find(rx.row_close, m.end(), end)
            if row < 0 or close < 0:
                return []
            spans.append((row, close + len(rx.row_close)))
        return spans

    def _compare_renumbered(self, so: int, eo: int, sn: int, en: int) -> bool:
        """Renumbering touches only rows that refer to moved strings: decode just those.

        False when the shape is different; the caller then walks every row.
        """
        old_rows = self._rows_with_changed_refs(self.old, so, eo)
        new_rows = self._rows_with_changed_refs(self.new, sn, en)
        if not new_rows or len(old_rows) != len(new_rows):
            return False
        po, pn = so, sn
        for (os_, oe), (ns, ne) in zip(old_rows, new_rows, strict=True):
            if self.old[po:os_] != self.new[pn:ns]:
                return False
            old_row, new_row = self.old[os_:oe], self.new[ns:ne]
            rm = _ROW_R.search(old_row, 0, old_row.find(b">"))
            self._compare_row_semantic(int(rm[1]) if rm else 0, old_row, new_row, {})
            self._feed(new_row)
            po, pn = oe, ne
        return self.old[po:eo] == self.new[pn:en]

    def _has_changed_ref(self, data: bytes) -> bool:
        return (
            self.d_pattern is not None
            and next(_sst_refs(data, self.rx, self.d_pattern), None) is not None
        )

    def _split_row(self, row: bytes) -> tuple[bytes, bytes]:
        m = self.rx.row_start.match(row)
        if m is None:
            raise _fail(f"{self.part}: a row element is malformed")
        if m[2]:
            return m[1], b""
        return m[1], row[m.end() : len(row) - len(self.rx.row_close)]

    @staticmethod
    def _mask_spans(attrs: bytes) -> bytes:
        at = attrs.find(b' spans="')
        if at >= 0:
            return attrs[:at] + attrs[attrs.index(b'"', at + 8) + 1 :]
        return re.sub(rb"""\sspans\s*=\s*["'][^"']*["']""", b"", attrs)

    def _compare_edited_row(
        self, rnum: int, old_row: bytes, new_row: bytes, plans: list[_CellPlan]
    ) -> None:
        wanted = {p.col: p for p in plans}
        if not new_row:
            for p in plans:
                if p.value is not None:
                    raise _fail(f"{self.part}: cell {p.ref} was not written")
            if old_row:
                raise _fail(f"{self.part}: row {rnum} disappeared")
            return
        new_attrs, new_content = self._split_row(new_row)
        if not old_row:
            if _attrs(new_attrs) != {b"r": str(rnum).encode()}:
                raise _fail(f"{self.part}: new row {rnum} carries unexpected attributes")
            cells = _row_cells(self.rx, new_content)
            self._check_order(cells, rnum)
            for cell in cells:
                if cell.col not in wanted:
                    raise _fail(
                        f"{self.part}: cell {_ref(rnum, cell.col)} appeared but was not edited"
                    )
            self._check_edited({c.col: c for c in cells}, wanted, rnum)
            return
        old_attrs, old_content = self._split_row(old_row)
        if old_attrs != new_attrs and self._mask_spans(old_attrs) != self._mask_spans(new_attrs):
            raise _fail(f"{self.part}: row {rnum}'s attributes changed")
        if self._appended_row(rnum, old_content, new_content, wanted):
            return
        if not self._fast_row(rnum, old_content, new_content, wanted):
            self._compare_row_semantic(rnum, old_row, new_row, wanted)

    def _appended_row(
        self, rnum: int, old_content: bytes, new_content: bytes, wanted: dict[int, _CellPlan]
    ) -> bool:
        """The flag-every-row case: the old row intact, edited cells only after it.

        Returns False (decide elsewhere) unless that shape is certain.
        """
        rx = self.rx
        if not new_content.startswith(old_content) or (
            self.d_pattern is not None and self._has_changed_ref(old_content)
        ):
            return False
        last_col = _last_col(rx, old_content)
        if last_col is None or min(wanted) <= last_col:
            return False  # an edit of an existing cell: not an append
        cells: dict[int, _OldCell] = {}
        pos = len(old_content)
        for m in rx.cell.finditer(new_content, pos):
            if m.start() != pos:
                return False
            pos = m.end()
            rm = _CELL_R.search(m[1])
            col = _col_num(rm[1]) if rm else 0
            if rm is None or int(rm[2]) != rnum or col <= last_col or col not in wanted:
                raise _fail(f"{self.part}: row {rnum} gained a cell that was not edited")
            last_col = col
            cells[col] = _OldCell(m.start(), m.end(), col, True, _attrs(m[1]), m[2] or b"")
        if pos != len(new_content):
            return False
        for col, plan in wanted.items():
            if (
                col not in cells
                and plan.value is None
                and (
                    old_content.find(b' r="' + plan.ref.encode() + b'"') >= 0
                    or old_content.find(b" r='" + plan.ref.encode() + b"'") >= 0
                )
            ):
                return False  # an emptied cell: not an append
        self._check_edited(cells, wanted, rnum)
        return True

    def _fast_row(
        self, rnum: int, old_content: bytes, new_content: bytes, wanted: dict[int, _CellPlan]
    ) -> bool:
        """Strip the edited cells and compare the rest as bytes; False to decode instead."""
        rx = self.rx
        for content in (old_content, new_content):
            if b"extLst" in content or rx.cell_without_r.search(content):
                return False
        rest_o, _ = self._strip(old_content, wanted)
        rest_n, found = self._strip(new_content, wanted)
        if rest_o != rest_n or self._has_changed_ref(rest_n):
            return False
        for col, (start, end) in found.items():
            self._check_neighbours(new_content, start, end, col, rnum)
        cells = {}
        for col, (start, end) in found.items():
            m = rx.cell.match(new_content, start)
            assert m is not None
            cells[col] = _OldCell(start, end, col, True, _attrs(m[1]), m[2] or b"")
        self._check_edited(cells, wanted, rnum)
        return True

    def _strip(
        self, content: bytes, wanted: dict[int, _CellPlan]
    ) -> tuple[bytes, dict[int, tuple[int, int]]]:
        found: dict[int, tuple[int, int]] = {}
        for col, plan in wanted.items():
            ref = plan.ref.encode()
            for needle in (b' r="' + ref + b'"', b" r='" + ref + b"'"):
                pos = content.find(needle)
                if pos < 0:
                    continue
                lt, _ = _cell_tag_before(content, self.rx, pos)
                m = self.rx.cell.match(content, lt) if lt >= 0 else None
                if m is None or m.end() <= pos:
                    raise _fail(f"{self.part}: cell {plan.ref} is malformed")
                found[col] = (m.start(), m.end())
                break
        pieces = []
        pos = 0
        for start, end in sorted(found.values()):
            pieces.append(content[pos:start])
            pos = end
        pieces.append(content[pos:])
        return b"".join(pieces), found

    def _check_neighbours(self, content: bytes, start: int, end: int, col: int, rnum: int) -> None:
        rx = self.rx
        before, tag = _cell_tag_before(content, rx, start)
        if before >= 0:
            m = _CELL_R.search(tag)
            if m is None or _col_num(m[1]) >= col:
                raise _fail(f"{self.part}: cell {_ref(rnum, col)} is out of column order")
        after = rx.cell.search(content, end)
        if after is not None:
            m = _CELL_R.search(after[1])
            if m is None or _col_num(m[1]) <= col:
                raise _fail(f"{self.part}: cell {_ref(rnum, col)} is out of column order")

    def _check_order(self, cells: list[_OldCell], rnum: int) -> None:
        for a, b in itertools.pairwise(cells):
            if b.col <= a.col:
                raise _fail(f"{self.part}: cell {_ref(rnum, b.col)} is out of column order")

    def _compare_row_semantic(
        self, rnum: int, old_row: bytes, new_row: bytes, wanted: dict[int, _CellPlan]
    ) -> None:
        """Decode both rows: unedited cells must read the same, edited ones as planned."""
        old_attrs, old_content = self._split_row(old_row)
        new_attrs, new_content = self._split_row(new_row)
        if self._mask_spans(old_attrs) != self._mask_spans(new_attrs) or (
            not wanted and old_attrs != new_attrs
        ):
            raise _fail(f"{self.part}: row {rnum}'s attributes changed")
        old_cells = {c.col: c for c in _row_cells(self.rx, old_content)}
        new_list = _row_cells(self.rx, new_content)
        self._check_order(new_list, rnum)
        new_cells = {c.col: c for c in new_list}
        for col in old_cells.keys() | new_cells.keys():
            if col in wanted:
                continue
            o, n = old_cells.get(col), new_cells.get(col)
            if o is None or n is None or not self._same_cell(o, n):
                where = _ref(rnum, col)
                raise _fail(
                    f"{self.part}: cell {where} differs from the original but was not edited"
                )
        self._check_edited(new_cells, wanted, rnum)

    def _same_cell(self, o: _OldCell, n: _OldCell) -> bool:
        rx = self.rx
        o_attrs = {k: v for k, v in o.attrs.items() if k != b"r"}
        n_attrs = {k: v for k, v in n.attrs.items() if k != b"r"}
        if o_attrs != n_attrs:
            return False
        if o.attrs.get(b"t") != b"s":
            return o.inner == n.inner
        if rx.v.sub(b"", o.inner) != rx.v.sub(b"", n.inner):
            return False
        try:
            return _decode_value(o.attrs, o.inner, rx, self.ctx.old_sst) == _decode_value(
                n.attrs, n.inner, rx, self.ctx.new_sst
            )
        except PatchError:  # a reference to a string that does not exist: not the same
            return False

    def _check_edited(
        self, cells: dict[int, _OldCell], wanted: dict[int, _CellPlan], rnum: int
    ) -> None:
        rx = self.rx
        for col, plan in wanted.items():
            cell = cells.get(col)
            if cell is None:
                if plan.value is not None:
                    raise _fail(f"{self.part}: cell {plan.ref} was not written")
                continue
            key = (cell.attrs.get(b"t"), cell.inner)
            got = self._decoded.get(key, _MISSING)
            if got is _MISSING:
                if rx.f.search(cell.inner):
                    raise _fail(f"{self.part}: cell {plan.ref} still holds a formula")
                try:
                    got = _decode_value(cell.attrs, cell.inner, rx, self.ctx.new_sst)
                except PatchError:
                    raise _fail(
                        f"{self.part}: cell {plan.ref} refers to a missing shared string"
                    ) from None
                if len(self._decoded) < 4096:  # the same status on every row decodes once
                    self._decoded[key] = got
            serial = None
            if isinstance(plan.value, dt.date):
                serial = float(_serial(plan.value, self.ctx.date1904, plan.ref))
                style = cell.attrs.get(b"s", b"0")
                styles = self.ctx.new_styles
                if styles is None or not style.isdigit() or not styles.is_date(int(style)):
                    raise _fail(f"{self.part}: cell {plan.ref} holds a date without a date format")
            if not _same_cell_value(got, plan.value, serial):
                raise _fail(f"{self.part}: cell {plan.ref} does not hold the value written")


def _calc_entries(data: bytes) -> list[tuple[int, str]]:
    p = re.escape(_prefix_of(data))
    entry = re.compile(rb"<" + p + rb"c(?=[\s/>])([^>]*?)(?:/>|>.*?</" + p + rb"c>)", re.S)
    out = []
    current = 0
    for m in entry.finditer(data):
        a = _attrs(m[1])
        if a.get(b"i", b"").isdigit():
            current = int(a[b"i"])
        out.append((current, a.get(b"r", b"").decode("ascii", "replace").upper()))
    return out


def _verify_calc_chain(old: bytes, new: bytes, edited: set[tuple[int, str]], part: str) -> None:
    old_entries, new_entries = _calc_entries(old), _calc_entries(new)
    it = iter(old_entries)
    for entry in new_entries:
        for candidate in it:
            if candidate == entry:
                break
            if candidate not in edited:
                raise _fail(f"{part}: lost the entry of an unedited cell {candidate[1]}")
        else:
            raise _fail(f"{part}: gained or reordered entries")
    for candidate in it:
        if candidate not in edited:
            raise _fail(f"{part}: lost the entry of an unedited cell {candidate[1]}")


def _verify_styles(old: bytes, new: bytes, part: str) -> _Styles:
    o, n = _Styles(part, old), _Styles(part, new)
    if (
        old[: o.xfs_open.start()] != new[: n.xfs_open.start()]
        or old[o.xfs_end :] != new[n.xfs_end :]
    ):
        raise _fail(f"{part}: styles changed outside the cell formats")
    if not new[n.xfs_open.end() : n.xfs_end].startswith(old[o.xfs_open.end() : o.xfs_end]):
        raise _fail(f"{part}: existing cell formats changed")
    if any(not n.is_date(i) for i in range(len(o.xfs), len(n.xfs))):
        raise _fail(f"{part}: an added cell format is not a date format")
    count = _attrs(n.xfs_open[0]).get(b"count")
    if count is not None and count != str(len(n.xfs)).encode():
        raise _fail(f"{part}: the cellXfs count is wrong")
    return n


def verify_patch(
    original: bytes,
    result: PatchResult | Callable[[], PatchResult],
    edits: Sequence[CellEdit],
) -> None:
    """Prove ``result`` differs from ``original`` only by ``edits``; raise FidelityError if not.

    Untouched members must be byte-identical (decompressed) with the same names, order and
    timestamps; edited worksheets may differ only in the edited cells (plus dimension and row
    spans) and those cells must decode to the values written; worksheets whose shared-string
    references were renumbered must decode to the same values; shared strings, styles,
    calcChain, tables, rels and content types may change only in the ways a patch needs.

    ``result`` may be a function that gives it: the original's side (the edits planned, its
    string table and first edited sheet read) is then prepared before it is called, which is
    while the patch is still being made when the check runs in a child (forking.start_fed).
    """
    old = _Package(original, PatchError)
    wb = _load_workbook(old)
    plans = _plan(wb, edits, PatchError)
    old_sst = (
        _SharedStrings(wb.sst_part, old.read(wb.sst_part), FidelityError) if wb.sst_part else None
    )
    # The first edited sheet too (the Clients sheet); the others are read one at a time as
    # they are checked: held all at once, a register of 100,000 clients would cost 100 MiB.
    sheet_order = _cell_sheets(wb)
    first = next((part for part in sheet_order if part in plans), None)
    ahead = (first, old.read(first)) if first is not None else None
    # The bulk proof of that sheet (flag's status on every row) starts on its original too.
    cut = None
    if ahead is not None and len(plans[ahead[0]].cells) >= _BULK_PROOF_CELLS:
        cut = _cut_ahead(ahead[0], ahead[1], plans[ahead[0]])
    # Emptied cells orphan strings, which the patch blanks: the tables are then compared
    # string by string (_changed_strings), for which the original's is indexed now.
    if (
        callable(result)
        and old_sst is not None
        and any(c.value is None for p in plans.values() for c in p.cells.values())
    ):
        old_sst.starts()
        old_sst.compact()
    if callable(result):
        result = result()
    new = _Package(result.data, FidelityError)
    changed = set(result.changed_parts)

    new_set, old_set = set(new.names), set(old.names)
    if new_set - old_set:
        raise _fail(f"{sorted(new_set - old_set)[0]}: the package gained a member")
    removed = old_set - new_set
    for name in removed:
        if name != wb.calc_chain_part or name not in changed:
            raise _fail(f"{name}: the package lost a member")
    if [n for n in old.names if n not in removed] != new.names:
        raise _fail("the order of the package members changed")
    old_infos = {i.filename: i for i in old.infos}
    for info in new.infos:
        if info.date_time != old_infos[info.filename].date_time:
            raise _fail(f"{info.filename}: the member's timestamp changed")

    edited_sheets = set(plans)
    cell_sheets = set(sheet_order)
    tables = {t for part in edited_sheets for t in _table_parts(old, part)}
    rels_part = _rels_part_of(wb.part)
    bookkeeping = {
        wb.sst_part,
        wb.styles_part,
        wb.calc_chain_part,
        rels_part,
        "[Content_Types].xml",
    }
    allowed = edited_sheets | cell_sheets | tables | {b for b in bookkeeping if b}
    for name in changed:
        if name not in allowed:
            raise _fail(f"{name}: changed although no edit concerns it")
    for name in new.names:
        if name in changed:
            continue
        stored, now = old.stored(name), new.stored(name)
        if stored is not None and now is not None and _same_stored(stored, now):
            continue  # the same compressed bytes: the same content
        if old.read(name) != new.read(name):
            raise _fail(f"{name}: differs from the original but is not listed as changed")
    # The string table is proven from its changes below, when the original's shape allows.
    sst_later = old_sst is not None and wb.sst_part in changed and old_sst.compact()
    for name in changed - removed - cell_sheets:  # sheets are checked row by row below
        if name == wb.sst_part and sst_later:
            continue
        if _is_xml_part(name, {}) or name == "[Content_Types].xml":
            _check_well_formed(name, new.read(name))

    # Bookkeeping parts.
    calc_removed = wb.calc_chain_part in removed if wb.calc_chain_part else False
    for name in (rels_part, "[Content_Types].xml"):
        if name in changed and name not in removed:
            if not calc_removed or wb.calc_chain_part is None:
                raise _fail(f"{name}: changed although no part was dropped")
            expected = (
                _remove_relationship(old.read(name), "calcChain")
                if name == rels_part
                else _remove_override(old.read(name), wb.calc_chain_part)
            )
            if new.read(name) != expected:
                raise _fail(f"{name}: changed beyond dropping calcChain")
    if wb.calc_chain_part and wb.calc_chain_part in changed and not calc_removed:
        edited_cells = {
            (plans[p].info.sheet_id, c.ref) for p in plans for c in plans[p].cells.values()
        }
        _verify_calc_chain(
            old.read(wb.calc_chain_part),
            new.read(wb.calc_chain_part),
            edited_cells,
            wb.calc_chain_part,
        )
        del edited_cells
    for part in edited_sheets:
        for table in _table_parts(old, part):
            if table in changed:
                expected = _grow_table(old.read(table), _written_by_row(plans[part]))
                if expected is None or new.read(table) != expected:
                    raise _fail(f"{table}: the table changed beyond growing by edited rows")

    new_styles = None
    if wb.styles_part:
        if wb.styles_part in changed:
            new_styles = _verify_styles(
                old.read(wb.styles_part), new.read(wb.styles_part), wb.styles_part
            )
        elif any(isinstance(c.value, dt.date) for p in plans.values() for c in p.cells.values()):
            new_styles = _Styles(wb.styles_part, new.read(wb.styles_part))

    new_sst = None
    changed_strings: set[int] = set()
    if wb.sst_part and old_sst is not None:
        new_sst = (
            _SharedStrings(wb.sst_part, new.read(wb.sst_part), FidelityError)
            if wb.sst_part in changed
            else old_sst
        )
        if wb.sst_part in changed:
            layout: list[tuple[int, int]] = []
            changed_strings = _changed_strings(old_sst, new_sst, layout)
            if sst_later and not _strings_well_formed(old_sst, new_sst, layout):
                _check_well_formed(wb.sst_part, new_sst.data)
        unique = _attrs(new_sst.root[0]).get(b"uniqueCount")
        if wb.sst_part in changed and unique is not None and unique != str(new_sst.count).encode():
            raise _fail(f"{wb.sst_part}: uniqueCount does not match the strings")
    ctx = _VerifyContext(old_sst, new_sst, changed_strings, new_styles, wb.date1904)

    for part in sheet_order:  # in tab order, so that a failure names the same sheet each time
        plan = plans.get(part)
        before = None
        old_cut = None
        if ahead is not None and part == ahead[0]:
            before, ahead = ahead[1], None  # freed once its sheet is checked
            old_cut, cut = cut, None
        if part in changed:
            old_part = before or old.read(part)
            verifier = _SheetVerifier(
                part,
                old_part,
                new.read(part),
                plan,
                ctx,
                old_cut=old_cut,
                reread=functools.partial(old.read, part),
            )
            del old_cut, old_part, before  # the verifier's own, to free as it goes
            verifier.run()
            del verifier
        elif plan is not None:  # edits that wrote what was there: still check the values
            same = before or old.read(part)
            _SheetVerifier(part, same, same, plan, ctx).run()
        elif changed_strings:
            data = new.read(part)
            rx = _sheet_rx(_prefix_of(data))
            for m in _sst_refs(data, rx, _sst_ref_pattern(rx, changed_strings)):
                where = _position_name(data, rx, m.start())
                raise _fail(f"{part}: {where} refers to a shared string that changed")
