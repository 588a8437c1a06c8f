"""Validation: pure functions from a register and a date to findings.

Each check walks one column at a time (a register may have 100,000 rows, and a column-wise
loop keeps the per-cell cost to a type test or a compiled regex).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from sheetreg import values
from sheetreg.findings import Finding, Report, make
from sheetreg.register import Register, Table, column_index, column_letter
from sheetreg.schema import CLIENTS, DATA_SHEETS, Column, Kind, match_column

CLIENT_REF_SHEETS = ("invoices", "requests", "disclosures")
FUTURE_CHECKED = {("clients", "start"), ("invoices", "invoice_date"), ("requests", "received")}


def validate(register: Register, today: dt.date, lang: str | None = None) -> Report:
    """Every finding in the register as of ``today``, messages in ``lang``."""
    lang = lang or register.lang
    findings: list[Finding] = []
    for spec in DATA_SHEETS:
        table = register.table(spec.key)
        if table is None:
            if spec.required:
                findings.append(
                    make(
                        "missing-sheet",
                        lang,
                        spec.label(lang),
                        label_fi=spec.fi,
                        label_en=spec.en,
                    )
                )
            continue
        findings.extend(check_structure(table, register, lang))
        findings.extend(check_cells(table, today, lang))
    clients = register.table("clients")
    if clients is not None:
        findings.extend(check_clients(clients, lang))
        ids = client_ids(clients)
        for key in CLIENT_REF_SHEETS:
            table = register.table(key)
            if table is not None:
                findings.extend(check_client_refs(table, ids, lang))
    findings.extend(check_hetu(register, lang))
    order = {name: i for i, name in enumerate(register.sheet_names)}
    findings.sort(
        key=lambda f: (
            order.get(f.sheet, -1),
            f.row or 0,
            column_index(f.column) if f.column else -1,
            f.code,
        )
    )
    return Report(str(register.path), findings)


def _labels(col: Column) -> dict[str, str]:
    return {"label_fi": col.fi, "label_en": col.en}


def check_structure(table: Table, register: Register, lang: str) -> Iterator[Finding]:
    """Missing, duplicate and unknown columns; merged cells; formulas in data cells."""
    spec = table.spec
    hrow = table.header_row
    for col in spec.columns:
        if col.required and not table.has(col.key):
            yield make("missing-column", lang, table.name, **_labels(col))
    if spec is CLIENTS and not table.has("phone") and not table.has("email"):
        yield make("missing-column", lang, table.name, **_labels(spec.column("phone")))
    for idx, header in table.unknown_columns:
        col = _matching(table, header)
        letter = table.letter_at(idx)
        if col:
            yield make(
                "duplicate-column",
                lang,
                table.name,
                column=letter,
                row=hrow,
                field_key=col.key,
                other_column=table.letter(col.key),
                **_labels(col),
            )
        else:
            yield make("unknown-column", lang, table.name, column=letter, row=hrow)
    for rng in register.merged_ranges.get(table.name, []):
        first = rng.split(":")[0]
        letters = first.rstrip("0123456789")
        yield make(
            "merged-cells",
            lang,
            table.name,
            column=letters,
            row=int(first[len(letters) :]),
            range=rng,
        )
    for ref in register.formula_cells.get(table.name, []):
        letters = ref.rstrip("0123456789")
        row = int(ref[len(letters) :])
        key = _key_at(table, column_index(letters))
        yield make("formula-in-data", lang, table.name, column=letters, row=row, field_key=key)


def _matching(table: Table, header: str) -> Column | None:
    return match_column(table.spec, header)


def _key_at(table: Table, col: int) -> str | None:
    for key, idx in table.columns.items():
        if table.first_col + idx == col:
            return key
    return None


def _nonblank(table: Table) -> list[int]:
    empty = values.is_empty
    return [i for i, row in enumerate(table.rows) if not all(empty(v) for v in row)]


def check_cells(table: Table, today: dt.date, lang: str) -> Iterator[Finding]:
    """Per-cell checks of every known column: required values, types, formats, dates."""
    rows = _nonblank(table)
    empty = values.is_empty
    for col in table.spec.columns:
        if not table.has(col.key) or col.written_by_sheetreg:
            continue
        idx = table.columns[col.key]
        letter = table.letter(col.key)
        data = table.rows

        def at(i: int, code: str, col: Column = col, letter: str = letter, **p: Any) -> Finding:
            return make(
                code,
                lang,
                table.name,
                column=letter,
                row=table.excel_row(i),
                field_key=col.key,
                **p,
            )

        if col.required:
            for i in rows:
                if empty(data[i][idx]):
                    yield at(i, "missing-value", **_labels(col))
        checker = _CHECKS.get(col.kind)
        if checker is not None:
            for i in rows:
                raw = data[i][idx]
                if raw == "" or raw is None:
                    continue
                code = checker(raw, col)
                if code is not None:
                    yield at(i, code, **_params(code, col))
        if (table.spec.key, col.key) in FUTURE_CHECKED:
            for i in rows:
                raw = data[i][idx]
                if isinstance(raw, dt.datetime):
                    day: dt.date | None = raw.date()
                elif isinstance(raw, dt.date):
                    day = raw
                else:
                    try:
                        day = values.as_date(raw)
                    except ValueError:
                        continue
                if day is not None and day > today:
                    yield at(
                        i,
                        "future-date",
                        today_fi=f"{today.day}.{today.month}.{today.year}",
                        today_en=today.isoformat(),
                        **_labels(col),
                    )


def _params(code: str, col: Column) -> dict[str, str]:
    if code == "invalid-choice":
        return {
            "choices_fi": ", ".join(c.fi for c in col.choices),
            "choices_en": ", ".join(c.en for c in col.choices),
            **_labels(col),
        }
    return _labels(col)


def _check_phone(raw: Any, col: Column) -> str | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return "phone-stored-as-number"
    if not isinstance(raw, str) or not values.phone_is_valid(raw.strip()):
        return "invalid-phone"
    return None


def _check_email(raw: Any, col: Column) -> str | None:
    if not isinstance(raw, str) or not values.email_is_valid(raw.strip()):
        return "invalid-email"
    return None


def _check_postal(raw: Any, col: Column) -> str | None:
    return None if values.postal_is_valid(raw) else "invalid-postal-code"


def _check_date(raw: Any, col: Column) -> str | None:
    if isinstance(raw, dt.date):
        return None
    try:
        values.as_date(raw)
    except ValueError:
        return "invalid-date"
    return None


def _check_choice(raw: Any, col: Column) -> str | None:
    try:
        values.as_choice(raw, col.choices)
    except ValueError:
        return "invalid-choice"
    return None


def _check_money(raw: Any, col: Column) -> str | None:
    if isinstance(raw, float | int) and not isinstance(raw, bool):
        return None
    try:
        values.as_money(raw)
    except ValueError:
        return "invalid-amount"
    return None


_CHECKS: dict[Kind, Callable[[Any, Column], str | None]] = {
    Kind.PHONE: _check_phone,
    Kind.EMAIL: _check_email,
    Kind.POSTAL: _check_postal,
    Kind.DATE: _check_date,
    Kind.YESNO: _check_choice,
    Kind.CHOICE: _check_choice,
    Kind.MONEY: _check_money,
}


def client_ids(clients: Table) -> set[str]:
    """Every client ID on the Clients sheet, as text."""
    out = set()
    for raw in clients.column_values("client_id"):
        text = values.as_text(raw)
        if text is not None:
            out.add(text)
    return out


def check_clients(clients: Table, lang: str) -> Iterator[Finding]:
    """Rules across a client's row and across clients."""
    name = clients.name
    rows = _nonblank(clients)

    def at(i: int, key: str, code: str, **p: Any) -> Finding:
        return make(
            code,
            lang,
            name,
            column=clients.letter(key),
            row=clients.excel_row(i),
            field_key=key,
            **p,
        )

    has = clients.has
    if has("client_id"):
        seen: dict[str, int] = {}
        for i in rows:
            cid = values.as_text(clients.get(i, "client_id"))
            if cid is None:
                continue
            if cid in seen:
                yield at(i, "client_id", "duplicate-client-id", other_row=seen[cid])
            else:
                seen[cid] = clients.excel_row(i)
    if has("phone") or has("email"):
        key = "phone" if has("phone") else "email"
        for i in rows:
            if values.is_empty(clients.get(i, "phone")) and values.is_empty(
                clients.get(i, "email")
            ):
                yield at(
                    i,
                    key,
                    "missing-value",
                    label_fi="Puhelin tai sähköposti",
                    label_en="Phone or e-mail",
                )
    if has("start") and has("end"):
        for i in rows:
            start, end = clients.date(i, "start"), clients.date(i, "end")
            if start is not None and end is not None and end < start:
                yield at(i, "end", "end-before-start")
    if has("billing_method"):
        yield from _check_billing(clients, rows, lang)
    if has("client_id") and has("first_name") and has("last_name"):
        yield from _check_duplicate_people(clients, rows, lang)


_BILLING_NEEDS = {
    "paper": ("street", "postal_code", "city"),
    "email": ("email",),
}


def _check_billing(clients: Table, rows: list[int], lang: str) -> Iterator[Finding]:
    billing = clients.column_spec("billing_method")
    for i in rows:
        try:
            method = values.as_choice(clients.get(i, "billing_method"), billing.choices)
        except ValueError:
            continue  # reported as invalid-choice
        if method is None:
            continue
        needs = _BILLING_NEEDS.get(method.key, ())
        missing = [k for k in needs if values.is_empty(clients.get(i, k))]
        if missing:
            cols = [clients.spec.column(k) for k in missing]
            yield make(
                "billing-address-incomplete",
                lang,
                clients.name,
                column=clients.letter("billing_method"),
                row=clients.excel_row(i),
                field_key="billing_method",
                method_fi=method.fi,
                method_en=method.en,
                needs_fi=", ".join(c.fi for c in cols),
                needs_en=", ".join(c.en for c in cols),
            )


def _check_duplicate_people(clients: Table, rows: list[int], lang: str) -> Iterator[Finding]:
    seen: dict[tuple[str, str, str], tuple[int, str]] = {}
    for i in rows:
        first = values.as_text(clients.get(i, "first_name"))
        last = values.as_text(clients.get(i, "last_name"))
        cid = values.as_text(clients.get(i, "client_id"))
        if not first or not last or cid is None:
            continue
        person = (" ".join(first.split()).casefold(), " ".join(last.split()).casefold())
        contacts = []
        phone = clients.get(i, "phone")
        if isinstance(phone, str) and phone.strip():
            contacts.append("p:" + values.phone_digits(phone.strip()))
        email = values.as_text(clients.get(i, "email"))
        if email:
            contacts.append("e:" + email.casefold())
        reported = False
        for contact in contacts:
            key = (*person, contact)
            prior = seen.get(key)
            if prior is not None and prior[1] != cid and not reported:
                reported = True
                yield make(
                    "duplicate-person",
                    lang,
                    clients.name,
                    column=clients.letter("client_id"),
                    row=clients.excel_row(i),
                    field_key="client_id",
                    other_row=prior[0],
                )
            seen.setdefault(key, (clients.excel_row(i), cid))


def check_client_refs(table: Table, ids: set[str], lang: str) -> Iterator[Finding]:
    """Invoices, requests and disclosures must name a client on the Clients sheet."""
    if not table.has("client_id"):
        return
    idx = table.columns["client_id"]
    letter = table.letter("client_id")
    for i in _nonblank(table):
        cid = values.as_text(table.rows[i][idx])
        if cid is not None and cid not in ids:
            yield make(
                "unknown-client",
                lang,
                table.name,
                column=letter,
                row=table.excel_row(i),
                field_key="client_id",
            )


def check_hetu(register: Register, lang: str) -> Iterator[Finding]:
    """A valid Finnish personal identity code anywhere in the workbook's sheets."""
    for table in register.tables.values():
        keys = {idx: key for key, idx in table.columns.items()}
        width = max((len(r) for r in table.rows), default=0)
        for idx in range(width):
            column = [r[idx] if idx < len(r) else "" for r in table.rows]
            # One regex pass over the joined column; map hits back to rows only on a match.
            joined = "\n".join(v if isinstance(v, str) else "" for v in column)
            if not values.find_hetus(joined):
                continue
            for i, v in enumerate(column):
                if isinstance(v, str) and values.find_hetus(v):
                    yield make(
                        "hetu-found",
                        lang,
                        table.name,
                        column=table.letter_at(idx),
                        row=table.excel_row(i),
                        field_key=keys.get(idx),
                    )
    for name, (start, grid) in register.other_sheets.items():
        for r, row in enumerate(grid):
            for c, v in enumerate(row):
                if isinstance(v, str) and values.find_hetus(v):
                    yield make(
                        "hetu-found",
                        lang,
                        name,
                        column=column_letter(start[1] + c),
                        row=start[0] + r + 1,
                    )
