"""Applying retention to the workbook: privacy-status flags, erasures, their log and proof.

Every write goes through :func:`sheetreg.workbook.write_cells`. An erasure is one write: the
client's cells, the pseudonymous references, the Privacy status and the Erasure log row.

The proof. Before anything is written, the planned edits are applied to the package in memory
(:func:`sheetreg.xlsxpatch.patch_workbook`) and every XML part of the result is searched
(:func:`sheetreg.xlsxpatch.find_text`) for each erased value in its normalised forms: a phone
number in every way it is commonly written, plus a digits-only scan; the full name in both
orders; the e-mail; the street address; free text. A value that remains is a leftover: the
erasure is refused before writing, with a message that names the part (a cell comment with its
cell, a document property by name), never the value. sheetreg does not edit comments or
document properties (the lossless writer edits cells only), so the therapist removes those and
runs the erasure again. A value that other clients' rows legitimately hold as well (a shared
street address, a common surname, the city) cannot be told apart by a text search: it is
counted as shared and not searched for.

The log row records the scan; "SHA-256 after" is the hash of the scanned package, i.e. the
workbook after the erasure before its own log row's last two cells (a file cannot contain its
own hash). The hash of the file finally written goes to the journal
``<workbook>.erasure-log.jsonl`` beside the workbook, which mirrors the log (no personal data)
so that ``erase --reapply`` still knows every erasure after an old copy is restored.

Backups: every copy in ``backups/`` gets the same erasure (through write_cells, its own backup
discarded), or is removed when that cannot be proven; the copy that this very write makes holds
nothing but the erased data and is removed. The log row says what happened to them.

A password-protected workbook is decrypted in memory (:func:`sheetreg.workbook.load_package`):
the edits are planned and the proof is searched on the plain package, and the workbook and its
backup copies are written back encrypted with the workbook's password.

Keys: pseudonymous references and suppression entries are keyed hashes (HMAC-SHA-256). The key
is in ``.sheetreg-erasure.key`` beside the workbook (mode 0600), or in the OS keyring when
``SHEETREG_ERASURE_KEY_STORE=keyring`` and the ``keyring`` package is installed.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import functools
import getpass
import hashlib
import hmac
import io
import itertools
import json
import os
import posixpath
import re
import secrets
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from sheetreg import forking, values
from sheetreg.errors import SheetregError, UnusableWorkbook, WriteRefused
from sheetreg.register import column_index, column_letter
from sheetreg.retention import (
    PSEUDONYM,
    SCANNED_CLIENT_FIELDS,
    SUPPRESSION_TOKEN,
    CellChange,
    ClientStatus,
    ErasurePlan,
    ErasureRecord,
    Hold,
    Refusal,
    client_statuses,
    due_erasures,
    field_label,
    fields_text,
    flag_changes,
    fmt_date,
    is_pseudonym,
    mentions_pattern,
    plan_erasure,
    plan_retention_ended,
    policy_from_settings,
    status_text,
)
from sheetreg.schema import (
    CLIENTS,
    DISCLOSURE_BASES,
    ERASURE_LOG,
    match_column,
    sheet_by_key,
)
from sheetreg.workbook import discards_warm

if TYPE_CHECKING:
    from sheetreg.register import Register, Table
    from sheetreg.workbook import PatchAside, WarmPatch, WriteResult
    from sheetreg.xlsxpatch import CellEdit, PatchResult

KEY_FILE_NAME = ".sheetreg-erasure.key"
KEY_STORE_ENV = "SHEETREG_ERASURE_KEY_STORE"
KEYRING_SERVICE = "sheetreg"
JOURNAL_SUFFIX = ".erasure-log.jsonl"
MIN_NEEDLE = 3  # shorter values match everywhere; they identify nobody on their own
STRONG_FREE_TEXT = 8  # free text at least this long is searched for even if common words

_PHONE_SEPARATORS = " -./()\u00a0"
_PHONE_JUNK = str.maketrans("", "", _PHONE_SEPARATORS)
_FI_NATIONAL = re.compile(r"(?:\+358|00358|358|0)([1-9]\d{4,11})")
_ASCII_SEPARATORS = _PHONE_SEPARATORS.replace("\u00a0", "").encode("ascii")


def _without_separators(text: str) -> bytes:
    """``text`` (UTF-8) without phone separators: where a number's digits stand in a row.

    For megabytes of text: bytes.translate deletes at C speed, where str.translate looks
    every character up in a dict. The separators are ASCII and the no-break space, so no
    other character's encoding is cut. A long text goes a piece at a time (pieces of the
    text, so no character's encoding is split): at once, its encoding and the two steps
    after it would stand side by side, 20 MB for a 100,000-client register's text.
    """
    nbsp = "\u00a0".encode()
    pieces = [
        text[i : i + _DIGITS_PIECE]
        .encode("utf-8", "surrogatepass")
        .translate(None, _ASCII_SEPARATORS)
        .replace(nbsp, b"")
        for i in range(0, len(text), _DIGITS_PIECE)
    ]
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


_DIGITS_PIECE = 1 << 20


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureKey:
    """The secret behind pseudonymous references and suppression entries."""

    secret: bytes
    source: str  # "file" or "keyring"

    def _mac(self, kind: str, text: str) -> str:
        message = kind.encode() + b"\0" + text.encode("utf-8")
        return hmac.digest(self.secret, message, "sha256").hex()[:16]  # one-shot, C speed

    def reference(self, client_id: str) -> str:
        """The pseudonymous reference that replaces a client ID: ``P-`` and 16 hex digits."""
        return "P-" + self._mac("client", client_id.strip())

    def suppression_tokens(self, phone: str | None, email: str | None) -> list[str]:
        """Keyed hashes of a phone number (E.164) and an e-mail address, never the values."""
        tokens = []
        phone_form, email_form = _contact_forms(phone, email)
        if phone_form is not None:
            tokens.append("S-p:" + self._mac("phone", phone_form))
        if email_form is not None:
            tokens.append("S-e:" + self._mac("email", email_form))
        return tokens


def _contact_forms(phone: str | None, email: str | None) -> tuple[str | None, str | None]:
    """The forms in which a phone number and an e-mail address are compared (and hashed)."""
    phone_form = values.phone_digits(phone.strip()) if phone and phone.strip() else None
    email_form = email.strip().casefold() if email and email.strip() else None
    return phone_form, email_form


def key_file(workbook: Path) -> Path:
    """Where the local key file of a workbook lives: beside it."""
    return Path(workbook).parent / KEY_FILE_NAME


def _keyring() -> Any:
    if os.environ.get(KEY_STORE_ENV, "file") != "keyring":
        return None
    try:
        import keyring  # optional dependency
    except ImportError:
        return None
    return keyring


def load_key(workbook: Path, *, create: bool = False) -> ErasureKey | None:
    """The workbook's erasure key: the key file beside it, else the keyring; None if absent.

    With ``create`` a missing key is made: in the keyring when configured, else in the key file
    (readable by the owner only).
    """
    path = key_file(workbook)
    if path.exists():
        try:
            return ErasureKey(bytes.fromhex(path.read_text(encoding="ascii").strip()), "file")
        except (ValueError, OSError):
            raise UnusableWorkbook(
                f"{path}: the erasure key file is damaged; restore it from a backup. / "
                "Poistoavaintiedosto on vioittunut."
            ) from None
    ring = _keyring()
    account = f"erasure-key:{Path(workbook).resolve()}"
    if ring is not None:
        stored = ring.get_password(KEYRING_SERVICE, account)
        if stored:
            return ErasureKey(bytes.fromhex(stored), "keyring")
    if not create:
        return None
    secret = secrets.token_bytes(32)
    if ring is not None:
        ring.set_password(KEYRING_SERVICE, account, secret.hex())
        return ErasureKey(secret, "keyring")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret.hex() + "\n")
    return ErasureKey(secret, "file")


# --- what to search for -----------------------------------------------------------------------


def phone_forms(text: str) -> list[str]:
    """The ways a phone number is commonly written: 040 123 4567, 0401234567, +358401234567…"""
    raw = " ".join(text.split())
    forms = {raw, raw.translate(_PHONE_JUNK)}
    m = _FI_NATIONAL.fullmatch(raw.translate(_PHONE_JUNK))
    if m is None:
        return sorted(f for f in forms if len(f) >= MIN_NEEDLE)
    nsn = m[1]
    area_len = _area_length(nsn)
    area, rest = nsn[:area_len], nsn[area_len:]
    # The usual ways; any other grouping is caught by the digits-only scan of the package.
    forms |= {f"0{nsn}", f"+358{nsn}", f"00358{nsn}"}
    for trunk in (f"0{area}", f"+358 {area}", f"+358 (0){area}"):
        forms |= {f"{trunk} {rest}", f"{trunk}-{rest}"}
        if len(rest) >= 6:
            forms |= {f"{trunk} {rest[:3]} {rest[3:]}", f"{trunk}-{rest[:3]} {rest[3:]}"}
    return sorted(forms)


def _area_length(nsn: str) -> int:
    """Digits of the Finnish area or operator code: 040/050 mobiles 2, landlines 02–09 1."""
    if nsn[0] == "4" or nsn[:2] == "50":
        return 2
    return 1 if nsn[0] in "235689" else 2


def national_digits(text: str) -> str | None:
    """The national significant number of a Finnish phone number, else None."""
    m = _FI_NATIONAL.fullmatch(text.translate(_PHONE_JUNK))
    return m[1] if m else None


@dataclass(frozen=True)
class Needle:
    """One form of one erased value to search for."""

    text: str
    field: str  # "clients.phone"
    client_id: str
    strong: bool  # identifies the person on its own (phone, e-mail, full name, address…)
    value: int = 0  # which erased value this form belongs to (per client)


@dataclass(frozen=True)
class Leftover:
    """Where an erased value still is: a part of the package or a cell; never the value."""

    client_id: str
    field: str
    part: str
    kind: str
    where: str = ""

    def describe(self, lang: str) -> str:
        """E.g. "Puhelin: xl/comments1.xml (comment on Asiakkaat!B5)"."""
        label = _field_label(self.field, lang)
        place = self.part + (f" ({self.where})" if self.where else "")
        return f"{label}: {place}"

    def to_dict(self) -> dict[str, str]:
        """The JSON form."""
        return {
            "client_id": self.client_id,
            "field": self.field,
            "part": self.part,
            "kind": self.kind,
            "where": self.where,
        }


def _field_label(key: str, lang: str) -> str:
    if key == "clients.name":
        return field_label("clients.first_name", lang).split(": ")[0] + (
            ": koko nimi" if lang == "fi" else ": full name"
        )
    return field_label(key, lang)


def _cell_position(table: Table, cell: str) -> tuple[int, int]:
    """(data-row index, column index into the rows) of an Excel cell ref in ``table``."""
    m = re.fullmatch(r"([A-Z]+)(\d+)", cell)
    assert m is not None
    return int(m[2]) - table.header_row - 1, column_index(m[1]) - table.first_col


def _cell_raw(register: Register, change: CellChange) -> Any:
    table = _table_named(register, change.sheet)
    if table is None:
        return ""
    i, idx = _cell_position(table, change.cell)
    row = table.rows[i] if 0 <= i < len(table.rows) else []
    return row[idx] if 0 <= idx < len(row) else ""


def _table_named(register: Register, name: str) -> Table | None:
    for table in register.tables.values():
        if table.name == name:
            return table
    return None


def _needles(register: Register, plan: ErasurePlan) -> tuple[list[Needle], list[tuple[str, int]]]:
    """The forms to search for after erasing ``plan``, and the phone numbers' national digits
    (with the index of the value they belong to)."""
    out: list[Needle] = []
    nsns: list[tuple[str, int]] = []
    names: dict[str, str] = {}
    counter = 0
    for change in plan.changes:
        if change.action != "empty":
            continue
        sheet_key, _, column = change.field.partition(".")
        scanned = column == "?" or (sheet_key == "clients" and column in SCANNED_CLIENT_FIELDS)
        if not scanned:
            continue
        text = values.as_text(_cell_raw(register, change))
        if not text or len(text) < MIN_NEEDLE:
            continue
        if text.isdigit() and column != "phone" and len(text) < STRONG_FREE_TEXT:
            continue  # a postal code reads like a date serial or an amount in <v>: not searched
        counter += 1
        if column in ("first_name", "last_name"):
            names[column] = text
        if column == "phone":
            for form in phone_forms(text):
                out.append(Needle(form, change.field, plan.client_id, True, counter))
            nsn = national_digits(text)
            if nsn:
                nsns.append((nsn, counter))
            continue
        strong = column in ("email", "street", "hold_reason") or len(text) >= STRONG_FREE_TEXT
        if column in ("first_name", "last_name", "postal_code", "city"):
            strong = False
        out.append(Needle(text, change.field, plan.client_id, strong, counter))
    if len(names) == 2:
        counter += 1
        first, last = names["first_name"], names["last_name"]
        for form in (f"{first} {last}", f"{last} {first}", f"{last}, {first}", f"{last},{first}"):
            out.append(Needle(form, "clients.name", plan.client_id, True, counter))
    return out, nsns


def _line_of(text: str) -> str:
    """``text`` as :meth:`_Retained.exact` compares it: its spaces evened, casefolded."""
    return " ".join(text.split()).casefold()


class _Retained:
    """Text of every cell that stays after the planned edits, for fast containment checks."""

    def __init__(self, register: Register, changed: set[tuple[str, str]]) -> None:
        self.register = register
        self.changed = changed
        parts: list[str] = []
        numbers: set[Any] = set()
        for table in register.tables.values():
            parts.extend(h for h in table.header if h.__class__ is str)
            blanks: dict[int, list[int]] = {}
            for sheet, cell in changed:
                if sheet == table.name:
                    i, idx = _cell_position(table, cell)
                    blanks.setdefault(idx, []).append(i)
            for idx in range(table.width):
                # A column the rules did not ask for is made for this look only.
                column = table.column_at(idx, keep=False)
                # Distinct values are enough for "is it still somewhere": hashing is C-speed.
                distinct = set(table.distinct_if_known(idx) or column)
                rows = [i for i in blanks.get(idx, ()) if 0 <= i < len(column)]
                if rows:
                    # A blanked value stays if some other cell of the column still holds it.
                    gone = Counter(column[i] for i in rows)
                    left = Counter(filter(gone.__contains__, column))
                    for value, count in gone.items():
                        if left[value] <= count:
                            distinct.discard(value)
                if set(map(type, distinct)) <= {str}:  # the usual column: all at C speed
                    parts.extend(map(str.strip, filter(None, distinct)))
                    continue
                parts.extend(v.strip() for v in distinct if v.__class__ is str and v)
                numbers.update(v for v in distinct if v.__class__ in (int, float))
        for _start, grid in register.other_sheets.values():
            for row in grid:
                parts.extend(v.strip() for v in row if v.__class__ is str and v)
        # One line a value (a value on several lines gives several), a newline either end;
        # folded a group of lines at a time (the unfolded text is never made whole).
        lines = ["", *parts, ""]
        del parts
        self.blob = "\n".join(
            [values.fold("\n".join(lines[i : i + 4096])) for i in range(0, len(lines), 4096)]
        )
        self.numbers = numbers
        self.digits: bytes | None = None  # the blob without phone separators, made when needed
        self._inside: dict[str, bool] = {}  # casefolded text -> found by prime()
        self._lines: dict[str, bool] = {}  # normalised text -> a whole line, found by prime()

    def prime(self, texts: Iterable[str]) -> None:
        """Answer :meth:`contains` and :meth:`exact` for all ``texts`` in one pass over the
        blob.

        The blob of a 100,000-client register is tens of megabytes: one search per value
        would read it hundreds of times.
        """
        texts = [t for t in texts if t]
        wanted = {t.casefold() for t in texts} - self._inside.keys()
        lines = {_line_of(t) for t in texts} - self._lines.keys() - {""}
        if not wanted and not lines:
            return
        import ahocorasick

        # A word -> what finding it answers: a text, or a whole line (its newlines either
        # side are part of the word); one word may answer both.
        words: dict[str, list[tuple[bool, str]]] = {}
        for text in wanted:
            words.setdefault(text, []).append((False, text))
        for line in lines:
            words.setdefault(f"\n{line}\n", []).append((True, line))
        automaton = ahocorasick.Automaton()
        for word, keys in words.items():
            automaton.add_word(word, keys)
        automaton.make_automaton()
        longest = max(map(len, words))
        found = {key for keys in _found_in(automaton, self.blob, longest) for key in keys}
        self._inside.update((text, (False, text) in found) for text in wanted)
        self._lines.update((line, (True, line) in found) for line in lines)

    def exact(self, text: str) -> bool:
        """True when some remaining cell holds exactly this value (case-insensitive; a
        line of a cell of several lines counts, as does the value with its spaces evened)."""
        line = _line_of(text)
        if not line:
            return False
        known = self._lines.get(line)
        return known if known is not None else f"\n{line}\n" in self.blob

    def contains(self, text: str) -> bool:
        """True when some remaining cell's text contains this value."""
        folded = text.casefold()
        known = self._inside.get(folded)
        return known if known is not None else folded in self.blob

    def mentions_id(self, client_id: str) -> bool:
        """True when some remaining cell names the client ID as a whole token."""
        folded = client_id.casefold()
        return folded in self.blob and mentions_pattern(folded).search(self.blob) is not None

    def has_phone(self, nsn: str) -> bool:
        """True when some remaining cell holds the number, however it is written."""
        if int(nsn) in self.numbers:
            return True
        if self.digits is None:
            self.digits = _without_separators(self.blob)
        return nsn.encode() in self.digits and phone_pattern(nsn).search(self.blob) is not None

    def locate(self, test: Any, limit: int = 3) -> list[str]:
        """The first remaining cells (``Sheet!A1``) whose text passes ``test``."""
        return [ref for ref, _field in self.locate_fields(test, limit)]

    def locate_fields(self, test: Any, limit: int = 3) -> list[tuple[str, str]]:
        """(``Sheet!A1``, field key) of the first remaining cells whose text passes ``test``."""
        found: list[tuple[str, str]] = []
        for table in self.register.tables.values():
            keys = {idx: key for key, idx in table.columns.items()}
            for i, row in enumerate(table.rows):
                for idx, raw in enumerate(row):
                    ref = f"{table.letter_at(idx)}{table.excel_row(i)}"
                    if (table.name, ref) in self.changed:
                        continue
                    text = values.as_text(raw)
                    if text and test(text):
                        field = f"{table.spec.key}.{keys.get(idx, '?')}"
                        found.append((f"{table.name}!{ref}", field))
                        if len(found) >= limit:
                            return found
        for name, ((r0, c0), grid) in self.register.other_sheets.items():
            for r, row in enumerate(grid):
                for c, raw in enumerate(row):
                    text = values.as_text(raw)
                    if text and test(text):
                        found.append((f"{name}!{column_letter(c0 + c)}{r0 + r + 1}", "other.?"))
                        if len(found) >= limit:
                            return found
        return found


_SEP = r"[ \-./()\u00a0]*"


@functools.lru_cache(maxsize=64)
def phone_pattern(nsn: str) -> re.Pattern[str]:
    """A national significant number written any way: 040 123 4567, (040) 12 34 567,
    +358 (0)40-1234567, 00358401234567, or the bare digits of a number cell."""
    prefix = rf"(?:(?:\+|00)?358{_SEP}(?:\(0\))?{_SEP}|0{_SEP})?"
    return re.compile(r"(?<!\d)" + prefix + _SEP.join(nsn) + r"(?!\d)")


@dataclass
class _Scan:
    """The needles worth searching for, and what the register already says about them."""

    needles: list[Needle] = field(default_factory=list)
    nsns: list[tuple[str, str]] = field(default_factory=list)  # (nsn, client_id)
    ids: list[str] = field(default_factory=list)  # client IDs erased in full
    shared: dict[str, int] = field(default_factory=dict)  # client_id -> values not searched
    values: dict[str, int] = field(default_factory=dict)  # client_id -> values searched
    in_cells: list[Leftover] = field(default_factory=list)


def _prepare(
    register: Register, plans: Sequence[ErasurePlan], changed: set[tuple[str, str]]
) -> _Scan:
    """The search's needles and the leftovers already in cells, once ``changed`` are blank."""
    return _prepare_scan(register, plans, _Retained(register, changed))


def _prepare_scan(
    register: Register,
    plans: Sequence[ErasurePlan],
    retained: _Retained,
    extra: Sequence[tuple[list[Needle], list[tuple[str, int]], str]] = (),
) -> _Scan:
    scan = _Scan()
    sources = [(*_needles(register, p), p.client_id, p.scope) for p in plans]
    sources += [(n, s, cid, "extra") for n, s, cid in extra]
    retained.prime(n.text for needles, *_ in sources for n in needles)
    for needles, nsns, client_id, scope in sources:
        by_value: dict[int, list[Needle]] = {}
        for needle in needles:
            by_value.setdefault(needle.value, []).append(needle)
        searched = shared = 0
        shared_values: set[int] = set()
        for value, forms in by_value.items():
            if any(retained.exact(n.text) for n in forms):
                shared += 1
                shared_values.add(value)
                continue
            kept = []
            neighbours = False
            for needle in forms:
                if not retained.contains(needle.text):
                    kept.append(needle)
                elif needle.strong:
                    folded = needle.text.casefold()
                    cells = retained.locate_fields(lambda t, n=folded: n in t.casefold(), 50)
                    # Inside the same column of another row ("Hämeenkatu 1" in a neighbour's
                    # "Hämeenkatu 1 B 12") it is that person's value; anywhere else it is hers.
                    others = [ref for ref, f in cells if f != needle.field]
                    neighbours = neighbours or len(others) < len(cells)
                    for where in others[:3]:
                        scan.in_cells.append(
                            Leftover(client_id, needle.field, where.split("!")[0], "cell", where)
                        )
            if len(kept) < len(forms) and (neighbours or not forms[0].strong):
                shared += 1  # a common word (a first name, a city): not told apart by search
                shared_values.add(value)
                continue
            scan.needles.extend(kept)
            searched += 1
        for nsn, value in nsns:
            if value in shared_values:
                continue
            if retained.has_phone(nsn):
                cells = retained.locate(lambda t, n=nsn: bool(phone_pattern(n).search(t)))
                for where in cells or ["?"]:
                    scan.in_cells.append(
                        Leftover(client_id, "clients.phone", where.split("!")[0], "cell", where)
                    )
            else:
                scan.nsns.append((nsn, client_id))
        # A numeric client ID (1001) also reads as invoice numbers and amounts: only IDs with
        # a letter are searched for as a token; the erased cells' strings leave the package.
        if scope == "full" and any(ch.isalpha() for ch in client_id):
            scan.ids.append(client_id)
            if retained.mentions_id(client_id):
                pattern = mentions_pattern(client_id.casefold())
                for where in retained.locate(lambda t, p=pattern: bool(p.search(t.casefold()))):
                    scan.in_cells.append(
                        Leftover(client_id, "clients.client_id", where.split("!")[0], "cell", where)
                    )
        scan.shared[client_id] = scan.shared.get(client_id, 0) + shared
        scan.values[client_id] = scan.values.get(client_id, 0) + searched
    return scan


# --- scanning the package ---------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", "replace")
    return raw.decode("utf-8", "replace")


def _is_xml(name: str) -> bool:
    return name.casefold().endswith((".xml", ".rels", ".vml"))


def _comment_owners(zf: zipfile.ZipFile, data: bytes) -> dict[str, str]:
    """Comment part -> the sheet it belongs to (via each sheet's relationships)."""
    from sheetreg.xlsxpatch import sheet_parts

    owners: dict[str, str] = {}
    names = set(zf.namelist())
    for sheet, part in sheet_parts(data).items():
        folder, base = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", base + ".rels")
        if rels not in names:
            continue
        for m in re.finditer(rb'Target="([^"]+)"', zf.read(rels)):
            target = m[1].decode()
            resolved = (
                target.lstrip("/")
                if target.startswith("/")
                else posixpath.normpath(posixpath.join(folder, target))
            )
            owners[resolved] = sheet
    return owners


def _where(zf: zipfile.ZipFile, part: str, kind: str, test: Any, owners: dict[str, str]) -> str:
    """A human pointer into a part: the comment's cell, the document property's name."""
    try:
        root = etree.fromstring(zf.read(part), etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return ""
    sheet = owners.get(part, "")
    if kind in ("comment", "threaded-comment"):
        for el in root.iter():
            if not isinstance(el.tag, str) or etree.QName(el).localname not in (
                "comment",
                "threadedComment",
            ):
                continue
            if test("".join(el.itertext())):
                ref = el.get("ref", "")
                what = "kommentti / comment"
                return f"{what} {sheet}!{ref}" if sheet else f"{what} {ref}"
        return ""
    if kind == "doc-property":
        for el in root.iter():
            if not isinstance(el.tag, str) or len(el):
                continue
            if el.text and test(el.text):
                parent = el.getparent()
                name = etree.QName(el).localname
                if parent is not None and etree.QName(parent).localname == "property":
                    label = parent.get("name", "")
                    name = label if label and not test(label) else "custom property"
                return f"ominaisuus / property {name}"
        return ""
    return ""


# Below this much (uncompressed) package a second process costs more than it saves: the
# fidelity check already keeps the other core busy while the package is searched.
_SPLIT_SCAN_BYTES = 48 << 20


def _scan_package(data: bytes, scan: _Scan) -> tuple[list[Leftover], int]:
    """Leftovers of the scan's values in every XML part of ``data``; and the parts searched.

    A big package is searched by two processes, each taking about half of the XML (the
    sheets of a large register are tens of megabytes, and the search reads every byte).
    """
    zf = zipfile.ZipFile(io.BytesIO(data))
    searched = sum(1 for i in zf.infolist() if _is_xml(i.filename))
    names = [i.filename for i in zf.infolist()]
    if sum(i.file_size for i in zf.infolist()) < _SPLIT_SCAN_BYTES or not forking.CAN_FORK:
        return _in_part_order(_scan_parts(data, scan, set(names)), names), searched
    # Every member goes to one half (each half searches what the whole search would: XML
    # parts by name or by content type), the biggest first, each to the lighter half.
    halves: tuple[set[str], set[str]] = (set(), set())
    sizes = [0, 0]
    for info in sorted(zf.infolist(), key=lambda i: i.file_size, reverse=True):
        side = 0 if sizes[0] <= sizes[1] else 1
        halves[side].add(info.filename)
        sizes[side] += info.file_size
    other = forking.start(_scan_parts, data, scan, halves[1], light=True)
    try:
        leftovers = _scan_parts(data, scan, halves[0])
    except BaseException:
        other.discard()
        raise
    theirs = other()
    if theirs is forking.FAILED:
        theirs = _scan_parts(data, scan, halves[1])
    return _in_part_order([*leftovers, *theirs], names), searched


def _present(text: str, needles: list[str]) -> set[str]:
    """Which ``needles`` occur in ``text``: one pass for many, a search each for a few."""
    if len(needles) <= 8:
        return {n for n in needles if n in text}
    import ahocorasick

    automaton = ahocorasick.Automaton()
    for needle in needles:
        automaton.add_word(needle, needle)
    automaton.make_automaton()
    return set(_found_in(automaton, text, max(map(len, needles))))


_AC_PIECE = 1 << 18


def _found_in(automaton: Any, text: str, longest: int) -> Iterator[Any]:
    """The values of ``automaton``'s words that occur in ``text`` (a word may come twice).

    pyahocorasick searches a copy of the text in 4 bytes a character: 28 MB for the text of
    a 100,000-client register. A long text is searched 256k characters at a time, each
    piece overlapping the next by the longest word less one, so no occurrence is missed.
    """
    if len(text) <= _AC_PIECE + longest:
        for _end, value in automaton.iter(text):
            yield value
        return
    for start in range(0, len(text), _AC_PIECE):
        for _end, value in automaton.iter(text[start : start + _AC_PIECE + longest - 1]):
            yield value


def _in_part_order(leftovers: list[Leftover], names: list[str]) -> list[Leftover]:
    order = {name: n for n, name in enumerate(names)}
    return sorted(leftovers, key=lambda o: order.get(o.part, len(order)))


def _scan_parts(data: bytes, scan: _Scan, parts: set[str]) -> list[Leftover]:
    """Leftovers of the scan's values in the XML ``parts`` of ``data``."""
    from sheetreg.xlsxpatch import _part_kind, find_text

    leftovers: list[Leftover] = []
    needles = scan.needles
    residues = find_text(data, [n.text for n in needles], parts) if needles else []
    zf = zipfile.ZipFile(io.BytesIO(data))
    xml_parts = [n for n in zf.namelist() if _is_xml(n) and n in parts]
    owners: dict[str, str] | None = None

    def where(part: str, kind: str, test: Any) -> str:
        nonlocal owners
        if kind not in ("comment", "threaded-comment", "doc-property"):
            return ""
        if owners is None:
            owners = _comment_owners(zf, data)
        return _where(zf, part, kind, test, owners)

    seen: set[tuple[str, str, str]] = set()
    for residue in residues:
        needle = needles[residue.needle]
        key = (needle.client_id, needle.field, residue.part)
        if key in seen:
            continue
        seen.add(key)
        text = needle.text.casefold()
        kind = residue.kind
        if not needle.strong and kind == "doc-property":
            continue  # a lone first or last name there is the file's author, not a client
        leftovers.append(
            Leftover(
                needle.client_id,
                needle.field,
                residue.part,
                kind,
                where(residue.part, kind, lambda t, n=text: n in t.casefold()),
            )
        )
    if scan.nsns or scan.ids:
        # Digits-only phone numbers and the client ID as a token, outside the sheets (whose
        # cells the register check has covered): comments, properties, shared strings, …
        for part in xml_parts:
            kind = _part_kind(part)
            if kind == "sheet":
                continue
            text = _decode(zf.read(part))
            # Cheap tests first: a number written any way leaves its digits in a row once the
            # separators are gone; an ID occurs as plain text. The patterns confirm.
            digits = _without_separators(text).decode("latin-1") if scan.nsns else ""
            in_digits = _present(digits, [nsn for nsn, _ in scan.nsns])
            in_text = (
                _present(values.fold(text), [c.casefold() for c in scan.ids]) if scan.ids else set()
            )
            for nsn, client_id in scan.nsns:
                key = (client_id, "clients.phone", part)
                # The pattern is made only where the digits are (making one costs more than
                # the cheap test, and a run erases a score of clients).
                if (
                    key not in seen
                    and nsn in in_digits
                    and (pattern := phone_pattern(nsn)).search(text)
                ):
                    seen.add(key)
                    test = lambda t, p=pattern: bool(p.search(t))  # noqa: E731
                    leftovers.append(
                        Leftover(client_id, "clients.phone", part, kind, where(part, kind, test))
                    )
            for client_id in scan.ids:
                key = (client_id, "clients.client_id", part)
                if (
                    key not in seen
                    and client_id.casefold() in in_text
                    and (pattern := mentions_pattern(client_id)).search(text)
                ):
                    seen.add(key)
                    leftovers.append(
                        Leftover(
                            client_id,
                            "clients.client_id",
                            part,
                            kind,
                            where(part, kind, lambda t, p=pattern: bool(p.search(t))),
                        )
                    )
    return leftovers


@dataclass
class Verification:
    """The result of searching the erased package for one client's values."""

    values: int
    forms: int
    parts: int
    shared: int
    leftovers: list[Leftover] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no erased value was found anywhere."""
        return not self.leftovers

    def text(self, lang: str, backups: str = "") -> str:
        """One line for the log's Verification cell."""
        if lang == "fi":
            head = "OK" if self.ok else "VIRHE"
            out = (
                f"{head}: {self.values} arvoa ({self.forms} muotoa) haettu {self.parts} "
                f"osasta, {len(self.leftovers)} löytyi"
            )
            if self.shared:
                out += f"; {self.shared} arvoa myös muilla riveillä (ei haettu)"
        else:
            head = "OK" if self.ok else "FAILED"
            out = (
                f"{head}: {self.values} values ({self.forms} forms) searched in {self.parts} "
                f"parts, {len(self.leftovers)} found"
            )
            if self.shared:
                out += f"; {self.shared} values also on other rows (not searched)"
        return out + (f"; {backups}" if backups else "")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "ok": self.ok,
            "values": self.values,
            "forms": self.forms,
            "parts": self.parts,
            "shared": self.shared,
            "leftovers": [x.to_dict() for x in self.leftovers],
        }


# --- edits ------------------------------------------------------------------------------------


def tombstone_text(plan: ErasurePlan, log_id: str, lang: str) -> str:
    """The Privacy status an erased row gets (the same text `flag` computes afterwards)."""
    status = plan.status
    holds: tuple[Hold, ...] = tuple(h for h in plan.kept if h.kind == "accounting-retention")
    erased = ClientStatus(
        plan.client_id,
        plan.row,
        "ended",
        None,
        None,
        holds,
        False,
        index=status.index if status else 0,
        erased=True,
        erasure=ErasureRecord(log_id, plan.today, ""),
        as_of=plan.today,
    )
    return status_text(erased, lang)


def _edits_for(
    register: Register, plan: ErasurePlan, key: ErasureKey, log_id: str
) -> list[CellEdit]:
    from sheetreg.xlsxpatch import CellEdit

    reference = _reference(plan, key)
    pattern = mentions_pattern(plan.client_id)
    edits = []
    for change in plan.changes:
        value: Any
        if change.action == "empty":
            value = None
        elif change.action == "pseudonymise":
            value = reference
        elif change.action == "rewrite":
            text = values.as_text(_cell_raw(register, change)) or ""
            value = pattern.sub(reference, text)
        elif change.value is None:
            value = tombstone_text(plan, log_id, plan.lang)
        else:
            value = change.value
        edits.append(CellEdit(change.sheet, change.cell, value))
    return edits


def _reference(plan: ErasurePlan, key: ErasureKey) -> str:
    """The plan's pseudonymous reference (an erased client's ID already is one)."""
    return plan.client_id if is_pseudonym(plan.client_id) else key.reference(plan.client_id)


def _suppression_for(register: Register, plan: ErasurePlan, key: ErasureKey) -> list[str]:
    if not plan.suppression:
        return []
    return key.suppression_tokens(*_contact_of(register, plan))


def _contact_of(register: Register, plan: ErasurePlan) -> tuple[str | None, str | None]:
    """The phone and e-mail of the client a plan erases."""
    clients = register.table("clients")
    assert clients is not None
    i = plan.status.index if plan.status else 0
    return clients.text(i, "phone"), clients.text(i, "email")


# --- the log ----------------------------------------------------------------------------------

_REASONS = {
    ("request", "full"): ("pyyntö", "request"),
    ("request", "partial"): ("pyyntö, osittainen", "request, partial"),
    ("ended", "full"): ("asiakkuus päättynyt", "relationship ended"),
    ("ended", "partial"): ("asiakkuus päättynyt, osittainen", "relationship ended, partial"),
    ("retention-ended", "retention-ended"): (
        "kirjanpidon säilytysaika päättyi",
        "accounting retention ended",
    ),
}
_BASIS_WORDS = {c.key: (c.fi.lower(), c.en.lower()) for c in DISCLOSURE_BASES}
_BASIS_WORDS["partner"] = ("yhteistyökumppani", "partner")


def reason_text(reason: str, scope: str, lang: str, reapply_of: str = "") -> str:
    """The log's Reason cell: what started the erasure, in the workbook's language."""
    fi_en = _REASONS.get((reason, scope)) or _REASONS.get((reason, "full"), (reason, reason))
    text = fi_en[0] if lang == "fi" else fi_en[1]
    if reapply_of:
        text = (f"uudelleen {reapply_of}: " if lang == "fi" else f"reapplied {reapply_of}: ") + text
    return text


def _kept_text(plan: ErasurePlan, tokens: Sequence[str], lang: str) -> str:
    fi = lang == "fi"
    parts = []
    accounting = [h for h in plan.kept if h.kind == "accounting-retention"]
    if accounting:
        dates = [h.until for h in accounting if h.until]
        until = fmt_date(max(dates)) if dates else "?"
        rows = plan.pseudonymised.get("invoices", 0) if plan.scope == "full" else len(accounting)
        fields = fields_text(accounting[0].fields, lang)
        ground = accounting[0].ground
        parts.append(
            f"{fields} ({rows} {'rivi' if rows == 1 else 'riviä'}) {until} asti – {ground}"
            if fi
            else f"{fields} ({rows} {'row' if rows == 1 else 'rows'}) until {until} – {ground}"
        )
    for hold in plan.kept:
        if hold.kind == "accounting-retention":
            continue
        fields = fields_text(hold.fields, lang)
        if hold.kind in ("open-invoice", "debt-collection"):
            when = (
                f"kunnes lasku {hold.reason} on maksettu"
                if fi
                else f"until invoice {hold.reason} is paid"
            )
        elif hold.until is not None:
            when = f"{fmt_date(hold.until)} asti" if fi else f"until {fmt_date(hold.until)}"
        else:
            when = "toistaiseksi" if fi else "until further notice"
        parts.append(f"{fields} {when} ({hold.source}) – {hold.ground}")
    if tokens:
        label = "Suoramarkkinointikielto" if fi else "Direct-marketing objection"
        parts.append(f"{label}: {', '.join(tokens)} – GDPR 21(3)")
    return " | ".join(parts) or "–"


def _erased_text(plan: ErasurePlan, lang: str) -> str:
    text = fields_text(plan.erased_fields, lang) if plan.erased_fields else ""
    if plan.pseudonymised:
        label = CLIENTS.column("client_id").label(lang)
        arrow = "korvattu viitteellä" if lang == "fi" else "replaced by the reference"
        where = ", ".join(
            f"{sheet_by_key(k).label(lang)} {n}" for k, n in plan.pseudonymised.items()
        )
        text += ("; " if text else "") + f"{label} {arrow}: {where}"
    return text or "–"


def _recipients_text(plan: ErasurePlan, lang: str) -> str:
    if not plan.recipients:
        return "–"
    out = []
    for r in plan.recipients:
        words = _BASIS_WORDS.get(r.basis)
        out.append(f"{r.name} ({words[0] if lang == 'fi' else words[1]})" if words else r.name)
    return ", ".join(out)


@dataclass
class _LogSheet:
    table: Table | None
    name: str
    columns: dict[str, str]  # schema key -> column letter
    header_edits: list[CellEdit]
    next_row: int
    next_id: int

    def row_edits(self, row: dict[str, str], excel_row: int) -> list[CellEdit]:
        from sheetreg.xlsxpatch import CellEdit

        return [
            CellEdit(self.name, f"{self.columns[k]}{excel_row}", v)
            for k, v in row.items()
            if k in self.columns
        ]


_LOG_ID = re.compile(r"E-(\d+)")


def _log_sheet(register: Register, journal_ids: Iterable[str]) -> _LogSheet:
    from sheetreg.xlsxpatch import CellEdit

    table = register.table("erasure_log")
    if table is None:
        raise WriteRefused(
            f"{register.path.name}: there is no {ERASURE_LOG.fi} / {ERASURE_LOG.en} sheet for "
            "the erasure log; add an empty sheet with that name and run again. Nothing was "
            f"written. / Työkirjasta puuttuu välilehti {ERASURE_LOG.fi}."
        )
    lang = register.lang
    columns: dict[str, str] = {}
    header: list[CellEdit] = []
    width = max([len(table.header), *(len(r) for r in table.rows)])
    for column in ERASURE_LOG.columns:
        if table.has(column.key):
            columns[column.key] = table.letter(column.key)
        else:
            letter = column_letter(table.first_col + width)
            width += 1
            columns[column.key] = letter
            header.append(CellEdit(table.name, f"{letter}{table.header_row}", column.label(lang)))
    used = table.nonblank_rows()
    next_row = table.excel_row(used[-1] + 1) if used else table.header_row + 1
    numbers = [0]
    ids = list(journal_ids)
    if table.has("log_id"):
        ids += [v for v in (values.as_text(x) for x in table.column_values("log_id")) if v]
    for text in ids:
        m = _LOG_ID.fullmatch(text)
        if m:
            numbers.append(int(m[1]))
    return _LogSheet(table, table.name, columns, header, next_row, max(numbers) + 1)


# --- the journal ------------------------------------------------------------------------------


def journal_path(workbook: Path) -> Path:
    """The erasure journal beside the workbook: the log's rows as JSON lines, no personal data."""
    workbook = Path(workbook)
    return workbook.with_name(workbook.stem + JOURNAL_SUFFIX)


def read_journal(workbook: Path) -> list[dict[str, Any]]:
    """Every entry of the workbook's erasure journal (empty when there is none)."""
    path = journal_path(workbook)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            entry = json.loads(line)
            if isinstance(entry, dict) and is_pseudonym(entry.get("reference")):
                out.append(entry)
    return out


def _append_journal(workbook: Path, entries: Sequence[dict[str, Any]]) -> None:
    path = journal_path(workbook)
    with path.open("a", encoding="utf-8") as fh:
        for entry in entries:
            fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# --- executing --------------------------------------------------------------------------------


@dataclass
class ErasureOutcome:
    """One client's executed erasure."""

    plan: ErasurePlan
    log_id: str
    reference: str
    verification: Verification
    suppression: list[str] = field(default_factory=list)
    row: dict[str, str] = field(default_factory=dict)  # the log row as written

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (client ID, reference and log row; no personal data)."""
        return {
            "client_id": self.plan.client_id,
            "log_id": self.log_id,
            "reference": self.reference,
            "scope": self.plan.scope,
            "reason": self.plan.reason,
            "verification": self.verification.to_dict(),
            "suppression_entry": bool(self.suppression),
            "recipients_to_notify": [r.to_dict() for r in self.plan.recipients],
            "log_row": self.row,
        }


@dataclass
class ErasureResult:
    """What an erasure run did to the workbook and its backups."""

    workbook: Path
    written: bool = False
    outcomes: list[ErasureOutcome] = field(default_factory=list)
    refused: list[ErasurePlan] = field(default_factory=list)
    backups: dict[str, list[str]] = field(default_factory=dict)  # action -> file names
    sha256_before: str = ""
    sha256_after: str = ""
    sha256_written: str = ""
    flag_cells: int = 0
    cells_written: int = 0  # what the write changed in the workbook, every edit counted

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "workbook": str(self.workbook),
            "written": self.written,
            "erasures": [o.to_dict() for o in self.outcomes],
            "refused": [p.to_dict() for p in self.refused],
            "backups": self.backups,
            "sha256_before": self.sha256_before,
            "sha256_after": self.sha256_after,
            "sha256_written": self.sha256_written,
            "flag_cells": self.flag_cells,
            "cells_written": self.cells_written,
        }


def _leftover_refusal(leftovers: Sequence[Leftover], lang: str) -> Refusal:
    groups: dict[str, list[str]] = {}
    for x in leftovers:
        place = x.part + (f" ({x.where})" if x.where else "")
        label = _field_label(x.field, lang).split(": ", 1)[-1]
        if label not in groups.setdefault(place, []):
            groups[place].append(label)
    places = "; ".join(f"{place}: {', '.join(labels)}" for place, labels in groups.items())
    if lang == "fi":
        message = (
            "Poistettava tieto jäisi työkirjaan: "
            f"{places}. Poista se (kommentti: Tarkista > Poista; ominaisuus: Tiedosto > "
            "Tiedot > Ominaisuudet; solu: muokkaa) ja aja poisto uudelleen."
        )
    else:
        message = (
            "An erased value would remain in the workbook: "
            f"{places}. Remove it (a comment: Review > Delete; a property: File > Info > "
            "Properties; a cell: edit it) and run the erasure again."
        )
    return Refusal("leftover", message, leftovers[0].part if leftovers else "")


@dataclass
class _Spec:
    """What to repeat on a backup copy: the client, reason, scope, fields and log ID."""

    client_id: str
    reason: str
    scope: str
    fields: tuple[str, ...]
    log_id: str
    today: dt.date


def execute_erasure(
    path: Path | str,
    plan: ErasurePlan,
    *,
    register: Register | None = None,
    key: ErasureKey | None = None,
    operator: str | None = None,
    now: dt.datetime | None = None,
    backup_dir: Path | None = None,
    warm: WarmPatch | None = None,
) -> ErasureResult:
    """Execute one plan: one write, one log row, the proof, the backups; or WriteRefused.

    ``register`` is the register the plan was made from (read again when not given; the plan
    is refused if the workbook changed since). The key is made on first use. ``warm``: see
    :func:`execute_erasures`.
    """
    result = execute_erasures(
        path,
        [plan],
        register=register,
        key=key,
        operator=operator,
        now=now,
        backup_dir=backup_dir,
        warm=warm,
    )
    if not result.written:
        refusals = [r for p in result.refused for r in p.refusals]
        message = refusals[0].message if refusals else "nothing to erase"
        raise WriteRefused(
            f"{Path(path).name}: {message} Mitään ei kirjoitettu. / Nothing was written."
        )
    return result


@discards_warm
def execute_erasures(
    path: Path | str,
    plans: Sequence[ErasurePlan],
    *,
    register: Register | None = None,
    key: ErasureKey | None = None,
    operator: str | None = None,
    now: dt.datetime | None = None,
    backup_dir: Path | None = None,
    keep_backups: int | None = None,
    extra_edits: Sequence[CellEdit] = (),
    reapply_of: dict[str, str] | None = None,
    meanwhile: Callable[[list[ErasureOutcome]], None] | None = None,
    warm: WarmPatch | None = None,
) -> ErasureResult:
    """Execute several plans in one write (the weekly job); refused plans are reported.

    ``extra_edits`` (e.g. the flag's status cells) go into the same write. ``reapply_of`` maps
    a client ID to the log ID whose erasure it repeats. ``meanwhile`` gets the erasures being
    written and does work that needs nothing more of the write, while the file is read back
    (see :func:`sheetreg.workbook.write_cells`), and first while a spare makes the patch: it
    may be called more than once (with the same erasures, or others after a refused attempt).
    ``keep_backups`` overrides the workbook's Number of backups setting. ``warm`` is
    :func:`sheetreg.workbook.warm_patch` of the workbook as read: it makes the patch, or is
    discarded.
    """
    from sheetreg.workbook import default_backup_dir, load_package, read_register
    from sheetreg.xlsxpatch import patch_further

    path = Path(path)
    register = register or read_register(path, formulas=False)
    result = ErasureResult(path, sha256_before=register.snapshot.sha256)
    todo = []
    for plan in plans:
        if plan.sha256 != register.snapshot.sha256:
            raise WriteRefused(
                f"{path.name}: the erasure plan was made from another version of the workbook; "
                "plan it again. Nothing was written. / Suunnitelma on tehty eri versiosta."
            )
        (todo if plan.allowed else result.refused).append(plan)
    if not todo and not extra_edits:
        return result
    key = key or load_key(path, create=True)
    assert key is not None
    lang = register.lang
    now = now or dt.datetime.now()
    stamp = dt.datetime.combine(todo[0].today if todo else now.date(), now.time()).replace(
        microsecond=0
    )
    # A password-protected workbook is decrypted in memory: the edits are planned and the
    # proof is searched on the plain package; the snapshot is the hash of the file on disk.
    package = load_package(path)
    if hashlib.sha256(package.data).hexdigest() != register.snapshot.sha256:
        raise WriteRefused(
            f"{path.name} changed after sheetreg read it; nothing was written. / Työkirja "
            "muuttui lukemisen jälkeen."
        )
    data = package.plain
    journal = read_journal(path)
    operator = operator or _operator()
    bdir = backup_dir or default_backup_dir(path)
    keep = (
        keep_backups
        if keep_backups is not None
        else policy_from_settings(register.settings).backup_count
    )
    outcomes: list[ErasureOutcome] = []
    edits: list[CellEdit] = list(extra_edits)
    closing: list[CellEdit] = []  # the log's last cells, written once the proof is known
    scanned: PatchResult | None = None
    proof: forking.Collector | None = None
    reopened: forking.Collector | None = None
    log = _log_sheet(register, (e.get("log_id", "") for e in journal)) if todo else None
    while todo:
        assert log is not None
        outcomes, edits, refused, scanned, proof, reopened = _attempt(
            register,
            data,
            todo,
            key=key,
            log=log,
            lang=lang,
            stamp=stamp,
            operator=operator,
            reapply_of=reapply_of or {},
            extra_edits=extra_edits,
            warm=warm,
            meanwhile=meanwhile,
        )
        warm = None  # one patch only: a second attempt makes its own
        if not refused:
            break
        result.refused.extend(refused)
        todo = [p for p in todo if p not in refused]
    try:
        if not outcomes:
            if not extra_edits:
                return result
            edits = list(extra_edits)
        if outcomes and log is not None:
            specs = [
                _Spec(
                    o.plan.client_id,
                    o.plan.reason,
                    o.plan.scope,
                    o.plan.erased_fields if o.plan.scope == "partial" else (),
                    o.log_id,
                    o.plan.today,
                )
                for o in outcomes
            ]
            needles = [
                (n, s, o.plan.client_id) for o in outcomes for n, s in [_needles(register, o.plan)]
            ]
            actions = _erase_backups(path, bdir, specs, key, needles, password=package.password)
            result.backups = actions
            backups_line = _backups_text(actions, lang)
            assert scanned is not None
            sha_after = hashlib.sha256(scanned.data).hexdigest()
            result.sha256_after = sha_after
            for o in outcomes:
                o.row["sha_after"] = sha_after
                o.row["verification"] = o.verification.text(lang, backups_line)
                closing.extend(
                    log.row_edits(
                        {"sha_after": o.row["sha_after"], "verification": o.row["verification"]},
                        int(o.row.pop("_row")),
                    )
                )
            edits.extend(closing)
            # The searched package gets only the log's last cells: the rows are not patched
            # twice. Its proof is in two steps: the searched package against the workbook
            # (under way since the search began), and the log's last cells against the
            # searched package.
            scanned = patch_further(scanned, closing, verify=True, inline=True)
        write = _write(
            path,
            edits,
            register,
            bdir,
            keep,
            password=package.password,
            patched=scanned if proof is not None else None,
            proof=proof,
            meanwhile=(lambda: meanwhile(outcomes)) if meanwhile is not None else None,
            reopened=(reopened, closing) if reopened is not None else None,
            warm=warm,
        )
    except BaseException:
        for check in (proof, reopened):
            if check is not None:
                check.discard()  # a check under way for a patch that is not written
        raise
    for check in (proof, reopened):
        if check is not None:
            check.discard()  # collected by the write (this only makes sure it is reaped)
    result.written = write.written
    result.sha256_written = write.sha256_after
    result.outcomes = outcomes
    result.flag_cells = len(extra_edits)
    result.cells_written = write.edits if write.written else 0
    if write.backup is not None and outcomes:
        # The copy this write made holds exactly what was just erased: it goes too.
        with contextlib.suppress(FileNotFoundError):
            write.backup.unlink()
        result.backups.setdefault("removed", []).append(write.backup.name)
    if outcomes:
        _append_journal(
            path,
            [
                {
                    **{k: v for k, v in o.row.items() if not k.startswith("_")},
                    "scope": o.plan.scope,
                    "reason_code": o.plan.reason,
                    "fields": list(o.plan.erased_fields),
                    "client_fields": [f for f in o.plan.erased_fields if f.startswith("clients.")],
                    "suppression": o.suppression,
                    "verified": o.verification.ok,
                    "recipients_list": [r.to_dict() for r in o.plan.recipients],
                    "sha_written": write.sha256_after,
                    "workbook": path.name,
                    "backups": result.backups,
                }
                for o in outcomes
            ],
        )
    return result


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


def _write(
    path: Path,
    edits: Sequence[CellEdit],
    register: Register,
    bdir: Path,
    keep: int,
    *,
    password: str | None,
    patched: PatchResult | None = None,
    proof: forking.Collector | None = None,
    meanwhile: Callable[[], None] | None = None,
    reopened: tuple[forking.Collector, Sequence[CellEdit]] | None = None,
    warm: WarmPatch | None = None,
) -> WriteResult:
    from sheetreg.workbook import write_cells

    return write_cells(
        path,
        edits,
        expected=register.snapshot,
        backup_dir=bdir,
        keep_backups=keep,
        password=password,
        patched=patched,
        proof=proof,
        meanwhile=meanwhile,
        reopened=reopened,
        warm=warm,
    )


def _attempt(
    register: Register,
    data: bytes,
    plans: Sequence[ErasurePlan],
    *,
    key: ErasureKey,
    log: _LogSheet,
    lang: str,
    stamp: dt.datetime,
    operator: str,
    reapply_of: dict[str, str],
    extra_edits: Sequence[CellEdit],
    warm: WarmPatch | None = None,
    meanwhile: Callable[[list[ErasureOutcome]], None] | None = None,
) -> tuple[
    list[ErasureOutcome],
    list[CellEdit],
    list[ErasurePlan],
    PatchResult | None,
    forking.Collector | None,
    forking.Collector | None,
]:
    """Build the edits and log rows, patch in memory, search; report plans with leftovers.

    The patch's fidelity check starts before the patch is made (it reads the original
    meanwhile) and its reopen check as soon as the patch is made, both beside this process,
    so that they run while the package is searched and the file written aside (the write
    then reads back only the log's last cells). ``meanwhile`` gets the erasures being
    written while a spare makes the patch (the write calls it again; a refused attempt is
    followed by another).
    """
    from sheetreg.workbook import start_fidelity_check_early, start_patch, start_reopen_check
    from sheetreg.xlsxpatch import EditBatch, patch_workbook

    outcomes: list[ErasureOutcome] = []
    edits: list[CellEdit] = []
    changed: set[tuple[str, str]] = set()
    for n, plan in enumerate(plans):
        log_id = f"E-{log.next_id + n}"
        plan_edits = _edits_for(register, plan, key, log_id)
        edits.extend(plan_edits)
        changed.update((e.sheet, e.cell) for e in plan_edits)
        tokens = _suppression_for(register, plan, key)
        row = {
            "log_id": log_id,
            "timestamp": stamp.isoformat(" "),
            "reference": _reference(plan, key),
            "reason": reason_text(
                plan.reason, plan.scope, lang, reapply_of.get(plan.client_id, "")
            ),
            "fields_erased": _erased_text(plan, lang),
            "fields_kept": _kept_text(plan, tokens, lang),
            "recipients": _recipients_text(plan, lang),
            "operator": operator,
            "sha_before": register.snapshot.sha256,
            "_row": str(log.next_row + n),
        }
        outcomes.append(
            ErasureOutcome(plan, log_id, row["reference"], Verification(0, 0, 0, 0), tokens, row)
        )
    # Extra edits (status flags) must not touch the erasures' cells.
    edits.extend(e for e in extra_edits if (e.sheet, e.cell) not in changed)
    log_edits = list(log.header_edits)
    for o in outcomes:
        log_edits.extend(
            log.row_edits(
                {k: v for k, v in o.row.items() if not k.startswith("_")}, int(o.row["_row"])
            )
        )
    # What the search looks for needs nothing of the patch, and the fidelity check's look at
    # the original needs only the edits: both are made while the patch is. The patch goes to
    # a spare if one waits (its memory then stays out of this process) and the search's
    # preparation is made here; else the preparation goes to a child and the patch is made
    # here.
    everything = EditBatch([*edits, *log_edits])  # pickled once for the three children
    proof = start_fidelity_check_early(data, everything)
    try:
        # The spare that makes the patch reads it back too, once it has sent it.
        if warm is not None and warm.fits(register.snapshot.sha256):
            aside: PatchAside | None = warm.send(data, everything)
        else:
            aside = start_patch(data, everything, residues=False, inline=True, read_back=True)
    except BaseException:
        proof.discard()
        raise
    reading: forking.Collector | None = None
    if aside is not None:
        try:
            scan = _prepare(register, plans, changed)
            if meanwhile is not None:
                meanwhile(outcomes)
            patched = aside()
            reading = aside.read_back()
            proof.send(patched)
        except BaseException:
            aside.discard()
            if reading is not None:
                reading.discard()
            proof.discard()
            raise
    else:
        preparing = forking.start(_prepare, register, plans, changed)
        try:
            patched = patch_workbook(data, everything, residues=False, inline=True)
        except BaseException:
            preparing.discard()
            proof.discard()
            raise
        proof.send(patched)
        try:
            scan = preparing()
            if scan is forking.FAILED:  # the child could not: here, where an error shows
                scan = _prepare(register, plans, changed)
        except BaseException:
            proof.discard()
            raise
    refused: dict[str, list[Leftover]] = {}
    for leftover in scan.in_cells:
        refused.setdefault(leftover.client_id, []).append(leftover)
    # The log rows themselves must hold none of the erased values. Each row's cells are
    # folded once, joined by NUL (which no cell text holds, so no needle spans two cells).
    folded = [(needle, needle.text.casefold()) for needle in scan.needles]
    for row in ["\0".join(v.casefold() for v in o.row.values()) for o in outcomes]:
        for needle, text in folded:
            if text in row:
                refused.setdefault(needle.client_id, []).append(
                    Leftover(needle.client_id, needle.field, log.name, "log", "log row")
                )
    reopened = reading or start_reopen_check(patched.data, everything)
    try:
        leftovers, parts = _scan_package(patched.data, scan)
    except BaseException:
        proof.discard()
        reopened.discard()
        raise
    for leftover in leftovers:
        refused.setdefault(leftover.client_id, []).append(leftover)
    if refused:
        bad = []
        for plan in plans:
            if plan.client_id in refused:
                plan.refusals.append(_leftover_refusal(refused[plan.client_id], plan.lang))
                plan.scope = "none"
                bad.append(plan)
        proof.discard()  # this patch is not written
        reopened.discard()
        return [], [], bad, None, None, None
    for o in outcomes:
        cid = o.plan.client_id
        forms = sum(1 for n in scan.needles if n.client_id == cid)
        forms += sum(1 for _, c in scan.nsns if c == cid) + scan.ids.count(cid)
        o.verification = Verification(
            scan.values.get(cid, 0), forms, parts, scan.shared.get(cid, 0), []
        )
    return outcomes, list(everything), [], patched, proof, reopened


def _backups_text(actions: dict[str, list[str]], lang: str) -> str:
    erased = len(actions.get("erased", []))
    removed = len(actions.get("removed", [])) + 1  # and the copy this write makes
    clean = len(actions.get("clean", []))
    if lang == "fi":
        return (
            f"varmuuskopiot: {erased} poistettu samoin, {removed} poistettu kokonaan "
            f"(myös tämän kirjoituksen kopio), {clean} ei tietoja"
        )
    return (
        f"backups: {erased} erased the same way, {removed} removed (including this write's "
        f"copy), {clean} without the data"
    )


# --- backups ----------------------------------------------------------------------------------


def _erase_backups(
    workbook: Path,
    bdir: Path,
    specs: Sequence[_Spec],
    key: ErasureKey,
    live_needles: Sequence[tuple[list[Needle], list[tuple[str, int]], str]],
    *,
    password: str | None = None,
) -> dict[str, list[str]]:
    """Apply the same erasures to every backup copy sheetreg keeps, or remove the copy.

    ``password`` is the workbook's: the copies of an encrypted workbook are encrypted with it,
    are decrypted in memory only and stay encrypted when the erasure is written to them.
    """
    from sheetreg.workbook import list_backups

    actions: dict[str, list[str]] = {}
    for copy in list_backups(workbook, bdir):
        action = _erase_copy(copy, specs, key, live_needles, password=password)
        if action == "removed":
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()
        actions.setdefault(action, []).append(copy.name)
    return actions


def _erase_copy(
    copy: Path,
    specs: Sequence[_Spec],
    key: ErasureKey,
    live_needles: Sequence[tuple[list[Needle], list[tuple[str, int]], str]],
    *,
    password: str | None = None,
) -> str:
    """ "erased", "clean" (none of the data in it) or "removed" (the proof failed, or an
    encrypted copy the workbook's password does not open)."""
    from sheetreg.workbook import load_package, read_register, write_cells

    try:
        package = load_package(copy, password=password)
        reg = read_register(copy, package=package, formulas=False)
        data = package.plain
        plans = []
        for spec in specs:
            plan: ErasurePlan | None
            if spec.scope == "retention-ended":
                status = client_statuses(reg, spec.today).get(spec.client_id)
                plan = plan_retention_ended(reg, status, spec.today) if status else None
            else:
                plan = plan_erasure(
                    reg,
                    spec.client_id,
                    spec.today,
                    spec.reason,
                    fields=spec.fields if spec.scope == "partial" else None,
                    force=True,
                )
            if plan is not None and plan.allowed:
                plans.append((plan, spec.log_id))
        edits: list[CellEdit] = []
        changed: set[tuple[str, str]] = set()
        for plan, log_id in plans:
            plan_edits = _edits_for(reg, plan, key, log_id)
            edits.extend(plan_edits)
            changed.update((e.sheet, e.cell) for e in plan_edits)
        retained = _Retained(reg, changed)
        scan = _prepare_scan(reg, [p for p, _ in plans], retained, live_needles)
        if scan.in_cells:
            return "removed"
        if not edits:
            leftovers, _ = _scan_package(data, scan)
            return "removed" if leftovers else "clean"
        # A copy has no log row of its own: it is written first and searched after; a copy
        # that fails the search is removed.
        with tempfile.TemporaryDirectory(dir=copy.parent, prefix=".sheetreg-") as tmp:
            write_cells(
                copy,
                edits,
                expected=reg.snapshot,
                backup_dir=Path(tmp),
                keep_backups=1,
                password=password,
            )
            # The temporary folder held the copy as it was: it goes with the context.
        leftovers, _ = _scan_package(load_package(copy, password=password).plain, scan)
        return "removed" if leftovers else "erased"
    except (SheetregError, OSError, ValueError):
        return "removed"


# --- flagging ---------------------------------------------------------------------------------


@dataclass
class FlagResult:
    """What `flag` found and wrote."""

    workbook: Path
    statuses: list[ClientStatus]
    changes: list[Any]
    written: bool = False
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        """Clients by state, and how many await approval or are blocked."""
        out = {"active": 0, "ending": 0, "ended": 0, "erased": 0}
        out |= {"awaiting_approval": 0, "blocked": 0, "approved": 0}
        for s in self.statuses:
            out["erased" if s.erased else s.state] += 1
            out["awaiting_approval"] += s.awaiting_approval
            out["blocked"] += s.blocked
            out["approved"] += s.approved and not s.erased
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: client IDs and states, no cell texts (they may quote hold reasons)."""
        return {
            "workbook": str(self.workbook),
            "dry_run": self.dry_run,
            "written": self.written,
            "cells_changed": len(self.changes),
            "counts": self.counts(),
            "changes": [
                {"client_id": c.client_id, "cell": c.cell, "state": c.state} for c in self.changes
            ],
        }


def suppression_entries(workbook: Path, register: Register | None = None) -> set[str]:
    """Every suppression token on record: the journal and the Erasure log's Fields kept."""
    tokens = {t for e in read_journal(workbook) for t in e.get("suppression", [])}
    log = register.table("erasure_log") if register is not None else None
    if log is not None and log.has("fields_kept"):
        for raw in log.column_values("fields_kept"):
            if raw.__class__ is str and "S-" in raw:
                tokens.update(SUPPRESSION_TOKEN.findall(raw))
    return tokens


def contact_rows(register: Register, contacts: Iterable[tuple[str | None, str | None]]) -> set[int]:
    """Clients rows (data indices) with the phone or e-mail of one of ``contacts`` (phone,
    e-mail pairs), compared in the forms the suppression tokens hash: the rows that
    :func:`suppressed_rows` finds for those contacts' tokens, without hashing every row.
    """
    clients = register.table("clients")
    phones: set[str] = set()
    emails: set[str] = set()
    for phone, email in contacts:
        phone_form, email_form = _contact_forms(phone, email)
        if phone_form is not None:
            phones.add(phone_form)
        if email_form is not None:
            emails.add(email_form)
    if clients is None or not (phones or emails):
        return set()
    return _contact_matches(
        clients.column_values("phone"),
        clients.column_values("email"),
        clients.nonblank_rows(),
        phones,
        emails,
    )


def _contact_matches(
    phone_values: Sequence[Any],
    email_values: Sequence[Any],
    rows: Sequence[int],
    phones: set[str],
    emails: set[str],
) -> set[int]:
    """The ``rows`` whose phone's or e-mail's form (:func:`_contact_forms`) is one of
    ``phones`` or ``emails``.

    The forms of a 100,000-row column are not made one by one: its texts are joined and
    made comparable in one go (junk taken out of phones, e-mails folded), the joined text
    searched for the part of each form that every text of that form holds (a phone's digits
    after +358), and only the rows found there compared exactly.
    """
    candidates: set[int] = set()
    for column, tails, comparable in (
        (phone_values, _phone_tails(phones), lambda text: text.translate(values.PHONE_JUNK)),
        (email_values, emails, values.fold),
    ):
        if not column or not tails:
            continue  # no such column, or no form to look for in it
        texts = [
            v if v.__class__ is str else values.as_text(v) or ""
            for v in map(column.__getitem__, rows)
        ]
        joined = values.join_apart(texts)
        if joined is None or "" in tails:
            # A text holding a NUL, or a form of which no part can be looked for.
            return _contact_matches_slowly(phone_values, email_values, rows, phones, emails)
        candidates.update(rows[k] for k in _texts_holding(comparable(joined), tails))
    return _contact_matches_slowly(phone_values, email_values, sorted(candidates), phones, emails)


def _contact_matches_slowly(
    phone_values: Sequence[Any],
    email_values: Sequence[Any],
    rows: Iterable[int],
    phones: set[str],
    emails: set[str],
) -> set[int]:
    out = set()
    for i in rows:
        phone_form, email_form = _contact_forms(
            values.as_text(phone_values[i]) if phone_values else None,
            values.as_text(email_values[i]) if email_values else None,
        )
        if phone_form in phones or email_form in emails:
            out.add(i)
    return out


def _phone_tails(phones: set[str]) -> set[str]:
    """What the text of every number of each form holds once its junk is out: the digits
    after +358 (a form the Finnish prefix rule made ends with them), else the whole form."""
    return {p[4:] if p.startswith("+358") else p for p in phones}


def _texts_holding(joined: str, needles: Iterable[str]) -> set[int]:
    """Indexes of the texts joined in ``joined`` (:func:`values.join_apart`) in which some
    needle occurs (a needle holding the separator occurs in none)."""
    starts = [0, *itertools.accumulate([len(t) + 1 for t in joined.split(values.APART)])]
    found: set[int] = set()
    for needle in needles:
        if values.APART in needle:
            continue
        pos = joined.find(needle)
        while pos >= 0:
            k = bisect.bisect_right(starts, pos) - 1
            found.add(k)
            pos = joined.find(needle, starts[k + 1])
    return found


def suppressed_rows(register: Register, key: ErasureKey | None, tokens: set[str]) -> set[int]:
    """Clients rows (data indices) whose phone or e-mail matches a suppression entry.

    Two keyed hashes a client: the weekly run has this done beside its other work (a forked
    child, which sends back only the rows).
    """
    clients = register.table("clients")
    if clients is None or key is None or not tokens:
        return set()
    out = set()
    phones, emails = clients.column_values("phone"), clients.column_values("email")
    for i in clients.nonblank_rows():
        phone = values.as_text(phones[i]) if phones else None
        email = values.as_text(emails[i]) if emails else None
        if set(key.suppression_tokens(phone, email)) & tokens:
            out.add(i)
    return out


def is_suppressed(workbook: Path, *, phone: str | None = None, email: str | None = None) -> bool:
    """True when a direct-marketing objection on record matches this phone or e-mail."""
    key = load_key(workbook)
    if key is None:
        return False
    from sheetreg.workbook import read_register

    tokens = suppression_entries(workbook, read_register(workbook, formulas=False))
    return bool(set(key.suppression_tokens(phone, email)) & tokens)


@discards_warm
def flag_workbook(
    path: Path | str,
    today: dt.date,
    *,
    dry_run: bool = False,
    register: Register | None = None,
    backup_dir: Path | None = None,
    warm: WarmPatch | None = None,
) -> FlagResult:
    """Write the Privacy status of every client in plain words; only cells whose text changes.

    ``warm`` is :func:`sheetreg.workbook.warm_patch` of the workbook as ``register`` was read:
    it makes the patch, or is discarded.
    """
    from sheetreg.workbook import read_register, write_cells

    path = Path(path)
    register = register or read_register(path, formulas=False)
    edits, changes, statuses = _flag_plan(path, register, today)
    result = FlagResult(path, statuses, changes, dry_run=dry_run)
    if edits and not dry_run:
        keep = policy_from_settings(register.settings).backup_count
        write = write_cells(
            path,
            edits,
            expected=register.snapshot,
            backup_dir=backup_dir,
            keep_backups=keep,
            warm=warm,
        )
        result.written = write.written
    return result


def _flag_plan(
    path: Path,
    register: Register,
    today: dt.date,
    plans: Sequence[ErasurePlan] = (),
    key: ErasureKey | None = None,
    *,
    recorded: set[int] | None = None,
    on_record: set[str] | None = None,
) -> tuple[list[CellEdit], list[Any], list[ClientStatus]]:
    """The status cells to write. ``plans`` are erasures going into the same write: their
    suppression entries count already, so that the next run finds nothing to change.
    ``on_record`` is :func:`suppression_entries`, if already read, and ``recorded`` the
    rows :func:`suppressed_rows` finds for them with ``key``, if already found."""
    from sheetreg.xlsxpatch import CellEdit

    if on_record is None:
        on_record = suppression_entries(path, register)
    coming = [p for p in plans if p.allowed and p.suppression]
    rows: set[int] = set()
    if coming:
        # This write's own entries: their clients' phones and e-mails are at hand, so the
        # rows that share one are found as text, not by a keyed hash of every row (on a
        # first run there was no key to hash them with beforehand, see run.py).
        rows |= contact_rows(register, [_contact_of(register, p) for p in coming])
    if on_record:
        if recorded is None:
            recorded = suppressed_rows(register, key or load_key(path), on_record)
        rows |= recorded
    changes, statuses, header = flag_changes(register, today, None, rows)
    edits = [CellEdit(c.sheet, c.ref, c.text) for c in changes]
    if header is not None and edits:
        edits.insert(0, header)
    return edits, changes, statuses


# --- the weekly job ---------------------------------------------------------------------------


def erase_due(
    path: Path | str,
    today: dt.date,
    *,
    dry_run: bool = False,
    flag: bool = True,
    register: Register | None = None,
    key: ErasureKey | None = None,
    backup_dir: Path | None = None,
) -> tuple[ErasureResult, list[ErasurePlan]]:
    """The weekly job's retention step: approved and automatic erasures (and, with ``flag``,
    the status flags) in one write. Returns the result and every plan considered.

    Rows whose Approve erasure says Kyllä/Yes are erased (reason "ended" once the
    relationship has ended, else "request"); under the automatic policy, ended relationships
    are erased once their erasure date has come. A plan a hold blocks is reported, not done.
    """
    from sheetreg.workbook import read_register

    path = Path(path)
    register = register or read_register(path, formulas=False)
    plans = due_erasures(register, today)
    extra: list[CellEdit] = []
    if flag:
        extra, _changes, _statuses = _flag_plan(path, register, today, plans, key)
    if dry_run:
        result = ErasureResult(path, sha256_before=register.snapshot.sha256)
        result.refused = [p for p in plans if not p.allowed]
        return result, plans
    result = execute_erasures(
        path, plans, register=register, key=key, backup_dir=backup_dir, extra_edits=extra
    )
    return result, plans


# --- reapply ----------------------------------------------------------------------------------


def _log_entries(workbook: Path, register: Register) -> list[dict[str, Any]]:
    """Every logged erasure: the journal, and log rows of the workbook the journal lacks."""
    entries = read_journal(workbook)
    known = {e.get("log_id") for e in entries}
    log = register.table("erasure_log")
    if log is None:
        return entries
    for i in log.nonblank_rows():
        ref = log.text(i, "reference") or ""
        log_id = log.text(i, "log_id") or ""
        if not is_pseudonym(ref) or log_id in known:
            continue
        reason = log.text(i, "reason") or ""
        partial = "osittainen" in reason or "partial" in reason
        entry = {c.key: log.text(i, c.key) or "" for c in ERASURE_LOG.columns if log.has(c.key)}
        entry["scope"] = "partial" if partial else "full"
        entry["client_fields"] = _parse_client_fields(log.text(i, "fields_erased") or "")
        entry["reason_code"] = (
            "ended" if ("päättynyt" in reason or "ended" in reason) else "request"
        )
        entries.append(entry)
    return entries


def _parse_client_fields(text: str) -> list[str]:
    """The Clients fields named in a log's Fields erased cell (either language)."""
    out = []
    for group in text.split(";"):
        sheet, _, labels = group.partition(":")
        if sheet.strip() not in (CLIENTS.fi, CLIENTS.en):
            continue
        for label in labels.split(","):
            column = match_column(CLIENTS, label.strip())
            if column is not None:
                out.append(f"clients.{column.key}")
    return out


def reapply_erasures(
    path: Path | str,
    today: dt.date,
    *,
    dry_run: bool = False,
    key: ErasureKey | None = None,
    backup_dir: Path | None = None,
) -> tuple[ErasureResult, list[ErasurePlan]]:
    """Re-apply every logged erasure to a workbook restored from an old copy.

    The erased clients are found by their keyed references (the key is needed; the log holds
    no data to find them by): a client whose ID hashes to a logged reference is erased again
    the way the log says, full or partial, whatever holds the old copy shows.
    """
    from sheetreg.workbook import read_register

    path = Path(path)
    key = key or load_key(path)
    if key is None:
        raise UnusableWorkbook(
            f"{path.name}: no erasure key beside the workbook ({KEY_FILE_NAME}) or in the "
            "keyring; the erased clients cannot be recognised without it. / Poistoavain puuttuu."
        )
    register = read_register(path, formulas=False)
    entries = _log_entries(path, register)
    by_ref: dict[str, dict[str, Any]] = {}
    for entry in entries:
        by_ref.setdefault(entry["reference"], entry)
    clients = register.table("clients")
    plans: list[ErasurePlan] = []
    reapply_of: dict[str, str] = {}
    if clients is not None and clients.has("client_id"):
        for i in clients.nonblank_rows():
            client_id = values.as_text(clients.get(i, "client_id")) or ""
            if not client_id or PSEUDONYM.fullmatch(client_id):
                continue
            entry = by_ref.get(key.reference(client_id))
            if entry is None:
                continue
            partial = entry.get("scope") == "partial"
            plan = plan_erasure(
                register,
                client_id,
                today,
                entry.get("reason_code", "request"),
                fields=entry.get("client_fields", []) if partial else None,
                force=True,
            )
            if plan.allowed:
                plans.append(plan)
                reapply_of[client_id] = entry.get("log_id", "")
    result = ErasureResult(path, sha256_before=register.snapshot.sha256)
    if dry_run or not plans:
        return result, plans
    result = execute_erasures(
        path, plans, register=register, key=key, backup_dir=backup_dir, reapply_of=reapply_of
    )
    return result, plans


__all__ = [
    "ErasureKey",
    "ErasureOutcome",
    "ErasureResult",
    "FlagResult",
    "Leftover",
    "Verification",
    "erase_due",
    "execute_erasure",
    "execute_erasures",
    "flag_workbook",
    "is_suppressed",
    "journal_path",
    "load_key",
    "phone_forms",
    "read_journal",
    "reapply_erasures",
    "suppression_entries",
]


# --- the demo ---------------------------------------------------------------------------------
