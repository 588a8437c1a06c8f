"""Retention decisions: each client's status, typed holds, erasure due dates, the erasure plan.

Pure functions of a :class:`~sheetreg.register.Register` and a ``today``: nothing here opens a
file. `erasure.py` applies what is decided here; `cli_retention.py` is the command line.

Legal grounds (see docs/retention.md):
- contact data are kept only while the relationship lasts (the notice, §8); the Relationship
  end date is the relationship's last day, so it has *ended* from the next day on;
- an open invoice or one in debt collection keeps the data needed to collect it: legal claims,
  GDPR Art. 17(3)(e);
- invoice rows are vouchers: Kirjanpitolaki 1336/1997 2:10 keeps them at least six years from
  the end of the calendar year in which the financial year ended (Art. 17(3)(b)); the register
  keeps them under a pseudonymous reference instead of the client ID;
- a manual hold (Hold until / Hold reason) keeps everything until its date, inclusive.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from sheetreg import values
from sheetreg.register import quick_init
from sheetreg.schema import (
    BILLING_METHODS,
    CLIENTS,
    DISCLOSURE_BASES,
    INVOICES,
    YES_NO,
    sheet_by_key,
)

if TYPE_CHECKING:
    from sheetreg.register import Register, Table
    from sheetreg.xlsxpatch import CellEdit

State = Literal["active", "ending", "ended"]
HoldKind = Literal["open-invoice", "debt-collection", "manual-hold", "accounting-retention"]
Reason = Literal["request", "ended"]

HOLD_KINDS: tuple[str, ...] = (
    "open-invoice",
    "debt-collection",
    "manual-hold",
    "accounting-retention",
)
# Holds that keep (some of) the client's contact data; accounting retention keeps invoice rows.
BLOCKING_KINDS = frozenset({"open-invoice", "debt-collection", "manual-hold"})

PSEUDONYM = re.compile(r"P-[0-9a-f]{16}")
SUPPRESSION_TOKEN = re.compile(r"S-[ep]:[0-9a-f]{16}")

GROUNDS = {
    "open-invoice": "GDPR 17(3)(e)",
    "debt-collection": "GDPR 17(3)(e)",
    "manual-hold": "GDPR 17(3)",
    "accounting-retention": "GDPR 17(3)(b); KPL 1336/1997 2:10",
}

_NAME = ("clients.first_name", "clients.last_name")
_ADDRESS = ("clients.street", "clients.postal_code", "clients.city")
_INVOICE_ROW = tuple(f"invoices.{c.key}" for c in INVOICES.columns)
ACCOUNTING_FIELDS = tuple(f for f in _INVOICE_ROW if f != "invoices.client_id")
EVERYTHING = ("clients.*", "invoices.*", "requests.*", "disclosures.*")
# What an open invoice needs to be collected, by billing method (none given: every contact).
_BILLING_CONTACT = {
    "email": ("clients.email",),
    "paper": _ADDRESS,
    "einvoice": _ADDRESS,
}
_ALL_CONTACT = ("clients.phone", "clients.email", *_ADDRESS)
_DEBT_FIELDS = ("clients.client_id", *_NAME, *_ALL_CONTACT, "clients.billing_method")

# Clients columns a partial erasure never touches: identity of the row and its bookkeeping.
_PARTIAL_KEEPS = frozenset(
    {
        "client_id",
        "start",
        "end",
        "marketing_objection",
        "partner",
        "hold_until",
        "hold_reason",
        "approve_erasure",
        "privacy_status",
    }
)
# Clients columns whose values are scanned for after an erasure (choices and dates are not:
# they identify nobody and every other row holds the same words).
SCANNED_CLIENT_FIELDS = ("first_name", "last_name", "phone", "email", "street", "postal_code")
SCANNED_CLIENT_FIELDS += ("city", "notes", "hold_reason")


def is_pseudonym(text: Any) -> bool:
    """True for a pseudonymous reference sheetreg writes in place of an erased client ID."""
    return isinstance(text, str) and PSEUDONYM.fullmatch(text.strip()) is not None


def fmt_date(day: dt.date) -> str:
    """A date as the therapist writes it: 3.11.2026 (both languages)."""
    return f"{day.day}.{day.month}.{day.year}"


def _column_label(sheet_key: str, column_key: str, lang: str) -> str:
    if column_key == "*":
        return "kaikki tiedot" if lang == "fi" else "all data"
    if column_key == "?":
        return "muut sarakkeet" if lang == "fi" else "other columns"
    return sheet_by_key(sheet_key).column(column_key).label(lang)


def field_label(key: str, lang: str) -> str:
    """A ``sheet.column`` field key as people read it, e.g. "Asiakkaat: Puhelin"."""
    sheet_key, _, column_key = key.partition(".")
    return f"{sheet_by_key(sheet_key).label(lang)}: {_column_label(sheet_key, column_key, lang)}"


def fields_text(keys: Iterable[str], lang: str) -> str:
    """Field keys grouped by sheet: "Asiakkaat: Etunimi, Sukunimi; Laskut: Summa (€)"."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        sheet_key, _, column_key = key.partition(".")
        labels = groups.setdefault(sheet_by_key(sheet_key).label(lang), [])
        label = _column_label(sheet_key, column_key, lang)
        if label not in labels:
            labels.append(label)
    return "; ".join(f"{sheet}: {', '.join(labels)}" for sheet, labels in groups.items())


# --- policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The Settings sheet's erasure policy and financial year."""

    automatic: bool = False
    after_days: int = 30
    fy_end: tuple[int, int] = (31, 12)  # (day, month)
    backup_count: int = 10


_FY_END = re.compile(r"\s*(\d{1,2})\s*\.\s*(\d{1,2})\s*\.?\s*")


def policy_from_settings(settings: Mapping[str, str]) -> Policy:
    """Read the policy; anything unreadable falls back to the safe default (approval)."""
    text = settings.get("erasure_policy", "").strip().casefold()
    automatic = text.startswith(("auto", "autom"))
    after = _int_setting(settings.get("erasure_after_days"), 30, low=0)
    fy_end = (31, 12)
    m = _FY_END.fullmatch(settings.get("financial_year_end", "") or "")
    if m and 1 <= int(m[2]) <= 12 and 1 <= int(m[1]) <= 31:
        fy_end = (int(m[1]), int(m[2]))
    backups = _int_setting(settings.get("backup_count"), 10, low=1)
    return Policy(automatic, after, fy_end, backups)


def _int_setting(text: str | None, default: int, *, low: int) -> int:
    try:
        number = int(float((text or "").strip().replace(",", ".")))
    except ValueError:
        return default
    return number if number >= low else default


def financial_year_end(day: dt.date, fy_end: tuple[int, int]) -> dt.date:
    """The last day of the financial year that ``day`` falls in."""
    d, m = fy_end

    def end_in(year: int) -> dt.date:
        return dt.date(year, m, min(d, calendar.monthrange(year, m)[1]))

    end = end_in(day.year)
    return end if end >= day else end_in(day.year + 1)


def accounting_retention_until(invoice_date: dt.date, fy_end: tuple[int, int]) -> dt.date:
    """The last day an invoice row must be kept (KPL 2:10): 31.12 of FY end's year + 6."""
    return dt.date(financial_year_end(invoice_date, fy_end).year + 6, 12, 31)


# --- statuses and holds ---------------------------------------------------------------------


@quick_init  # one per invoice: a register has 100,000
@dataclass(frozen=True, slots=True)
class Hold:
    """Something that keeps some of a client's data past the relationship, until a date.

    ``fields`` are ``sheet.column`` keys ("clients.email", "invoices.*"); ``until`` is the last
    day the hold applies, or None while its cause lasts (an unpaid invoice). ``reason`` is for
    the person reading the workbook: the invoice number(s), or the Hold reason as typed (free
    text, so :meth:`to_dict` leaves it out of output that leaves the workbook). ``source`` is
    the cell the hold comes from, e.g. "Laskut!A7".
    """

    kind: str
    fields: tuple[str, ...]
    until: dt.date | None
    reason: str
    source: str = ""

    @property
    def ground(self) -> str:
        """The legal ground, e.g. "GDPR 17(3)(e)"."""
        return GROUNDS[self.kind]

    @property
    def blocks(self) -> bool:
        """True when the hold keeps contact data (everything but accounting retention)."""
        return self.kind in BLOCKING_KINDS

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (no free text: a manual hold's reason is given as its cell)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "fields": list(self.fields),
            "until": self.until.isoformat() if self.until else None,
            "ground": self.ground,
            "source": self.source,
        }
        if self.kind != "manual-hold":
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class ErasureRecord:
    """What the Erasure log sheet says about a pseudonymous reference."""

    log_id: str
    day: dt.date | None
    reason: str


@quick_init  # one per client
@dataclass(frozen=True, slots=True)
class ClientStatus:
    """A client's retention status as of a day.

    ``row`` is the Excel row on the Clients sheet and ``index`` the data-row index.
    ``erasure_due`` is the first day erasure of the contact data is due (None while active or
    while a hold without a date, such as an unpaid invoice, blocks it). ``erased`` marks a row
    that sheetreg already erased (its client ID is a pseudonymous reference).
    """

    client_id: str
    row: int
    state: State
    end: dt.date | None
    erasure_due: dt.date | None
    holds: tuple[Hold, ...]
    awaiting_approval: bool
    index: int = 0
    approved: bool = False
    automatic: bool = False
    erased: bool = False
    erasure: ErasureRecord | None = None
    as_of: dt.date | None = None  # the day the status was computed for
    suppressed: bool = False  # matches a suppression entry left by an earlier erasure

    @property
    def blocking(self) -> tuple[Hold, ...]:
        """The holds that keep contact data."""
        return tuple(h for h in self.holds if h.blocks)

    @property
    def blocked(self) -> bool:
        """True when the relationship ended but a hold keeps the contact data."""
        return self.state == "ended" and not self.erased and bool(self.blocking)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "client_id": self.client_id,
            "row": self.row,
            "state": self.state,
            "end": self.end.isoformat() if self.end else None,
            "erasure_due": self.erasure_due.isoformat() if self.erasure_due else None,
            "awaiting_approval": self.awaiting_approval,
            "approved": self.approved,
            "erased": self.erased,
            "holds": [h.to_dict() for h in self.holds],
        }


class _Memo:
    """Cell parsers memoised by raw value: a register repeats the same dates and labels.

    A boolean cell is parsed each time, never memoised: ``True == 1 == 1.0``, and a number
    cell must not get the answer a TRUE cell got (nor the other way round).
    """

    def __init__(self) -> None:
        self.dates: dict[Any, dt.date | None] = {}
        self.yes: dict[Any, bool] = {}
        self.billing: dict[Any, str | None] = {}

    def date(self, raw: Any) -> dt.date | None:
        try:
            if raw.__class__ is not bool:
                return self.dates[raw]
        except KeyError:
            pass
        try:
            day = values.as_date(raw)
        except ValueError:
            day = None
        if raw.__class__ is not bool:
            self.dates[raw] = day
        return day

    def is_yes(self, raw: Any) -> bool:
        if raw.__class__ is bool:
            return values.as_yes(raw)
        found = self.yes.get(raw)
        if found is None:
            found = self.yes[raw] = values.as_yes(raw)
        return found

    def billing_key(self, raw: Any) -> str | None:
        keep = raw.__class__ is not bool
        if keep and raw in self.billing:
            return self.billing[raw]
        try:
            choice = values.as_choice(raw, BILLING_METHODS)
        except ValueError:
            choice = None
        key = choice.key if choice else None
        if keep:
            self.billing[raw] = key
        return key


@functools.lru_cache(maxsize=8192)
def _retention_until(day: dt.date, fy_end: tuple[int, int]) -> dt.date:
    return accounting_retention_until(day, fy_end)


class _Invoices:
    """The Invoices sheet as the statuses read it: its raw columns and its rows by client ID.

    An invoice's facts are read when its client's status is made, not gathered first into
    an object per invoice (a register has 200,000: 25 MB that were thrown away at once).
    """

    def __init__(self, register: Register, policy: Policy, memo: _Memo) -> None:
        invoices = register.table("invoices")
        self.by_id: dict[str, int | list[int]] = {}
        if invoices is None or not invoices.has("client_id"):
            return
        self.by_id = rows_by_id(invoices).rows
        self.numbers = invoices.column_values("invoice_number")
        self.debt = invoices.column_values("debt_collection")
        # Each row's payment date and the end of its retention, a list each (parsed once
        # per distinct cell value): what the loop over a client's invoices reads.
        self.paid = _mapped(invoices.column_values("paid_on"), memo.date)
        fy_end = policy.fy_end
        days = _mapped(invoices.column_values("invoice_date"), memo.date)
        ends = {day: _retention_until(day, fy_end) for day in set(days) if day is not None}
        self.until = [None if day is None else ends[day] for day in days]
        letter = invoices.letter("invoice_number") if invoices.has("invoice_number") else "A"
        self.prefix = f"{invoices.name}!{letter}"
        self.first = invoices.header_row + 1
        self.memo = memo

    def holds(self, client_id: str, today: dt.date, billing: str | None) -> list[Hold]:
        """The holds the client's invoices put on her data as of ``today``: those that
        block erasure (an open invoice, debt collection) first."""
        found = self.by_id.get(client_id)
        if found is None:
            return []
        memo = self.memo
        paid, ends = self.paid, self.until
        holds: list[Hold] = []
        open_rows: list[tuple[str, str]] = []  # (number, source) of unpaid invoices
        debt_rows: list[tuple[str, str]] = []
        for i in (found,) if found.__class__ is int else found:
            open_invoice = paid[i] is None  # unreadable: open (the safe side)
            until = ends[i]  # no readable invoice date: kept (the safe side)
            kept = until is None or today <= until
            if not (open_invoice or kept):
                continue  # paid, and past its retention: nothing to say about it
            number = self.numbers[i]
            if number.__class__ is not str:
                number = values.as_text(number) or ""
            number = number.strip() or f"#{self.first + i}"
            source = f"{self.prefix}{self.first + i}"
            if open_invoice:
                (debt_rows if memo.is_yes(self.debt[i]) else open_rows).append((number, source))
            if kept:
                holds.append(Hold("accounting-retention", ACCOUNTING_FIELDS, until, number, source))
        if open_rows:
            contact = _BILLING_CONTACT.get(billing or "", _ALL_CONTACT)
            fields = ("clients.client_id", *_NAME, "clients.billing_method", *contact)
            numbers = ", ".join(number for number, _ in open_rows)
            hold = Hold("open-invoice", (*fields, *_INVOICE_ROW), None, numbers, open_rows[0][1])
            holds.insert(0, hold)
        if debt_rows:
            numbers = ", ".join(number for number, _ in debt_rows)
            fields = (*_DEBT_FIELDS, *_INVOICE_ROW)
            holds.insert(0, Hold("debt-collection", fields, None, numbers, debt_rows[0][1]))
        return holds


def _manual_hold(
    clients: Table, i: int, today: dt.date, raw: tuple[Any, Any], memo: _Memo
) -> Hold | None:
    raw_until, raw_reason = raw
    if values.is_empty(raw_until) and values.is_empty(raw_reason):
        return None
    reason = values.as_text(raw_reason) or ""
    # An unreadable date keeps the hold without a date: the safe side.
    until = memo.date(raw_until)
    if until is not None and today > until:
        return None  # released the day after its date
    key = "hold_until" if clients.has("hold_until") else "hold_reason"
    source = f"{clients.name}!{clients.ref(i, key)}" if clients.has(key) else ""
    return Hold("manual-hold", EVERYTHING, until, reason, source)


def erasure_records(register: Register) -> dict[str, ErasureRecord]:
    """The Erasure log's rows by pseudonymous reference (the first row for each)."""
    log = register.table("erasure_log")
    out: dict[str, ErasureRecord] = {}
    if log is None or not log.has("reference"):
        return out
    for i in log.nonblank_rows():
        ref = log.text(i, "reference") or ""
        if not is_pseudonym(ref) or ref in out:
            continue
        stamp = log.text(i, "timestamp") or ""
        try:
            day: dt.date | None = dt.date.fromisoformat(stamp[:10])
        except ValueError:
            day = log.date(i, "timestamp")
        out[ref] = ErasureRecord(log.text(i, "log_id") or "", day, log.text(i, "reason") or "")
    return out


def _status_rows(
    register: Register,
    today: dt.date,
    policy: Policy | None = None,
    only: tuple[int, str] | None = None,
) -> list[ClientStatus]:
    """A status for every Clients row that has a client ID, in row order; with ``only``
    (data-row index, client ID), that row's alone."""
    from sheetreg.register import paused_gc

    if only is None and policy is None:  # every client's status: computed once a day
        key = ("statuses", today)
        found = register.memo.get(key)
        if found is None:
            with paused_gc():  # tens of thousands of small, acyclic objects
                found = register.memo[key] = _status_rows_unpaused(register, today, None, None)
        return list(found)
    if only is not None and policy is None and ("statuses", today) in register.memo:
        by_row = register.memo.get(("status_by_row", today))
        if by_row is None:
            statuses = register.memo[("statuses", today)]
            by_row = register.memo[("status_by_row", today)] = {s.index: s for s in statuses}
        found_one = by_row.get(only[0])
        if found_one is not None and found_one.client_id == only[1]:
            return [found_one]
    with paused_gc():
        return _status_rows_unpaused(register, today, policy, only)


def _status_rows_unpaused(
    register: Register, today: dt.date, policy: Policy | None, only: tuple[int, str] | None
) -> list[ClientStatus]:
    clients = register.table("clients")
    if clients is None or not clients.has("client_id"):
        return []
    policy = policy or policy_from_settings(register.settings)
    memo = _Memo()
    invoices = _Invoices(register, policy, memo)
    records: dict[str, ErasureRecord] | None = None
    out: list[ClientStatus] = []
    ids = clients.column_values("client_id")
    ends = clients.column_values("end")
    billing = clients.column_values("billing_method")
    approvals = clients.column_values("approve_erasure")
    hold_until = clients.column_values("hold_until")
    hold_reason = clients.column_values("hold_reason")
    first = clients.header_row + 1
    automatic = policy.automatic
    grace = dt.timedelta(days=policy.after_days if automatic else 1)
    day = dt.timedelta(days=1)
    if only is None:
        # Every row: each column read once per distinct value (a register repeats its
        # dates and labels), as lists indexed by row.
        rows = clients.nonblank_rows()
        end_of: Callable[[int], dt.date | None] = _mapped(ends, memo.date).__getitem__
        billing_of: Callable[[int], str | None] = _mapped(billing, memo.billing_key).__getitem__
        approved_of: Callable[[int], bool] = _mapped(approvals, memo.is_yes).__getitem__
    else:
        rows = [only[0]]
        end_of = lambda i: memo.date(ends[i])  # noqa: E731
        billing_of = lambda i: memo.billing_key(billing[i])  # noqa: E731
        approved_of = lambda i: memo.is_yes(approvals[i])  # noqa: E731
    holds_of = invoices.holds
    for i in rows:
        raw = ids[i]
        cid = raw.strip() if raw.__class__ is str else values.id_text(raw)
        if not cid:
            continue
        row = first + i
        end = end_of(i)
        holds = holds_of(cid, today, billing_of(i))
        if cid[:2] == "P-" and PSEUDONYM.fullmatch(cid):  # is_pseudonym, of a stripped ID
            if records is None:
                records = erasure_records(register)
            out.append(
                ClientStatus(
                    cid,
                    row,
                    "ended",
                    end,
                    None,
                    tuple(holds),
                    False,
                    i,
                    False,
                    False,
                    True,
                    records.get(cid),
                    today,
                )
            )
            continue
        # Blocking holds come first: the invoices' (see _Invoices.holds), then this one.
        blocked = bool(holds) and holds[0].kind in BLOCKING_KINDS
        raw_until, raw_reason = hold_until[i], hold_reason[i]
        if raw_until != "" or raw_reason != "":  # two empty cells: no hold (the common case)
            manual = _manual_hold(clients, i, today, (raw_until, raw_reason), memo)
            if manual is not None:
                holds.insert(0, manual)
                blocked = True
        if end is None:
            state: State = "active"
        elif today <= end:
            state = "ending"
        else:
            state = "ended"
        approved = approved_of(i)
        due: dt.date | None = None
        if state == "ended" and end is not None:
            due = end + grace
            for hold in holds:
                if hold.kind not in BLOCKING_KINDS:
                    continue
                if hold.until is None:
                    due = None
                    break
                due = max(due, hold.until + day)
        awaiting = state == "ended" and not automatic and not approved and not blocked
        out.append(
            ClientStatus(
                cid,
                row,
                state,
                end,
                due,
                tuple(holds),
                awaiting,
                i,
                approved,
                automatic,
                False,
                None,
                today,
            )
        )
    return out


def _mapped(column: Sequence[Any], parse: Callable[[Any], Any]) -> list[Any]:
    """``parse`` of each cell of ``column``, called once per distinct value; a boolean,
    which equals a number (and may stand for it in a set), is parsed on its own."""
    distinct = set(column)
    if any(raw.__class__ is bool for raw in distinct):
        distinct = {raw for raw in column if raw.__class__ is not bool}
    seen = {raw: parse(raw) for raw in distinct if raw.__class__ is not bool}
    return [seen[raw] if raw.__class__ is not bool else parse(raw) for raw in column]


def client_statuses(register: Register, today: dt.date) -> dict[str, ClientStatus]:
    """Every client's status as of ``today``, by client ID (the first row of a repeated ID)."""
    out: dict[str, ClientStatus] = {}
    for status in _status_rows(register, today):
        out.setdefault(status.client_id, status)
    return out


# --- plain-words status text ------------------------------------------------------------------


def _hold_phrase(hold: Hold, lang: str, *, private: bool = True) -> str:
    """The hold in a few words. ``private`` (the workbook's own cell) may quote the Hold
    reason as typed; elsewhere (stdout, the log) the reason's cell is named instead."""
    fi = lang == "fi"
    numbers = hold.reason
    plural = "," in numbers
    if hold.kind == "open-invoice":
        return (
            ("avoimet laskut " if plural else "avoin lasku ")
            if fi
            else ("open invoices " if plural else "open invoice ")
        ) + numbers
    if hold.kind == "debt-collection":
        if fi:
            return ("laskut " if plural else "lasku ") + numbers + " perinnässä"
        return ("invoices " if plural else "invoice ") + numbers + " in debt collection"
    if hold.kind == "manual-hold":
        if hold.until is not None:
            text = (
                f"säilytys {fmt_date(hold.until)} asti"
                if fi
                else f"held until {fmt_date(hold.until)}"
            )
        else:
            text = "säilytys toistaiseksi" if fi else "held until further notice"
        if not private:
            return f"{text} ({hold.source})" if hold.source else text
        return f"{text} ({hold.reason})" if hold.reason else text
    until = fmt_date(hold.until) if hold.until else "?"
    return f"laskut säilytetään {until} asti" if fi else f"invoices kept until {until}"


def _kept_invoices_phrase(holds: Iterable[Hold], lang: str) -> str:
    dates = [h.until for h in holds if h.kind == "accounting-retention" and h.until]
    if not dates:
        return ""
    until = fmt_date(max(dates))
    return (
        f" – laskutiedot säilytetään {until} asti (kirjanpitolaki)"
        if lang == "fi"
        else f" – invoice data kept until {until} (Accounting Act)"
    )


def status_text(status: ClientStatus, lang: str) -> str:
    """The Privacy status cell's text in plain words, in ``lang`` ("fi" or "en")."""
    text = _status_text(status, lang)
    if status.suppressed and not status.erased:
        text += (
            " – suoramarkkinointikielto voimassa (aiempi pyyntö)"
            if lang == "fi"
            else " – direct-marketing objection on file (earlier request)"
        )
    return text


def _status_text(status: ClientStatus, lang: str) -> str:
    fi = lang == "fi"
    if status.erased:
        rec = status.erasure
        text = "Poistettu" if fi else "Erased"
        if rec is not None and rec.day is not None:
            text += f" {fmt_date(rec.day)}"
        if rec is not None and rec.log_id:
            text += f" ({'loki' if fi else 'log'} {rec.log_id})"
        return text + _kept_invoices_phrase(status.holds, lang)
    if status.state in {"active", "ending"}:
        if status.approved:
            blocking = [_hold_phrase(h, lang) for h in status.blocking]
            if blocking:
                head = "Poisto hyväksytty – odottaa: " if fi else "Erasure approved – waiting for: "
                return head + "; ".join(blocking)
            return (
                "Poisto hyväksytty – tehdään seuraavalla ajolla"
                if fi
                else "Erasure approved – done at the next run"
            )
        if status.state == "active":
            return "Aktiivinen" if fi else "Active"
        assert status.end is not None
        return f"Päättyy {fmt_date(status.end)}" if fi else f"Ends {fmt_date(status.end)}"
    assert status.end is not None
    head = f"Päättynyt {fmt_date(status.end)}" if fi else f"Ended {fmt_date(status.end)}"
    blocking = [_hold_phrase(h, lang) for h in status.blocking]
    if blocking:
        return (
            head + (" – poisto estetty: " if fi else " – erasure blocked: ") + "; ".join(blocking)
        )
    if status.approved:
        return head + (
            " – poisto hyväksytty, tehdään seuraavalla ajolla"
            if fi
            else " – erasure approved, done at the next run"
        )
    if status.automatic and status.erasure_due is not None:
        if status.as_of is not None and status.erasure_due > status.as_of:
            return head + (
                f" – poistetaan {fmt_date(status.erasure_due)}"
                if fi
                else f" – to be erased on {fmt_date(status.erasure_due)}"
            )
        return head + (
            " – poistetaan seuraavalla ajolla" if fi else " – to be erased at the next run"
        )
    return head + (" – poisto odottaa hyväksyntää" if fi else " – erasure awaits approval")


# --- flagging -------------------------------------------------------------------------------


@quick_init  # one per client on a first run
@dataclass(frozen=True, slots=True)
class FlagChange:
    """One Privacy status cell whose text changes: ``sheet`` and ``ref`` ("Asiakkaat", "S14")."""

    client_id: str
    sheet: str
    ref: str
    state: str
    text: str

    @property
    def cell(self) -> str:
        """The cell with its sheet, "Asiakkaat!S14"."""
        return f"{self.sheet}!{self.ref}"


def flag_changes(
    register: Register,
    today: dt.date,
    lang: str | None = None,
    suppressed_rows: Iterable[int] = (),
) -> tuple[list[FlagChange], list[ClientStatus], CellEdit | None]:
    """The Privacy status cells whose text changes as of ``today``.

    Returns the changes, every client's status, and the header cell to write when the Clients
    sheet has no Privacy status column yet (it is then added after the last used column).
    ``suppressed_rows`` are data-row indices whose contact data match a suppression entry.
    """
    from sheetreg.register import column_letter
    from sheetreg.xlsxpatch import CellEdit

    clients = register.table("clients")
    statuses = _status_rows(register, today)
    lang = lang or register.lang
    if clients is None:
        return [], statuses, None
    header: CellEdit | None = None
    if clients.has("privacy_status"):
        letter = clients.letter("privacy_status")
        current = clients.column_values("privacy_status")
    else:
        width = max([len(clients.header), *(len(r) for r in clients.rows)])
        letter = column_letter(clients.first_col + width)
        current = ("",) * len(clients.rows)
        header = CellEdit(
            clients.name,
            f"{letter}{clients.header_row}",
            CLIENTS.column("privacy_status").label(lang),
        )
    changes = []
    suppressed = set(suppressed_rows)
    if suppressed:
        statuses = [
            replace(s, suppressed=True)
            if s.index in suppressed and not clients.yes(s.index, "marketing_objection")
            else s
            for s in statuses
        ]
    # Most clients share their text with others ("Aktiivinen", "Päättynyt 3.11.2026 – …"):
    # one string each, not one per client.
    texts: dict[str, str] = {}
    sheet = clients.name
    for status in statuses:
        text = status_text(status, lang)
        now = current[status.index]
        if (now.strip() if now.__class__ is str else values.as_text(now) or "") != text:
            changes.append(
                FlagChange(
                    status.client_id,
                    sheet,
                    f"{letter}{status.row}",
                    "erased" if status.erased else status.state,
                    texts.setdefault(text, text),
                )
            )
    return changes, statuses, header


def flag_edits(
    register: Register,
    today: dt.date,
    lang: str | None = None,
    suppressed_rows: Iterable[int] = (),
) -> list[CellEdit]:
    """The cell edits that bring every Privacy status cell up to date (none when current)."""
    from sheetreg.xlsxpatch import CellEdit

    changes, _, header = flag_changes(register, today, lang, suppressed_rows)
    edits = [CellEdit(c.sheet, c.ref, c.text) for c in changes]
    if header is not None and edits:
        edits.insert(0, header)
    return edits


# --- the erasure plan -------------------------------------------------------------------------


@dataclass(frozen=True)
class CellChange:
    """One cell an erasure changes.

    ``action`` is "empty", "pseudonymise" (the client ID becomes the keyed reference),
    "set" (``value`` is a status text or Yes label, never personal data) or "rewrite" (a
    sheetreg-written text that mentions the client ID gets the reference instead).
    """

    sheet: str
    cell: str
    field: str  # "clients.phone", or "clients.?" for a column the schema does not know
    action: str
    value: str | None = None

    @property
    def ref(self) -> str:
        """ "Asiakkaat!D14"."""
        return f"{self.sheet}!{self.cell}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: where and what kind of change, never the cell's value."""
        out: dict[str, Any] = {"cell": self.ref, "field": self.field, "action": self.action}
        if self.action == "set":
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class Recipient:
    """Someone who received the client's data and must be told of an erasure (Art. 19)."""

    name: str
    basis: str  # a DISCLOSURE_BASES key, or "partner"
    source: str

    def to_dict(self) -> dict[str, str]:
        """The JSON form."""
        return {"name": self.name, "basis": self.basis, "source": self.source}


@dataclass(frozen=True)
class Refusal:
    """Why (part of) an erasure cannot be done now."""

    code: str
    message: str
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        """The JSON form."""
        return {"code": self.code, "message": self.message, "source": self.source}


@dataclass
class ErasurePlan:
    """What erasing one client would do, decided from the register as read.

    ``scope`` is "full" (the client becomes a pseudonymous tombstone), "partial" (on a request:
    what no hold covers is erased now, the rest when the holds end) or "none" (refused, or
    nothing left to erase). ``sha256`` binds the plan to the workbook it was made from.
    """

    client_id: str
    reason: str
    today: dt.date
    scope: str
    lang: str
    sha256: str
    row: int = 0
    status: ClientStatus | None = None
    changes: list[CellChange] = field(default_factory=list)
    kept: list[Hold] = field(default_factory=list)
    recipients: list[Recipient] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    suppression: bool = False
    erased_fields: tuple[str, ...] = ()
    pseudonymised: dict[str, int] = field(default_factory=dict)  # sheet key -> rows
    scheduled: str = ""

    @property
    def allowed(self) -> bool:
        """True when executing the plan changes something."""
        return self.scope != "none" and bool(self.changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; it never holds a cell's personal value."""
        return {
            "client_id": self.client_id,
            "reason": self.reason,
            "today": self.today.isoformat(),
            "scope": self.scope,
            "allowed": self.allowed,
            "refusals": [r.to_dict() for r in self.refusals],
            "status": self.status.to_dict() if self.status else None,
            "erase": [c.to_dict() for c in self.changes if c.action == "empty"],
            "pseudonymise": [c.to_dict() for c in self.changes if c.action == "pseudonymise"],
            "set": [c.to_dict() for c in self.changes if c.action in ("set", "rewrite")],
            "fields_erased": list(self.erased_fields),
            "keep": [h.to_dict() for h in self.kept],
            "recipients": [r.to_dict() for r in self.recipients],
            "suppression_entry": self.suppression,
            "scheduled": self.scheduled,
        }


def _msg(lang: str, fi: str, en: str) -> str:
    return fi if lang == "fi" else en


def recipients_for(register: Register, client_id: str) -> list[Recipient]:
    """Who received this client's data: the Disclosures sheet and the Partner column."""
    out: list[Recipient] = []
    seen: set[str] = set()
    clients = register.table("clients")
    if clients is not None and clients.has("partner"):
        for i in _rows_with_id(clients, client_id):
            name = clients.text(i, "partner")
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                out.append(
                    Recipient(name, "partner", f"{clients.name}!{clients.ref(i, 'partner')}")
                )
    disclosures = register.table("disclosures")
    if disclosures is not None and disclosures.has("recipient"):
        for i in _rows_with_id(disclosures, client_id):
            name = disclosures.text(i, "recipient")
            if not name or name.casefold() in seen:
                continue
            seen.add(name.casefold())
            try:
                basis = values.as_choice(disclosures.get(i, "basis"), DISCLOSURE_BASES)
            except ValueError:
                basis = None
            out.append(
                Recipient(
                    name,
                    basis.key if basis else "",
                    f"{disclosures.name}!{disclosures.ref(i, 'recipient')}",
                )
            )
    return out


class RowIndex:
    """Client ID -> the data-row indices that carry it, in row order.

    A register's IDs are mostly on one row each (a client, her disclosure): such an ID keeps
    its row as a bare int, and only a repeated one a list. At 100,000 clients and 200,000
    invoices that is 32 bytes an ID instead of a list's 104.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: dict[str, int | list[int]] | None = None) -> None:
        self._rows = rows if rows is not None else {}

    def get(self, client_id: str) -> tuple[int, ...]:
        """The rows of ``client_id`` (none when it is not on the sheet)."""
        found = self._rows.get(client_id)
        if found is None:
            return ()
        return (found,) if found.__class__ is int else tuple(found)  # type: ignore[arg-type]

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._rows

    @property
    def rows(self) -> dict[str, int | list[int]]:
        """The index itself: an ID's row as an int, or its rows as a list (read only)."""
        return self._rows

    def __len__(self) -> int:
        return len(self._rows)


def rows_by_id(table: Table | None) -> RowIndex:
    """Client ID -> data-row indices of a sheet with a Client ID column (built once per
    table; rows without an ID are left out)."""
    if table is None or not table.has("client_id"):
        return RowIndex()
    index: RowIndex | None = table.memo.get("rows_by_id")
    if index is None:
        rows: dict[str, Any] = {}
        id_text = values.id_text
        cids = [
            r.strip() if r.__class__ is str else id_text(r)
            for r in table.column_values("client_id")
        ]
        put = rows.setdefault
        for i, cid in enumerate(cids):
            if not cid:
                continue
            found = put(cid, i)
            if found is not i:  # a second row: the ID now keeps a list
                if found.__class__ is int:
                    rows[cid] = [found, i]
                else:
                    found.append(i)
        index = table.memo["rows_by_id"] = RowIndex(rows)
    return index


def _rows_with_id(table: Table, client_id: str) -> list[int]:
    """Data-row indices whose client ID is ``client_id``."""
    return list(rows_by_id(table).get(client_id))


def _row_cells(table: Table, i: int) -> Iterable[tuple[int, str, Any]]:
    """(column index, field key, raw value) of every non-empty cell of data row ``i``."""
    keys = {idx: key for key, idx in table.columns.items()}
    for idx, raw in enumerate(table.rows[i]):
        if not values.is_empty(raw):
            key = keys.get(idx, "?")  # a column the schema does not know
            yield idx, f"{table.spec.key}.{key}", raw


def _change(table: Table, i: int, idx: int, fkey: str, action: str) -> CellChange:
    cell = f"{table.letter_at(idx)}{table.excel_row(i)}"
    return CellChange(table.name, cell, fkey, action)


def plan_erasure(
    register: Register,
    client_id: str,
    today: dt.date,
    reason: str | None = None,
    *,
    lang: str | None = None,
    fields: Iterable[str] | None = None,
    force: bool = False,
) -> ErasurePlan:
    """Plan the erasure of one client as of ``today``; never touches the file.

    ``reason`` is "request" (the person asked: everything no hold covers is erased now) or
    "ended" (the relationship ended: refused while an open invoice, debt collection or a
    manual hold keeps the data); None picks "ended" for an ended relationship, else "request".
    ``force`` (re-applying a logged erasure) ignores the holds that blocked nothing back then;
    ``fields`` (re-applying a logged partial erasure) erases exactly those Clients fields.
    """
    lang = lang or register.lang
    client_id = client_id.strip()
    sha = register.snapshot.sha256
    clients = register.table("clients")
    rows = _rows_with_id(clients, client_id) if clients is not None else []
    plan = ErasurePlan(client_id, reason or "request", today, "none", lang, sha)
    if not rows:
        plan.refusals.append(
            Refusal(
                "not-found",
                _msg(
                    lang,
                    f"Asiakasnumeroa {client_id} ei ole välilehdellä {CLIENTS.label(lang)}.",
                    f"Client ID {client_id} is not on the {CLIENTS.label(lang)} sheet.",
                ),
            )
        )
        return plan
    assert clients is not None
    if len(rows) > 1:
        where = ", ".join(str(clients.excel_row(i)) for i in rows)
        plan.refusals.append(
            Refusal(
                "duplicate-client-id",
                _msg(
                    lang,
                    f"Asiakasnumero {client_id} on usealla rivillä ({where}); korjaa ensin.",
                    f"Client ID {client_id} is on several rows ({where}); fix that first.",
                ),
                f"{clients.name}!{clients.ref(rows[0], 'client_id')}",
            )
        )
        return plan
    i = rows[0]
    status = _status_rows(register, today, only=(i, client_id))[0]
    plan.status, plan.row = status, status.row
    if reason is None:
        reason = "ended" if status.state == "ended" else "request"
    plan.reason = reason
    plan.recipients = recipients_for(register, client_id)
    if status.erased:
        plan.refusals.append(
            Refusal(
                "already-erased",
                _msg(lang, "Asiakas on jo poistettu.", "The client is already erased."),
            )
        )
        return plan
    if reason == "ended" and status.state != "ended" and not force:
        when = fmt_date(status.end) if status.end else "–"
        plan.refusals.append(
            Refusal(
                "not-ended",
                _msg(
                    lang,
                    f"Asiakkuus ei ole päättynyt (päättymispäivä {when}). Jos asiakas pyysi "
                    "poistoa, käytä syytä request.",
                    f"The relationship has not ended (end date {when}). If the client asked "
                    "for erasure, use the reason request.",
                ),
            )
        )
        return plan
    blocking = [] if force or fields is not None else list(status.blocking)
    if blocking and reason == "ended":
        for hold in blocking:
            plan.refusals.append(_hold_refusal(hold, lang))
        plan.kept = list(status.holds)
        return plan
    if blocking or fields is not None:
        _plan_partial(register, plan, i, blocking, fields)
    else:
        _plan_full(register, plan, i, status, today)
    return plan


def _hold_refusal(hold: Hold, lang: str) -> Refusal:
    phrase = _hold_phrase(hold, lang, private=False)
    why = {
        "open-invoice": _msg(
            lang,
            "laskun tiedot tarvitaan saatavan perimiseen",
            "the invoice's data are needed to collect it",
        ),
        "debt-collection": _msg(lang, "saatava on perinnässä", "the claim is in debt collection"),
        "manual-hold": _msg(lang, "säilytys on merkitty rekisteriin", "a hold is recorded"),
    }[hold.kind]
    head = _msg(lang, "Poisto estetty: ", "Erasure blocked: ")
    return Refusal(hold.kind, f"{head}{phrase} – {why} ({hold.ground}).", hold.source)


def _covered(blocking: Iterable[Hold]) -> set[str]:
    covered: set[str] = set()
    for hold in blocking:
        covered.update(hold.fields)
    return covered


def _plan_partial(
    register: Register,
    plan: ErasurePlan,
    i: int,
    blocking: list[Hold],
    fields: Iterable[str] | None,
) -> None:
    clients = register.table("clients")
    assert clients is not None
    lang = plan.lang
    covered = _covered(blocking)
    wanted = set(fields) if fields is not None else None
    erased: list[str] = []
    for idx, fkey, _raw in _row_cells(clients, i):
        key = fkey.split(".", 1)[1]
        # Columns the schema does not know may be what a hold needs: they go with the rest.
        if key in _PARTIAL_KEEPS or key == "?":
            continue
        if wanted is not None:
            if fkey not in wanted:
                continue
        elif fkey in covered or "clients.*" in covered:
            continue
        plan.changes.append(_change(clients, i, idx, fkey, "empty"))
        if fkey not in erased:
            erased.append(fkey)
    plan.erased_fields = tuple(erased)
    plan.kept = list(blocking) + [
        h for h in (plan.status.holds if plan.status else ()) if not h.blocks
    ]
    if not plan.changes:
        plan.refusals.extend(_hold_refusal(h, lang) for h in blocking)
        plan.refusals.append(
            Refusal(
                "nothing-to-erase",
                _msg(
                    lang,
                    "Mitään ei voi poistaa nyt: säilytysperusteet kattavat kaikki jäljellä "
                    "olevat tiedot.",
                    "Nothing can be erased now: the holds cover all the remaining data.",
                ),
            )
        )
        return
    plan.scope = "partial"
    # The rest is erased when the holds end: the row is marked approved for the weekly job.
    if clients.has("approve_erasure") and not clients.yes(i, "approve_erasure"):
        plan.changes.append(
            CellChange(
                clients.name,
                clients.ref(i, "approve_erasure"),
                "clients.approve_erasure",
                "set",
                YES_NO[0].label(lang),
            )
        )
    if blocking:
        phrases = "; ".join(_hold_phrase(h, lang, private=False) for h in blocking)
        plan.scheduled = _msg(
            lang,
            f"Loput poistetaan, kun nämä päättyvät: {phrases}.",
            f"The rest is erased when these end: {phrases}.",
        )
    if plan.status is not None and clients.has("privacy_status"):
        after = replace(plan.status, approved=True)
        plan.changes.append(
            CellChange(
                clients.name,
                clients.ref(i, "privacy_status"),
                "clients.privacy_status",
                "set",
                status_text(after, lang),
            )
        )


def _plan_full(
    register: Register, plan: ErasurePlan, i: int, status: ClientStatus, today: dt.date
) -> None:
    clients = register.table("clients")
    assert clients is not None
    erased: list[str] = []
    plan.suppression = clients.yes(i, "marketing_objection")
    for idx, fkey, _raw in _row_cells(clients, i):
        key = fkey.split(".", 1)[1]
        if key == "client_id":
            plan.changes.append(_change(clients, i, idx, fkey, "pseudonymise"))
        elif key == "privacy_status":
            continue  # set below, with the log's ID and date
        elif key == "marketing_objection" and plan.suppression:
            continue  # the visible half of the suppression entry (Art. 21(3))
        else:
            plan.changes.append(_change(clients, i, idx, fkey, "empty"))
            if fkey not in erased:
                erased.append(fkey)
    if clients.has("privacy_status"):
        plan.changes.append(
            CellChange(
                clients.name,
                clients.ref(i, "privacy_status"),
                "clients.privacy_status",
                "set",
                None,  # "Poistettu <date> (loki <id>) …", filled in when executed
            )
        )
    plan.pseudonymised["clients"] = 1
    policy = policy_from_settings(register.settings)
    invoices = register.table("invoices")
    kept_invoices = False
    if invoices is not None:
        for j in _rows_with_id(invoices, plan.client_id):
            day = invoices.date(j, "invoice_date")
            until = accounting_retention_until(day, policy.fy_end) if day else None
            keep = until is None or today <= until
            for idx, fkey, _raw in _row_cells(invoices, j):
                key = fkey.split(".", 1)[1]
                if keep and key == "client_id":
                    plan.changes.append(_change(invoices, j, idx, fkey, "pseudonymise"))
                elif keep and fkey in ACCOUNTING_FIELDS:
                    continue
                else:
                    plan.changes.append(_change(invoices, j, idx, fkey, "empty"))
                    if fkey not in erased:
                        erased.append(fkey)
            if keep:
                kept_invoices = True
                plan.pseudonymised["invoices"] = plan.pseudonymised.get("invoices", 0) + 1
    for key in ("requests", "disclosures"):
        table = register.table(key)
        if table is None:
            continue
        for j in _rows_with_id(table, plan.client_id):
            for idx, fkey, raw in _row_cells(table, j):
                column = fkey.split(".", 1)[1]
                if column == "client_id":
                    plan.changes.append(_change(table, j, idx, fkey, "pseudonymise"))
                elif column == "?":
                    plan.changes.append(_change(table, j, idx, fkey, "empty"))
                    if fkey not in erased:
                        erased.append(fkey)
                elif table.column_spec(column).written_by_sheetreg and _mentions(
                    raw, plan.client_id
                ):
                    plan.changes.append(_change(table, j, idx, fkey, "rewrite"))
            plan.pseudonymised[key] = plan.pseudonymised.get(key, 0) + 1
    plan.erased_fields = tuple(erased)
    plan.kept = (
        [h for h in status.holds if h.kind == "accounting-retention"] if kept_invoices else []
    )
    plan.scope = "full"


def mentions_pattern(client_id: str) -> re.Pattern[str]:
    """The client ID as a whole token (A1001 does not match inside A10010)."""
    return re.compile(r"(?<![0-9A-Za-z])" + re.escape(client_id) + r"(?![0-9A-Za-z])")


def _mentions(raw: Any, client_id: str) -> bool:
    text = values.as_text(raw)
    return bool(text) and mentions_pattern(client_id).search(text) is not None


def due_erasures(register: Register, today: dt.date) -> list[ErasurePlan]:
    """Plans for the weekly job: rows whose Approve erasure says Kyllä/Yes, and, under the
    automatic policy, ended relationships whose erasure date has come.

    A plan may be refused (an ended relationship with an open invoice): the job reports it.
    Approved rows whose holds still cover everything give no plan (nothing new to do).
    """
    plans = []
    for status in _status_rows(register, today):
        if status.erased:
            expired = plan_retention_ended(register, status, today)
            if expired is not None:
                plans.append(expired)
            continue
        due_auto = (
            status.automatic
            and status.state == "ended"
            and status.erasure_due is not None
            and status.erasure_due <= today
        )
        if not (status.approved or due_auto):
            continue
        reason = "ended" if status.state == "ended" else "request"
        plan = plan_erasure(register, status.client_id, today, reason)
        if plan.scope == "none" and any(r.code == "nothing-to-erase" for r in plan.refusals):
            continue
        plans.append(plan)
    return plans


def plan_retention_ended(
    register: Register, status: ClientStatus, today: dt.date
) -> ErasurePlan | None:
    """For an erased client: empty the invoice rows whose accounting retention has ended.

    The rows carry the pseudonymous reference; once 31.12 of the sixth year has passed the
    Accounting Act no longer needs them. None when no row has expired.
    """
    invoices = register.table("invoices")
    if invoices is None or not status.erased:
        return None
    policy = policy_from_settings(register.settings)
    plan = ErasurePlan(
        status.client_id, "retention-ended", today, "none", register.lang, register.snapshot.sha256
    )
    plan.status, plan.row = status, status.row
    erased: list[str] = []
    for j in _rows_with_id(invoices, status.client_id):
        day = invoices.date(j, "invoice_date")
        if day is None or today <= accounting_retention_until(day, policy.fy_end):
            continue
        for idx, fkey, _raw in _row_cells(invoices, j):
            plan.changes.append(_change(invoices, j, idx, fkey, "empty"))
            if fkey not in erased:
                erased.append(fkey)
    if not plan.changes:
        return None
    plan.scope = "retention-ended"
    plan.erased_fields = tuple(erased)
    plan.kept = [h for h in status.holds if h.kind == "accounting-retention"]
    clients = register.table("clients")
    if clients is not None and clients.has("privacy_status"):
        text = status_text(replace(status, holds=tuple(plan.kept)), register.lang)
        if (clients.text(status.index, "privacy_status") or "") != text:
            plan.changes.append(
                CellChange(
                    clients.name,
                    clients.ref(status.index, "privacy_status"),
                    "clients.privacy_status",
                    "set",
                    text,
                )
            )
    return plan
