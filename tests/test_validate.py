"""Validation: every finding code, pinned to its exact cell, on real workbooks."""

from __future__ import annotations

import datetime as dt
import hashlib

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sheetreg.findings import CATALOGUE
from sheetreg.validate import validate
from sheetreg.workbook import read_register

from conftest import TODAY, client


def findings_of(path, lang=None, today=TODAY):
    return validate(read_register(path), today, lang).findings


def codes_at(path, **kw):
    return {(f.code, f.sheet, f.cell) for f in findings_of(path, **kw)}


def test_clean_register_has_no_findings(register_path):
    """A correct register with one client and one invoice validates clean."""
    path = register_path(
        clients=[client()],
        invoices=[
            {
                "invoice_number": "1",
                "client_id": "A1001",
                "invoice_date": dt.date(2026, 1, 5),
                "amount": 85.5,
            }
        ],
    )
    report = validate(read_register(path), TODAY)
    assert report.findings == []
    assert report.valid


@pytest.mark.parametrize(
    ("changes", "code", "cell"),
    [
        ({"last_name": None}, "missing-value", "C2"),
        ({"phone": None, "email": None, "billing_method": None}, "missing-value", "D2"),
        ({"phone": "040 12"}, "invalid-phone", "D2"),
        ({"phone": 401234567}, "phone-stored-as-number", "D2"),
        ({"email": "aino.example.fi"}, "invalid-email", "E2"),
        ({"postal_code": "3310"}, "invalid-postal-code", "G2"),
        ({"postal_code": "ABCDE"}, "invalid-postal-code", "G2"),
        ({"start": "31.2.2021"}, "invalid-date", "J2"),
        ({"start": "ensi viikolla"}, "invalid-date", "J2"),
        ({"end": dt.date(2020, 1, 1)}, "end-before-start", "K2"),
        ({"billing_method": "Lasku"}, "invalid-choice", "I2"),
        ({"survey_consent": "Ehkä"}, "invalid-choice", "L2"),
        ({"billing_method": "Paperilasku", "street": None}, "billing-address-incomplete", "I2"),
        ({"billing_method": "Sähköposti", "email": None}, "billing-address-incomplete", "I2"),
        ({"notes": "syntynyt 131052-308T"}, "hetu-found", "R2"),
        ({"start": dt.date(2027, 1, 1)}, "future-date", "J2"),
    ],
)
def test_client_cell_findings(register_path, changes, code, cell):
    """Each client-row problem is reported with its code on the exact cell."""
    path = register_path(clients=[client(**changes)])
    found = codes_at(path)
    assert (code, "Asiakkaat", cell) in found
    assert CATALOGUE[code].severity == next(f.severity for f in findings_of(path) if f.code == code)


def test_valid_variants_are_not_findings(register_path):
    """Text dates, ISO dates, +358 numbers, landlines, Yes/No and a 5-digit number pass."""
    rows = [
        client(client_id="A1", start="20.10.2020", phone="+358 50 1234567"),
        client(client_id="A2", start="2020-10-20", phone="03 1234567", email="b@example.fi"),
        client(client_id="A3", postal_code=33100, survey_consent="Yes", email="c@example.fi"),
        client(client_id="A4", phone="0501234567", email="d@example.fi", first_name="Eero"),
    ]
    assert findings_of(register_path(clients=rows)) == []


def test_hetu_with_wrong_check_character_is_not_reported(register_path):
    """A HETU-shaped string whose check character is wrong is not a personal identity code."""
    path = register_path(clients=[client(notes="131052-308U")])
    assert findings_of(path) == []


def test_duplicate_client_id_and_person(register_path):
    """A repeated ID is an error on the second row; one person twice is a warning."""
    rows = [
        client(),
        client(first_name="Eero", phone="050 765 4321", email="eero@example.fi"),
        client(client_id="A2002"),
    ]
    found = codes_at(register_path(clients=rows))
    assert ("duplicate-client-id", "Asiakkaat", "A3") in found
    assert ("duplicate-person", "Asiakkaat", "A4") in found
    person = list(findings_of(register_path(name="b.xlsx", clients=rows)))
    assert next(f for f in person if f.code == "duplicate-person").severity == "warning"


def test_unknown_client_amount_and_future_invoice(register_path):
    """Invoices naming a missing client, an unreadable amount and a future invoice date."""
    path = register_path(
        clients=[client()],
        invoices=[
            {
                "invoice_number": "1",
                "client_id": "A9999",
                "invoice_date": dt.date(2026, 1, 5),
                "amount": "12,5,0",
            },
            {
                "invoice_number": "2",
                "client_id": "A1001",
                "invoice_date": dt.date(2026, 12, 5),
                "amount": "85,50",
            },
        ],
        requests=[
            {
                "request_id": "P1",
                "received": dt.date(2026, 11, 1),
                "client_id": "X1",
                "type": "Tarkastus",
            }
        ],
    )
    found = codes_at(path)
    assert ("unknown-client", "Laskut", "B2") in found
    assert ("invalid-amount", "Laskut", "E2") in found
    assert ("future-date", "Laskut", "C3") in found
    assert ("unknown-client", "Pyynnöt", "C2") in found
    assert not any(code == "invalid-amount" and cell == "E3" for code, _, cell in found)


def test_missing_sheet_and_column_and_unknown_column(register_path, tmp_path):
    """A missing sheet, a missing required column and an unknown column, each once."""
    path = tmp_path / "r.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Asiakkaat"
    ws.append(["Asiakasnumero", "ETUNIMI ", " sukunimi", "Lempiväri", "Puhelin"])
    ws.append(["A1", "Aino", "Virtanen", "sininen", "040 123 4567"])
    ws.append(["A2", "Eero", "Virtanen", "punainen", "040 123 4568"])
    wb.save(path)
    found = findings_of(path)
    got = {(f.code, f.sheet, f.cell, f.field) for f in found}
    assert ("missing-sheet", "Laskut", None, None) in got
    assert ("missing-column", "Asiakkaat", None, None) in got  # Relationship start
    assert [f.cell for f in found if f.code == "unknown-column"] == ["D1"]


def test_english_headers_any_order_and_english_messages(tmp_path):
    """English sheet and header names in any order are read; messages follow --lang."""
    from conftest import build_register

    path = build_register(tmp_path / "en.xlsx", clients=[client(phone="12")], lang="en")
    fi = next(f for f in findings_of(path, lang="fi") if f.code == "invalid-phone")
    en = next(f for f in findings_of(path, lang="en") if f.code == "invalid-phone")
    assert (fi.sheet, fi.cell) == ("Clients", "D2")
    assert fi.message != en.message
    assert read_register(path).lang == "en"


def test_formula_in_data_cell(register_path, tmp_path):
    """A formula where a value belongs is an error on its cell."""
    path = register_path(clients=[client()])
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["G2"] = '="33"&"100"'
    wb.save(path)
    assert ("formula-in-data", "Asiakkaat", "G2") in codes_at(path)
    # The commands that do not validate read without the scan for formulas; validation
    # refuses such a register rather than miss the finding.
    unscanned = read_register(path, formulas=False)
    assert unscanned.formula_cells is None
    assert read_register(path).formula_cells == {"Asiakkaat": ["G2"]}
    assert unscanned.tables["clients"].rows == read_register(path).tables["clients"].rows
    with pytest.raises(ValueError, match="formula cells"):
        validate(unscanned, TODAY, "fi")
    # The weekly run has the scan made later, from the bytes read or from the file, which
    # must then be the one read (or the one a write of it made).
    from sheetreg.errors import WriteRefused
    from sheetreg.workbook import read_formula_cells

    read_formula_cells(unscanned, path.read_bytes())
    assert unscanned.formula_cells == {"Asiakkaat": ["G2"]}
    unscanned.formula_cells = None
    read_formula_cells(unscanned)
    assert unscanned.formula_cells == {"Asiakkaat": ["G2"]}
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["H2"] = "=1+1"
    wb.save(path)
    with pytest.raises(WriteRefused, match="changed after sheetreg read it"):
        read_formula_cells(unscanned)
    read_formula_cells(unscanned, written=hashlib.sha256(path.read_bytes()).hexdigest())
    assert unscanned.formula_cells == {"Asiakkaat": ["G2", "H2"]}


def test_merged_header_cells(register_path):
    """A merged header row is reported with the merged range's first cell."""
    path = register_path(clients=[client()])
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"].merge_cells("B1:C1")
    wb.save(path)
    found = codes_at(path)
    assert ("merged-cells", "Asiakkaat", "B1") in found
    assert ("missing-column", "Asiakkaat", None) in found  # last name's header is gone


def test_finding_json_shape(register_path):
    """The report's JSON shape and a finding's fields are exactly as documented."""
    report = validate(read_register(register_path(clients=[client(phone="1")])), TODAY)
    data = report.to_dict()
    assert list(data) == ["workbook", "valid", "findings", "summary"]
    assert set(data["findings"][0]) == {
        "code",
        "severity",
        "sheet",
        "cell",
        "row",
        "column",
        "field",
        "message",
    }
    f = data["findings"][0]
    assert (f["row"], f["column"], f["field"]) == (2, "D", "phone")
    assert data["summary"]["by_code"] == {"invalid-phone": 1}


def test_every_code_documented():
    """docs/finding-codes.md is generated from the catalogue and is current."""
    from pathlib import Path

    from sheetreg.findings import catalogue_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "finding-codes.md"
    assert doc.read_text(encoding="utf-8") == catalogue_markdown()


def test_erased_client_rows_are_not_findings(register_path):
    """A client row sheetreg erased (pseudonymous reference, emptied cells) is not reported."""
    erased = dict.fromkeys(client()) | {"client_id": "P-0123456789abcdef"}
    path = register_path(clients=[client(), erased])
    assert findings_of(path) == []


def test_formula_cells_found_with_either_quote():
    """Writers that quote attributes with ' are read like Excel's double quotes."""
    from sheetreg.workbook import _formula_refs

    assert _formula_refs(b"<c r='B2'><f>1+1</f></c>") == [(1, 2)]
    assert _formula_refs(b'<x:c r="C7" s="1"><x:f>1</x:f></x:c>') == [(2, 7)]


@given(
    st.sets(
        st.one_of(
            st.text(alphabet=" \t\r\n\u00a0\u3000ab", max_size=6),
            st.floats(allow_nan=False),
            st.none(),
        ),
        max_size=12,
    )
)
def test_blank_values_are_those_of_white_space_on_one_line(distinct):
    """Property: the values a required column counts as missing are "", None and those of
    white space only (any kind, no line break), in a column of text or of mixed values."""
    from sheetreg.validate import _blank_values

    expected = {
        v
        for v in distinct
        if v in ("", None) or (isinstance(v, str) and v.isspace() and "\n" not in v)
    }
    assert _blank_values(distinct) == expected
    texts = {v for v in distinct if isinstance(v, str)}
    assert _blank_values(texts) == expected - {None}


def test_client_ids_and_references_read_as_text():
    """An ID with spaces around it, or a number cell, names the same client as its text;
    a reference to no client is found once for each row that makes it."""
    from sheetreg.register import Table
    from sheetreg.schema import CLIENTS, INVOICES
    from sheetreg.validate import check_client_refs, client_ids

    clients = Table(
        CLIENTS, "Asiakkaat", 1, 0, ["Asiakasnumero"], {"client_id": 0},
        [["A1001"], [" A1002 "], [1003.0], [""]],
    )  # fmt: skip
    ids = client_ids(clients)
    assert ids == {"A1001", "A1002", "1003"}
    invoices = Table(
        INVOICES, "Laskut", 1, 0, ["Lasku", "Asiakasnumero"], {"client_id": 1},
        [["L1", "A1001"], ["L2", "A1002 "], ["L3", 1003], ["L4", "1003"], ["L5", "A9"],
         ["L6", "A9"], ["L7", ""]],
    )  # fmt: skip
    found = [(f.code, f.cell) for f in check_client_refs(invoices, ids, "fi")]
    assert found == [("unknown-client", "B6"), ("unknown-client", "B7")]
