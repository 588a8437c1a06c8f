"""Reading a cell's value as the type its column expects.

Cells arrive as python-calamine gives them: ``str``, ``float``, ``int``, ``bool``,
``datetime.date``/``datetime.datetime``, or ``""`` for an empty cell. Each parser returns the
typed value, ``None`` for an empty cell, or raises :class:`ValueError` (without the value in
the message) when the cell cannot be read.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sheetreg.schema import YES_NO, Choice, match_choice

EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 = 1.1.1900, with Excel's 1900 leap-year bug

_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})\.?")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")


_FOLD_PIECE = 1 << 16


def fold(text: str) -> str:
    """``text.casefold()``, with a bounded scratch buffer for a long text.

    CPython folds a string through a scratch buffer of 12 bytes a character (room for three
    UCS-4 characters each): 84 MB for the 7 million characters of a 100,000-client
    register's text. Case folding maps each character on its own (unlike ``lower``, with no
    context such as a final sigma), so folding 64k characters at a time gives the same
    string with 768 kB of scratch.
    """
    if len(text) <= _FOLD_PIECE:
        return text.casefold()
    return "".join([text[i : i + _FOLD_PIECE].casefold() for i in range(0, len(text), _FOLD_PIECE)])


# Joins many cells' texts for one pass of C code over them all: no cell's text holds a NUL
# (XML cannot carry one).
APART = "\0"


def join_apart(texts: list[str]) -> str | None:
    """``texts`` joined by :data:`APART`, to be worked on in one go and split apart again
    (each one's result is its own, when the work maps each character on its own); None when
    a text holds a NUL after all (the caller then takes them one by one)."""
    joined = APART.join(texts)
    return joined if joined.count(APART) == max(len(texts) - 1, 0) else None


def is_empty(raw: Any) -> bool:
    """True for a cell with nothing in it (white space only counts as empty)."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


def as_text(raw: Any) -> str | None:
    """The cell as text, numbers without a trailing ``.0``; None when empty."""
    if is_empty(raw):
        return None
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, bool):
        return "TRUE" if raw else "FALSE"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat() if raw.time() == dt.time() else raw.isoformat(" ")
    return str(raw)


def id_text(raw: Any) -> str:
    """A client ID cell as text: stripped, "" when empty (fast for the usual text cell)."""
    return raw.strip() if raw.__class__ is str else (as_text(raw) or "")


def as_date(raw: Any) -> dt.date | None:
    """A date from a real Excel date, a serial number, or text like 20.10.2020 / 2020-10-20."""
    if is_empty(raw):
        return None
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, bool):
        raise ValueError("not a date")
    if isinstance(raw, int | float):
        # A date typed into a cell formatted as General arrives as its serial number.
        if 1 <= raw < 2958466:
            return EXCEL_EPOCH + dt.timedelta(days=int(raw))
        raise ValueError("not a date")
    text = str(raw).strip()
    m = _DMY.fullmatch(text)
    if m:
        day, month, year = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _ISO.fullmatch(text)
        if not m:
            raise ValueError("not a date")
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError("not a date") from None


def as_choice(raw: Any, choices: tuple[Choice, ...]) -> Choice | None:
    """The choice a cell stands for, in either language; booleans count as yes/no."""
    if is_empty(raw):
        return None
    if isinstance(raw, bool) and choices == YES_NO:
        return YES_NO[0] if raw else YES_NO[1]
    found = match_choice(choices, str(raw))
    if found is None:
        raise ValueError("not an allowed value")
    return found


def as_yes(raw: Any) -> bool:
    """True only for a readable yes (Kyllä/Yes/TRUE); empty, no or unreadable is False."""
    try:
        return as_choice(raw, YES_NO) == YES_NO[0]
    except ValueError:
        return False


_MONEY = re.compile(r"-?\d+(?:\.\d+)?")


def as_money(raw: Any) -> float | None:
    """An amount from a number or text with a decimal comma, spaces, € or EUR."""
    if is_empty(raw):
        return None
    if isinstance(raw, bool):
        raise ValueError("not an amount")
    if isinstance(raw, int | float):
        return float(raw)
    if not isinstance(raw, str):
        raise ValueError("not an amount")
    text = raw.replace("€", "").replace("EUR", "").replace("\u00a0", "").replace(" ", "")
    if "," in text:
        if text.count(",") > 1:
            raise ValueError("not an amount")
        text = text.replace(".", "").replace(",", ".")  # 1.234,50 -> 1234.50
    if not _MONEY.fullmatch(text):
        raise ValueError("not an amount")
    return float(text)


# --- phone numbers ------------------------------------------------------------------------

PHONE_JUNK = str.maketrans("", "", " -()./\u00a0")
_FI_PREFIX = re.compile(r"(?:\+358|00358|0)([1-9]\d{3,11})")


@functools.cache
def _region_descs(region: str) -> tuple[Any, list[Any]]:
    import phonenumbers

    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    types = [
        md.mobile,
        md.fixed_line,
        md.toll_free,
        md.premium_rate,
        md.shared_cost,
        md.voip,
        md.personal_number,
        md.pager,
        md.uan,
        md.voicemail,
    ]
    return md.general_desc, [d for d in types if d is not None and d.national_number_pattern]


def _length_guard(lengths: Any) -> str:
    """A lookahead allowing exactly these digit counts, as ranges (cheaper to match)."""
    runs: list[list[int]] = []
    for n in sorted(set(lengths)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    parts = [f"\\d{{{a}}}" if a == b else f"\\d{{{a},{b}}}" for a, b in runs]
    return "(?=(?:" + "|".join(parts) + ")$)"


@functools.cache
def _fi_valid_pattern() -> re.Pattern[str]:
    """phonenumbers' validity rule for +358 numbers as one compiled regex.

    is_valid_number accepts a national significant number when, for a region of the country
    code (Finland, and Åland which shares +358), it fits the general description (possible
    lengths and pattern) and the lengths and pattern of at least one number type. The same
    metadata joined into one pattern costs ~1 µs a number instead of ~18 µs through
    phonenumbers' parser; a register has 100,000 numbers. ``test_values`` checks that both
    agree on a wide sample.
    """
    regions = []
    for region in ("FI", "AX"):
        general, types = _region_descs(region)
        head = _length_guard(general.possible_length) if general.possible_length else ""
        head += f"(?=(?:{general.national_number_pattern})$)"
        alternatives = []
        for desc in types:
            lengths = desc.possible_length or general.possible_length
            guard = _length_guard(lengths) if lengths else ""
            alternatives.append(f"{guard}(?:{desc.national_number_pattern})")
        regions.append(head + "(?:" + "|".join(alternatives) + ")")
    return re.compile("(?:" + "|".join(regions) + ")")


def _fi_national_valid(nsn: str) -> bool:
    """phonenumbers' is_valid_number for a Finnish national significant number."""
    return _fi_valid_pattern().fullmatch(nsn) is not None


def phone_is_valid(text: str) -> bool:
    """True when ``text`` is a valid phone number read with region FI (phonenumbers' rules)."""
    m = _FI_PREFIX.fullmatch(text.translate(PHONE_JUNK))
    if m:
        return _fi_national_valid(m[1])
    import phonenumbers

    try:
        number = phonenumbers.parse(text, "FI")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def phone_digits(text: str) -> str:
    """A canonical form for comparing numbers: E.164 digits for Finnish numbers."""
    compact = text.translate(PHONE_JUNK)
    m = _FI_PREFIX.fullmatch(compact)
    return "+358" + m[1] if m else compact


# --- e-mail ---------------------------------------------------------------------------------

# Plain ASCII addresses that email-validator certainly accepts; anything else goes to it.
_SIMPLE_EMAIL = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
)


def email_is_valid(text: str) -> bool:
    """True when email-validator accepts ``text`` (syntax only, no DNS look-up)."""
    if (
        len(text) <= 254
        and _SIMPLE_EMAIL.fullmatch(text)
        and len(text.split("@", maxsplit=1)[0]) <= 64
    ):
        return True
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


# --- Finnish personal identity code (HETU) -------------------------------------------------

HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
HETU_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])(\d{2})(\d{2})(\d{2})([-+ABCDEFUVWXY])(\d{3})([0-9A-Y])(?![0-9A-Za-z])"
)
_CENTURY = {"+": 1800, "-": 1900, "A": 2000}
_CENTURY.update(dict.fromkeys("UVWXY", 1900))
_CENTURY.update(dict.fromkeys("BCDEF", 2000))


def hetu_is_valid(match: re.Match[str]) -> bool:
    """True when a HETU-shaped match has a real birth date and the right check character."""
    dd, mm, yy, sign, zzz, check = match.groups()
    try:
        dt.date(_CENTURY[sign] + int(yy), int(mm), int(dd))
    except ValueError:
        return False
    if int(zzz) < 2:  # 000 and 001 are never issued
        return False
    return HETU_CHECK[int(dd + mm + yy + zzz) % 31] == check


def find_hetus(text: str) -> list[re.Match[str]]:
    """Every valid personal identity code in ``text``."""
    return [m for m in HETU_PATTERN.finditer(text) if hetu_is_valid(m)]


# Each byte of UTF-8 text as what it can be in a HETU: an ASCII digit "0", a century sign
# "-", anything else ".". (A byte of a character past ASCII is never either.)
_HETU_SHAPE = bytes(
    ord("0") if 48 <= b <= 57 else ord("-") if chr(b) in "-+ABCDEFUVWXY" else ord(".")
    for b in range(256)
)
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")


def may_hold_hetu(text: str) -> bool:
    """False when ``text`` certainly holds nothing HETU_PATTERN matches: no six digits, a
    century sign and three digits in a row. C-speed passes (the pattern itself reads a
    column of text at some 30 ns a character); True also when a digit of another script
    is there (the pattern's \\d reads those too)."""
    if not text.isascii() and any(ch.isdecimal() for ch in set(_ASCII_RUNS.sub("", text))):
        return True
    return b"000000-000" in text.encode("utf-8", "surrogatepass").translate(_HETU_SHAPE)


def postal_is_valid(raw: Any) -> bool:
    """A Finnish postal code: exactly five digits (a number cell that lost its zero is not)."""
    if isinstance(raw, float | int) and not isinstance(raw, bool):
        return float(raw).is_integer() and 10000 <= raw <= 99999
    if isinstance(raw, str):
        text = raw.strip()
        return len(text) == 5 and text.isascii() and text.isdigit()
    return False


# --- whole columns at once -----------------------------------------------------------------
# A register column holds up to 100,000 values. Joining them into one text and letting a
# compiled pattern pick out the lines that certainly pass costs a few C-level passes instead
# of a Python call per cell; only what the fast pass does not accept is judged one by one.


@functools.cache
def _fi_lines() -> re.Pattern[str]:
    return re.compile(r"^(?:\+358|00358|0)(?:" + _fi_valid_pattern().pattern + r")$", re.MULTILINE)


_SIMPLE_EMAIL_LINES = re.compile(
    r"^(?=[^@\n]{1,64}@)(?=[^\n]{1,254}$)" + _SIMPLE_EMAIL.pattern + "$", re.MULTILINE
)


def compact_phones(texts: Sequence[str]) -> list[str]:
    """Each text without :data:`PHONE_JUNK`, translated as one text (a translate of each
    costs five times as much: a register has 100,000 numbers)."""
    compacts = "\n".join(texts).translate(PHONE_JUNK).split("\n")
    if len(compacts) != len(texts):  # a text with a line break of its own
        return [t.translate(PHONE_JUNK) for t in texts]
    return compacts


def invalid_phones(texts: Iterable[str]) -> set[str]:
    """The texts that are not valid phone numbers (same verdicts as :func:`phone_is_valid`)."""
    texts = list(texts)
    compacts = compact_phones(texts)
    valid = set(_fi_lines().findall("\n".join(compacts)))
    return {
        t
        for t, c in zip(texts, compacts, strict=True)
        if c not in valid and not phone_is_valid(t.strip())
    }


def invalid_emails(texts: Iterable[str]) -> set[str]:
    """The texts that are not valid e-mail addresses (same verdicts as email_is_valid)."""
    texts = list(texts)
    stripped = [t.strip() for t in texts]
    valid = set(_SIMPLE_EMAIL_LINES.findall("\n".join(stripped)))
    return {
        t for t, s in zip(texts, stripped, strict=True) if s not in valid and not email_is_valid(s)
    }
