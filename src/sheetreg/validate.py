"""Validation: pure functions from a register and a date to findings.

Each check walks one column at a time (a register may have 100,000 rows, and a column-wise
loop keeps the per-cell cost to a type test or a compiled regex).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from sheetreg import values
from sheetreg.findings import Finding, Report, make
from sheetreg.register import Register, Table, column_index, column_letter, paused_gc
from sheetreg.schema import (
    CLIENTS,
    DATA_SHEETS,
    Choice,
    Column,
    Kind,
    match_column,
    match_sheet,
)

CLIENT_REF_SHEETS = ("invoices", "requests", "disclosures")
FUTURE_CHECKED = {("clients", "start"), ("invoices", "invoice_date"), ("requests", "received")}


def validate(register: Register, today: dt.date, lang: str | None = None) -> Report:
    """Every finding in the register as of ``today``, messages in ``lang``."""
    with paused_gc():
        return _validate(register, today, lang or register.lang)


def _validate(register: Register, today: dt.date, lang: str) -> Report:
    findings = [*missing_sheets(register, lang), *sheet_findings(register, today, lang)]
    clients = register.table("clients")
    if clients is not None:
        findings += reference_findings(register, client_ids(clients), lang)
    return report_of(register, findings)


def missing_sheets(register: Register, lang: str) -> Iterator[Finding]:
    """Each required register sheet that no tab of the workbook stands for."""
    present = {spec.key for spec in map(match_sheet, register.sheet_names) if spec is not None}
    for spec in DATA_SHEETS:
        if spec.required and spec.key not in present:
            yield make("missing-sheet", lang, spec.label(lang), label_fi=spec.fi, label_en=spec.en)


def sheet_findings(register: Register, today: dt.date, lang: str) -> list[Finding]:
    """Findings within the loaded sheets: structure, cells, client rows, HETU anywhere."""
    with paused_gc():
        findings: list[Finding] = []
        rows: dict[str, list[int]] = {}
        for spec in DATA_SHEETS:
            table = register.table(spec.key)
            if table is not None:
                rows[spec.key] = checked_rows(table)
                findings.extend(check_structure(table, register, lang))
                findings.extend(check_cells(table, today, lang, rows[spec.key]))
        clients = register.table("clients")
        if clients is not None:
            findings.extend(check_clients(clients, lang, rows["clients"]))
        findings.extend(check_hetu(register, lang))
        return findings


def reference_findings(register: Register, ids: set[str], lang: str) -> list[Finding]:
    """Invoices, requests and disclosures naming a client ID that ``ids`` lacks."""
    with paused_gc():
        findings: list[Finding] = []
        for key in CLIENT_REF_SHEETS:
            table = register.table(key)
            if table is not None:
                findings.extend(check_client_refs(table, ids, lang))
        return findings


def report_of(register: Register, findings: list[Finding]) -> Report:
    """The report: findings in the order of the workbook's sheets, then rows and columns."""
    order = {name: i for i, name in enumerate(register.sheet_names)}
    findings.sort(
        key=lambda f: (
            order.get(f.sheet, -1),
            f.row or 0,
            column_index(f.column) if f.column else -1,
            f.code,
        )
    )
    return Report(str(register.path), findings, register.lang)


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
    if register.formula_cells is None or register.merged_ranges is None:
        raise ValueError("the register was read without its formula cells; validate needs them")
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


def _is_blank(raw: Any) -> bool:
    return raw == "" or raw is None or (raw.__class__ is str and not raw.strip())


def _verdicts(distinct: set[Any], judge: Callable[[Any], str | None]) -> dict[Any, str] | None:
    """Judge each distinct value of a column once: {bad value: code}.

    A register's columns repeat values (choices, dates, postal codes), and even where they do
    not, hashing is far cheaper than judging. Returns None when the column mixes booleans
    with numbers (True == 1 would conflate them); the caller then judges cell by cell.
    """
    kinds = set(map(type, distinct))
    if bool in kinds and (int in kinds or float in kinds):
        return None
    bad: dict[Any, str] = {}
    for v in distinct:
        if v == "" or v is None:
            continue
        code = judge(v)
        if code is not None:
            bad[v] = code
    return bad


def _flagged(
    data: tuple[Any, ...],
    distinct: set[Any],
    rows: list[int],
    judge: Callable[[Any], str | None],
) -> Iterator[tuple[int, str]]:
    """(row index, code) for every cell ``judge`` finds wrong, in row order."""
    bad = _verdicts(distinct, judge)
    if bad is None:
        for i in rows:
            v = data[i]
            code = None if v == "" or v is None else judge(v)
            if code is not None:
                yield i, code
    elif bad:
        for i in rows:
            code = bad.get(data[i])
            if code is not None:
                yield i, code


def checked_rows(table: Table) -> list[int]:
    """The rows to check: not blank, and not a client row that sheetreg has erased.

    An erased client keeps only a pseudonymous reference in the Clients sheet (see
    retention.py); its emptied name and contact cells are the erasure, not a mistake.
    """
    rows = table.nonblank_rows()
    if table.spec is not CLIENTS or not table.has("client_id"):
        return rows
    from sheetreg.retention import is_pseudonym

    ids = table.column_values("client_id")
    try:
        joined = "\n" + "\n".join(ids)  # one C-speed look for the prefix first
    except TypeError:
        joined = "\n" + "\n".join(v for v in ids if v.__class__ is str)
    if "\nP-" not in joined:
        return rows
    return [
        i
        for i in rows
        if not (ids[i].__class__ is str and ids[i].startswith("P-") and is_pseudonym(ids[i]))
    ]


def check_cells(
    table: Table, today: dt.date, lang: str, rows: list[int] | None = None
) -> Iterator[Finding]:
    """Per-cell checks of every known column: required values, types, formats, dates."""
    rows = checked_rows(table) if rows is None else rows
    columns = table.columns_data()
    for col in table.spec.columns:
        if not table.has(col.key) or col.written_by_sheetreg:
            continue
        data = columns[table.columns[col.key]]
        batch = _BATCH_CHECKS.get(col.kind)
        checker = _CHECKS.get(col.kind)
        future = (table.spec.key, col.key) in FUTURE_CHECKED
        if not (col.required or batch or checker or future):
            continue
        distinct = table.distinct(table.columns[col.key])
        letter = table.letter(col.key)

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
            blanks = _blank_values(distinct)
            if blanks:
                for i in rows:
                    if data[i] in blanks:
                        yield at(i, "missing-value", **_labels(col))
        if batch is not None:
            bad = batch(distinct)
            if bad:
                for i in rows:
                    code = bad.get(data[i])
                    if code is not None:
                        yield at(i, code, **_params(code, col))
        elif checker is not None:
            judge = partial(_swap, checker, col)
            for i, code in _flagged(data, distinct, rows, judge):
                yield at(i, code, **_params(code, col))
        if future:
            for i, code in _flagged(data, distinct, rows, partial(_future, today=today)):
                yield at(
                    i,
                    code,
                    today_fi=f"{today.day}.{today.month}.{today.year}",
                    today_en=today.isoformat(),
                    **_labels(col),
                )


def _blank_values(distinct: set[Any]) -> set[Any]:
    """The values among ``distinct`` that count as empty: "", and white space only on one
    line."""
    try:
        spaces = set(filter(str.isspace, distinct))  # C speed when the column is all text
    except TypeError:
        spaces = {v for v in distinct if v.__class__ is str and v.isspace()}
    found: set[Any] = {v for v in spaces if "\n" not in v}
    found.update(v for v in ("", None) if v in distinct)
    return found


def _phone_batch(distinct: set[Any]) -> dict[Any, str]:
    """Numbers lost their leading zero; text is judged by the +358 rule / phonenumbers."""
    bad: dict[Any, str] = {}
    texts = []
    for v in distinct:
        if v.__class__ is str:
            if v:
                texts.append(v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            bad[v] = "phone-stored-as-number"
        elif v is not None:
            bad[v] = "invalid-phone"
    bad.update(dict.fromkeys(values.invalid_phones(texts), "invalid-phone"))
    return bad


def _email_batch(distinct: set[Any]) -> dict[Any, str]:
    """Every non-text value and every text email-validator would reject."""
    texts = [v for v in distinct if v.__class__ is str and v]
    bad: dict[Any, str] = {
        v: "invalid-email" for v in distinct if v.__class__ is not str and v is not None
    }
    bad.update(dict.fromkeys(values.invalid_emails(texts), "invalid-email"))
    return bad


def _swap(checker: Callable[[Any, Column], str | None], col: Column, raw: Any) -> str | None:
    return checker(raw, col)


def _future(raw: Any, today: dt.date) -> str | None:
    try:
        day = values.as_date(raw)
    except ValueError:
        return None
    return "future-date" if day is not None and day > today else None


def _params(code: str, col: Column) -> dict[str, str]:
    if code == "invalid-choice":
        return {
            "choices_fi": ", ".join(c.fi for c in col.choices),
            "choices_en": ", ".join(c.en for c in col.choices),
            **_labels(col),
        }
    return _labels(col)


def _check_postal(raw: Any, col: Column) -> str | None:
    return None if values.postal_is_valid(raw) else "invalid-postal-code"


def _check_date(raw: Any, col: Column) -> str | None:
    if raw.__class__ is dt.datetime or isinstance(raw, dt.date):
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


# Whole-column judges: {bad value: code} over a column's distinct values.
_BATCH_CHECKS: dict[Kind, Callable[[set[Any]], dict[Any, str]]] = {
    Kind.PHONE: _phone_batch,
    Kind.EMAIL: _email_batch,
}

_CHECKS: dict[Kind, Callable[[Any, Column], str | None]] = {
    Kind.POSTAL: _check_postal,
    Kind.DATE: _check_date,
    Kind.YESNO: _check_choice,
    Kind.CHOICE: _check_choice,
    Kind.MONEY: _check_money,
}


def client_ids(clients: Table) -> set[str]:
    """Every client ID on the Clients sheet, as text."""
    if not clients.has("client_id"):
        return set()
    distinct = clients.distinct(clients.columns["client_id"])
    try:
        found = set(map(str.strip, distinct))  # C speed when the column is all text
    except TypeError:
        found = {values.id_text(v) for v in distinct}
    found.discard("")
    return found


def _distinct_of(table: Table, key: str) -> set[Any]:
    """The distinct raw values of column ``key``; {""} when the sheet lacks the column."""
    return table.distinct(table.columns[key]) if key in table.columns else {""}


def check_clients(clients: Table, lang: str, rows: list[int] | None = None) -> Iterator[Finding]:
    """Rules across a client's row and across clients."""
    rows = checked_rows(clients) if rows is None else rows

    def at(i: int, key: str, code: str, **p: Any) -> Finding:
        return make(
            code,
            lang,
            clients.name,
            column=clients.letter(key),
            row=clients.excel_row(i),
            field_key=key,
            **p,
        )

    has = clients.has
    raw_ids = clients.column_values("client_id")
    if has("client_id") and len(_distinct_of(clients, "client_id")) < len(raw_ids):
        # Some raw ID repeats (a set is C-speed); only then normalise and find which.
        ids = [values.id_text(v) for v in raw_ids]
        repeated = {v for v, n in Counter(ids).items() if n > 1 and v}
        first_row: dict[str, int] = {}
        for i in rows:
            cid = ids[i]
            if cid not in repeated:
                continue
            if cid in first_row:
                yield at(i, "client_id", "duplicate-client-id", other_row=first_row[cid])
            else:
                first_row[cid] = clients.excel_row(i)
    if has("phone") or has("email"):
        key = "phone" if has("phone") else "email"
        phones, emails = clients.column_values("phone"), clients.column_values("email")
        blank_phones = _blank_values(_distinct_of(clients, "phone"))
        blank_emails = _blank_values(_distinct_of(clients, "email"))
        both_blank = (
            [i for i in rows if phones[i] in blank_phones and emails[i] in blank_emails]
            if blank_phones and blank_emails
            else []
        )
        for i in both_blank:
            yield at(
                i,
                key,
                "missing-value",
                label_fi="Puhelin tai sähköposti",
                label_en="Phone or e-mail",
            )
    if has("start") and has("end"):
        starts, ends = clients.column_values("start"), clients.column_values("end")
        for i in [i for i in rows if ends[i] != ""]:
            start_raw, end_raw = starts[i], ends[i]
            if start_raw.__class__ is end_raw.__class__ and isinstance(end_raw, dt.date):
                # Both real Excel dates: compare the days directly.
                if end_raw.toordinal() < start_raw.toordinal():
                    yield at(i, "end", "end-before-start")
                continue
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
    """Paper billing needs the full street address; e-mail billing needs the e-mail."""
    billing = clients.column_spec("billing_method")
    methods = clients.column_values("billing_method")
    chosen: dict[Any, Choice] = {}
    for raw in _distinct_of(clients, "billing_method"):
        try:
            choice = values.as_choice(raw, billing.choices)
        except ValueError:
            continue  # reported as invalid-choice
        if choice is not None:
            chosen[raw] = choice
    for method_key, needs in _BILLING_NEEDS.items():
        raws = {raw for raw, choice in chosen.items() if choice.key == method_key}
        if not raws:
            continue
        required = [
            (key, clients.column_values(key), _blank_values(_distinct_of(clients, key)))
            for key in needs
        ]
        for i in [i for i in rows if methods[i] in raws]:
            missing = [key for key, column, blanks in required if column[i] in blanks]
            if not missing:
                continue
            method = chosen[methods[i]]
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


def _norm(raw: Any) -> str:
    return " ".join(raw.split()).casefold() if raw.__class__ is str else ""


def _contact_keys(phones: tuple[Any, ...], emails: tuple[Any, ...], i: int) -> list[str]:
    keys = []
    phone = phones[i]
    if phone.__class__ is str and phone.strip():
        keys.append("p:" + values.phone_digits(phone.strip()))
    email = emails[i]
    if email.__class__ is str and email.strip():
        keys.append("e:" + email.strip().casefold())
    return keys


def _check_duplicate_people(clients: Table, rows: list[int], lang: str) -> Iterator[Finding]:
    """The same first and last name with the same phone or e-mail under another client ID."""
    firsts = clients.column_values("first_name")
    lasts = clients.column_values("last_name")
    phones = clients.column_values("phone")
    emails = clients.column_values("email")
    # Cheap pass first: only a repeated contact (last nine digits of a phone, or an e-mail)
    # can make two rows one person. The exact comparison then runs on those rows alone.
    compacts = values.compact_phones([p if p.__class__ is str else "" for p in phones])
    tails = [c[-9:] for c in compacts]
    mails = [e.strip().casefold() if e.__class__ is str else "" for e in emails]
    tail_counts, mail_counts = Counter(tails), Counter(mails)
    candidates = [
        i
        for i in rows
        if (tails[i] and tail_counts[tails[i]] > 1) or (mails[i] and mail_counts[mails[i]] > 1)
    ]
    if not candidates:
        return
    ids = clients.column_values("client_id")
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for i in candidates:
        first, last = _norm(firsts[i]), _norm(lasts[i])
        if not first or not last:
            continue
        name = first + "\t" + last
        cid = values.id_text(ids[i])
        reported = False
        for contact in _contact_keys(phones, emails, i):
            key = (name, contact)
            prior = seen.get(key)
            if prior is None:
                seen[key] = (clients.excel_row(i), cid)
            elif prior[1] != cid and not reported:
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


def check_client_refs(table: Table, ids: set[str], lang: str) -> Iterator[Finding]:
    """Invoices, requests and disclosures must name a client on the Clients sheet."""
    if not table.has("client_id"):
        return
    distinct = table.distinct(table.columns["client_id"])
    # A value among the IDs as it is names a client (the IDs are stripped text); the rest
    # are looked at one by one (a number cell, spaces around an ID).
    unknown = {v for v in distinct - ids if (text := values.id_text(v)) and text not in ids}
    if not unknown:
        return
    column = table.column_values("client_id")
    letter = table.letter("client_id")
    for i in table.nonblank_rows():
        if column[i] in unknown:
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
        for idx, column in enumerate(table.columns_data()):
            # One regex pass over the column's text; map hits back to rows only on a match
            # (rare: a HETU does not belong in the register at all).
            texts = table.distinct_if_known(idx) or column
            try:
                joined = "\n".join(texts)  # C speed when the column is all text
            except TypeError:
                joined = "\n".join([v for v in texts if v.__class__ is str])
            if not values.may_hold_hetu(joined) or not values.find_hetus(joined):
                continue
            for i, v in enumerate(column):
                if v.__class__ is str and values.find_hetus(v):
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
