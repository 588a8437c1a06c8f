"""Synthetic demo registers: deterministic, realistic, clean, and with known planted problems."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from openpyxl.utils import coordinate_to_tuple, get_column_letter
from python_calamine import CalamineWorkbook

from sheetreg.demo import (
    PLANTED_CODES,
    DemoManifest,
    make_clean_workbook,
    make_demo_workbook,
    synthetic_hetu,
)
from sheetreg.schema import (
    CHANNELS,
    CLIENTS,
    DATA_SHEETS,
    DISCLOSURE_BASES,
    DISCLOSURES,
    INVOICES,
    LANGS,
    REQUEST_STATUSES,
    REQUEST_TYPES,
    REQUESTS,
    Kind,
    Sheet,
    match_choice,
    match_column,
)

TODAY = dt.date(2026, 3, 15)
CLIENT_COUNT = 300

Grid = dict[str, list[list[Any]]]

_HETU = re.compile(r"(?<![0-9A-Za-z])(\d{6})([-+A-FU-Y])(\d{3})([0-9A-Y])(?![0-9A-Za-z])")
_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


def _valid_hetus(text: str) -> list[str]:
    """Valid Finnish personal identity codes in ``text`` (date part and mod-31 check)."""
    found = []
    for m in _HETU.finditer(text):
        birth, individual, check = m[1], m[3], m[4]
        day, month = int(birth[:2]), int(birth[2:4])
        if not (1 <= day <= 31 and 1 <= month <= 12):
            continue
        if "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(birth + individual) % 31] == check:
            found.append(m[0])
    return found


def _read(path: Path) -> Grid:
    wb = CalamineWorkbook.from_path(str(path))
    return {name: wb.get_sheet_by_name(name).to_python() for name in wb.sheet_names}


def _cell(grid: Grid, ref: str) -> Any:
    sheet, _, coordinate = ref.rpartition("!")
    row, column = coordinate_to_tuple(coordinate)
    rows = grid[sheet]
    if row > len(rows) or column > len(rows[row - 1]):
        return ""
    return rows[row - 1][column - 1]


def _column(sheet: Sheet, key: str) -> int:
    return sheet.columns.index(sheet.column(key))


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        m = _DMY.fullmatch(value.strip())
        try:
            if m:
                return dt.date(int(m[3]), int(m[2]), int(m[1]))
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _phone_ok(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, "FI"))
    except phonenumbers.NumberParseException:
        return False


def _email_ok(value: Any) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _rows(grid: Grid, sheet: Sheet, lang: str) -> list[list[Any]]:
    return grid[sheet.label(lang)][1:]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[DemoManifest, Grid]]:
    """Demo workbooks in both languages and a clean one, read back with python-calamine."""
    folder = tmp_path_factory.mktemp("demo")
    out = {}
    for lang in LANGS:
        manifest = make_demo_workbook(
            folder / f"demo-{lang}.xlsx", clients=CLIENT_COUNT, lang=lang, today=TODAY
        )
        out[lang] = (manifest, _read(manifest.path))
    clean = make_clean_workbook(folder / "clean.xlsx", clients=CLIENT_COUNT, lang="fi", today=TODAY)
    out["clean"] = (clean, _read(clean.path))
    return out


def test_demo_is_deterministic(tmp_path: Path) -> None:
    """The same seed and today give the same bytes and manifest; another seed does not."""
    first = make_demo_workbook(tmp_path / "a.xlsx", clients=120, today=TODAY, seed=5)
    second = make_demo_workbook(tmp_path / "b.xlsx", clients=120, today=TODAY, seed=5)
    other = make_demo_workbook(tmp_path / "c.xlsx", clients=120, today=TODAY, seed=6)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.planted == second.planted
    assert first.path.read_bytes() != other.path.read_bytes()


def test_demo_refuses_to_overwrite(tmp_path: Path) -> None:
    """A demo never replaces an existing file."""
    target = tmp_path / "register.xlsx"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        make_demo_workbook(target, today=TODAY)
    assert target.read_bytes() == b"keep me"


def test_too_few_clients_is_refused(tmp_path: Path) -> None:
    """A register too small to carry every planted problem on its own row is refused."""
    with pytest.raises(ValueError, match="clients"):
        make_demo_workbook(tmp_path / "small.xlsx", clients=10, today=TODAY)


@pytest.mark.parametrize("lang", LANGS)
def test_every_code_planted_at_least_twice(made: dict[str, Any], lang: str) -> None:
    """Every listed finding code has two or three planted cells, none shared between codes."""
    manifest, grid = made[lang]
    assert list(manifest.planted) == list(PLANTED_CODES)
    for refs in manifest.planted.values():
        assert 2 <= len(refs) <= 3
        for ref in refs:
            assert ref.rpartition("!")[0] in grid
    every = [ref for refs in manifest.planted.values() for ref in refs]
    assert len(every) == len(set(every))


def test_clean_workbook_plants_nothing(made: dict[str, Any]) -> None:
    """The clean workbook's manifest is empty and it has no unknown columns."""
    manifest, grid = made["clean"]
    assert manifest.planted == {}
    for sheet in DATA_SHEETS:
        header = grid[sheet.label("fi")][0]
        assert [match_column(sheet, h) for h in header] == list(sheet.columns)


@pytest.mark.parametrize("lang", LANGS)
def test_planted_cells_hold_what_they_should(made: dict[str, Any], lang: str) -> None:
    """Each planted cell, read back with python-calamine, shows the problem its code names."""
    manifest, grid = made[lang]
    clients_name = CLIENTS.label(lang)
    clients = grid[clients_name]
    ids = {row[0] for row in clients[1:]}

    def row_of(ref: str) -> list[Any]:
        sheet, _, coordinate = ref.rpartition("!")
        return grid[sheet][coordinate_to_tuple(coordinate)[0] - 1]

    def client_value(row: list[Any], key: str) -> Any:
        return row[_column(CLIENTS, key)]

    for code, refs in manifest.planted.items():
        for ref in refs:
            value = _cell(grid, ref)
            row = row_of(ref)
            if code == "missing-value":
                assert value == ""
                if ref.startswith(f"{clients_name}!D"):
                    assert client_value(row, "email") == ""
            elif code == "duplicate-client-id":
                number = coordinate_to_tuple(ref.rpartition("!")[2])[0]
                assert value in [r[0] for r in clients[1 : number - 1]]
            elif code == "invalid-phone":
                assert isinstance(value, str) and value and not _phone_ok(value)
            elif code == "phone-stored-as-number":
                assert isinstance(value, int | float)
                assert _phone_ok(f"0{int(value)}")
            elif code == "invalid-email":
                assert isinstance(value, str) and value and not _email_ok(value)
            elif code == "invalid-postal-code":
                assert isinstance(value, str) and not re.fullmatch(r"\d{5}", value)
            elif code == "invalid-date":
                assert isinstance(value, str) and value and _as_date(value) is None
            elif code == "end-before-start":
                assert _as_date(value) < _as_date(client_value(row, "start"))
            elif code == "invalid-choice":
                sheet = CLIENTS if ref.startswith(clients_name) else REQUESTS
                header = grid[ref.rpartition("!")[0]][0][
                    coordinate_to_tuple(ref.rpartition("!")[2])[1] - 1
                ]
                column = match_column(sheet, header)
                assert match_choice(column.choices, value) is None
            elif code == "billing-address-incomplete":
                method = match_choice(CLIENTS.column("billing_method").choices, value)
                needs = ("street", "postal_code", "city") if method.key == "paper" else ("email",)
                assert method.key in ("paper", "email")
                assert any(client_value(row, key) == "" for key in needs)
            elif code == "unknown-client":
                assert value not in ids
            elif code == "hetu-found":
                assert len(_valid_hetus(value)) == 1
            elif code == "duplicate-person":
                number = coordinate_to_tuple(ref.rpartition("!")[2])[0]
                names = (client_value(row, "first_name"), client_value(row, "last_name"))
                earlier = [
                    r
                    for r in clients[1 : number - 1]
                    if (client_value(r, "first_name"), client_value(r, "last_name")) == names
                ]
                assert len(earlier) == 1 and earlier[0][0] != value
                assert any(
                    client_value(earlier[0], key) == client_value(row, key) != ""
                    for key in ("phone", "email")
                )
            elif code == "invalid-amount":
                assert isinstance(value, str)
                assert not re.fullmatch(r"\d+(,\d{1,2})?", value)
            elif code == "future-date":
                assert _as_date(value) > TODAY
            elif code == "unknown-column":
                assert ref.endswith("1")
                sheet = next(s for s in DATA_SHEETS if s.label(lang) == ref.rpartition("!")[0])
                assert value and match_column(sheet, value) is None
            else:
                pytest.fail(f"no check for {code}")


def test_clean_phones_and_emails_validate(made: dict[str, Any]) -> None:
    """Every phone in the clean register is valid for region FI; every e-mail validates."""
    _, grid = made["clean"]
    rows = _rows(grid, CLIENTS, "fi")
    phones = [r[_column(CLIENTS, "phone")] for r in rows if r[_column(CLIENTS, "phone")] != ""]
    emails = [r[_column(CLIENTS, "email")] for r in rows if r[_column(CLIENTS, "email")] != ""]
    assert len(phones) > 0.8 * CLIENT_COUNT and len(emails) > 0.6 * CLIENT_COUNT
    assert all(_phone_ok(p) for p in phones)
    assert all(_email_ok(e) for e in emails)
    assert all(re.fullmatch(r"\d{5}", r[_column(CLIENTS, "postal_code")] or "00000") for r in rows)


def test_phones_come_in_varied_formats(made: dict[str, Any]) -> None:
    """Phones are written as people write them: spaced, +358, run together, landlines."""
    _, grid = made["clean"]
    phones = [r[_column(CLIENTS, "phone")] for r in _rows(grid, CLIENTS, "fi")]
    patterns = {
        "spaced": r"0\d{2} \d{3} \d{4}",
        "international": r"\+358 \d{2} \d{7}",
        "together": r"0\d{9}",
        "landline": r"0[39] \d{7}",
    }
    for pattern in patterns.values():
        assert any(re.fullmatch(pattern, p) for p in phones), pattern


@pytest.mark.parametrize("which", ["fi", "en", "clean"])
def test_no_hetu_except_planted(made: dict[str, Any], which: str) -> None:
    """No cell holds a valid personal identity code except the planted ones."""
    manifest, grid = made[which]
    found = set()
    for name, rows in grid.items():
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if isinstance(value, str) and _valid_hetus(value):
                    found.add(f"{name}!{get_column_letter(c)}{r}")
    assert found == set(manifest.planted.get("hetu-found", []))


def test_synthetic_hetu_is_valid_and_never_real() -> None:
    """Generated identity codes pass the mod-31 check and use individual numbers 900-999."""
    rng = random.Random(1)
    for _ in range(200):
        code = synthetic_hetu(rng)
        assert _valid_hetus(code) == [code]
        assert 900 <= int(code[7:10]) <= 999


@pytest.mark.parametrize("which", ["fi", "en", "clean"])
def test_sheetreg_columns_are_left_empty(made: dict[str, Any], which: str) -> None:
    """The demo writes nothing in the columns and sheets sheetreg itself writes."""
    lang = "en" if which == "en" else "fi"
    _, grid = made[which]
    for sheet in DATA_SHEETS:
        for column in sheet.columns:
            if column.written_by_sheetreg:
                index = _column(sheet, column.key)
                assert all(row[index] == "" for row in _rows(grid, sheet, lang))
    assert len(grid["Poistoloki" if lang == "fi" else "Erasure log"]) == 1


def test_register_is_realistic(made: dict[str, Any]) -> None:
    """The clean register has the mix a real one has, and nothing dated after today."""
    _, grid = made["clean"]
    lang = "fi"
    clients = _rows(grid, CLIENTS, lang)
    start, end = _column(CLIENTS, "start"), _column(CLIENTS, "end")
    assert len(clients) == CLIENT_COUNT
    assert len({r[0] for r in clients}) == CLIENT_COUNT
    assert all(re.fullmatch(r"A\d{4}", r[0]) for r in clients)
    text_starts = [r[start] for r in clients if isinstance(r[start], str)]
    assert 0.08 * CLIENT_COUNT < len(text_starts) < 0.25 * CLIENT_COUNT
    assert any("-" in s for s in text_starts) and any("." in s for s in text_starts)
    starts = [_as_date(r[start]) for r in clients]
    assert all(TODAY - dt.timedelta(days=6 * 366) <= s <= TODAY for s in starts)
    ends = [_as_date(r[end]) for r in clients if r[end] != ""]
    assert 0.2 * CLIENT_COUNT < len(ends) < 0.4 * CLIENT_COUNT
    assert 2 <= sum(e > TODAY for e in ends) <= 10
    assert all(_as_date(r[end]) >= _as_date(r[start]) for r in clients if r[end] != "")
    for key in ("partner", "hold_until", "hold_reason", "approve_erasure", "notes"):
        assert any(r[_column(CLIENTS, key)] != "" for r in clients), key
    billing = Counter(r[_column(CLIENTS, "billing_method")] for r in clients)
    assert set(billing) == {"Sähköposti", "Paperilasku", "Verkkolasku"}

    invoices = _rows(grid, INVOICES, lang)
    per_client = Counter(r[_column(INVOICES, "client_id")] for r in invoices)
    assert set(per_client.values()) <= set(range(2, 7))
    amounts = [r[_column(INVOICES, "amount")] for r in invoices]
    assert any(isinstance(a, str) and re.fullmatch(r"\d+,\d\d", a) for a in amounts)
    assert sum(isinstance(a, float | int) for a in amounts) > 0.9 * len(amounts)
    paid = [r[_column(INVOICES, "paid_on")] for r in invoices]
    assert 0 < paid.count("") < 0.2 * len(invoices)
    assert Counter(r[_column(INVOICES, "debt_collection")] for r in invoices)["Kyllä"] >= 1
    assert all(_as_date(r[_column(INVOICES, "invoice_date")]) <= TODAY for r in invoices)

    requests = _rows(grid, REQUESTS, lang)
    assert 10 <= len(requests) <= 16
    for key, choices in (
        ("type", REQUEST_TYPES),
        ("channel", CHANNELS),
        ("status", REQUEST_STATUSES),
    ):
        assert {r[_column(REQUESTS, key)] for r in requests} == {c.fi for c in choices}, key
    for key in ("identity_verified", "extended"):
        assert {r[_column(REQUESTS, key)] for r in requests} == {"Kyllä", "Ei"}, key
    assert all(_as_date(r[_column(REQUESTS, "received")]) <= TODAY for r in requests)

    disclosures = _rows(grid, DISCLOSURES, lang)
    assert 15 <= len(disclosures) <= 25
    bases = {r[_column(DISCLOSURES, "basis")] for r in disclosures}
    assert bases == {c.fi for c in DISCLOSURE_BASES}


@pytest.mark.parametrize("lang", LANGS)
def test_values_match_column_kinds(made: dict[str, Any], lang: str) -> None:
    """Outside the planted cells, every choice is a label and every date column reads as a date."""
    manifest, grid = made[lang]
    planted = {ref for refs in manifest.planted.values() for ref in refs}
    for sheet in DATA_SHEETS:
        name = sheet.label(lang)
        for r, row in enumerate(grid[name][1:], start=2):
            for index, column in enumerate(sheet.columns):
                value = row[index]
                if value == "" or f"{name}!{get_column_letter(index + 1)}{r}" in planted:
                    continue
                if column.kind in (Kind.CHOICE, Kind.YESNO):
                    assert match_choice(column.choices, value).label(lang) == value
                elif column.kind is Kind.DATE:
                    assert _as_date(value) is not None


@pytest.mark.parametrize("lang", LANGS)
def test_validator_finds_exactly_the_planted_problems(made: dict[str, Any], lang: str) -> None:
    """sheetreg's own validation reports the planted cells and nothing else."""
    from sheetreg.validate import validate
    from sheetreg.workbook import read_register

    manifest, _ = made[lang]
    report = validate(read_register(manifest.path), TODAY, lang)
    found: dict[str, set[str]] = {}
    for finding in report.findings:
        ref = f"{finding.sheet}!{finding.column}{finding.row}" if finding.column else finding.sheet
        found.setdefault(finding.code, set()).add(ref)
    assert found == {code: set(refs) for code, refs in manifest.planted.items()}


def test_validator_finds_nothing_in_the_clean_register(made: dict[str, Any]) -> None:
    """sheetreg's own validation reports nothing on the clean register."""
    from sheetreg.validate import validate
    from sheetreg.workbook import read_register

    manifest, _ = made["clean"]
    assert validate(read_register(manifest.path), TODAY, "fi").findings == []
