"""The access extract: Art. 15 items in fi and en, one client's rows only, three formats."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import python_calamine as pc
from click.testing import CliRunner

from sheetreg.cli import cli
from sheetreg.extract import (
    ART15_ITEMS,
    AmbiguousClient,
    ClientNotFound,
    build_extract,
    extract_name,
    search_clients,
)
from sheetreg.schema import CLIENTS
from sheetreg.workbook import read_register

from conftest import TODAY, build_register, client, soffice_convert

D = dt.date
FORMULA_TEXT = '=HYPERLINK("http://example.com")'
SHARED = {"street": "Hämeenkatu 1 A 2", "postal_code": "33100", "city": "Tampere"}

# The person, and others made to look as much like her as possible.
AINO = client(
    client_id="A1001",
    partner="Fysioterapia Oikea Oy",
    hold_until=D(2027, 6, 30),
    hold_reason="Avoin reklamaatio",
    notes='=HYPERLINK("http://example.com")',
    **SHARED,
)
LOOKALIKES = [
    client(
        client_id="A100",
        first_name="Aino",
        last_name="Virtanen",
        email="aino.virtanen2@example.fi",
        phone="040 123 4568",
        partner="Fysioterapia Väärä Oy",
        **SHARED,
    ),
    client(
        client_id="A10011",
        first_name="Aino",
        last_name="Virtane",
        email="a.virtane@example.fi",
        phone="040 123 4569",
        **SHARED,
    ),
    client(
        client_id="a1001",
        first_name="Aino",
        last_name="Virtanén",
        email="aino@example.net",
        phone="040 123 4560",
        **SHARED,
    ),
]
INVOICES = [
    {"invoice_number": "7001", "client_id": "A1001", "invoice_date": D(2025, 3, 2),
     "amount": 90.0, "paid_on": D(2025, 3, 10), "debt_collection": "Ei"},
    {"invoice_number": "7002", "client_id": "A1001", "invoice_date": D(2026, 10, 1),
     "amount": 95.5},
    {"invoice_number": "7003", "client_id": "A100", "invoice_date": D(2026, 10, 1),
     "amount": 61.0},
    {"invoice_number": "7004", "client_id": "A10011", "invoice_date": D(2026, 10, 2),
     "amount": 62.0},
]  # fmt: skip
DISCLOSURES = [
    {"date": D(2026, 2, 3), "client_id": "A1001", "recipient": "Perintä Oikea Oy",
     "basis": "Perintä", "data_categories": "Nimi, osoite, avoimet laskut"},
    {"date": D(2026, 2, 4), "client_id": "A100", "recipient": "Perintä Väärä Oy",
     "basis": "Perintä", "data_categories": "Nimi"},
    {"date": D(2026, 2, 5), "client_id": "a1001", "recipient": "Luotto Väärä Oy",
     "basis": "Luottohakemus", "data_categories": "Nimi"},
]  # fmt: skip
REQUESTS = [
    {"request_id": "P1", "received": D(2026, 11, 20), "client_id": "A1001", "type": "Tarkastus",
     "identity_verified": "Kyllä", "status": "Avoin"},
    {"request_id": "P2", "received": D(2026, 11, 21), "client_id": "A10011", "type": "Siirto",
     "identity_verified": "Kyllä", "status": "Avoin"},
]  # fmt: skip
OTHERS_VALUES = [
    "A100",
    "A10011",
    "a1001",
    "aino.virtanen2@example.fi",
    "a.virtane@example.fi",
    "aino@example.net",
    "040 123 4568",
    "040 123 4569",
    "040 123 4560",
    "Virtane",
    "Virtanén",
    "Fysioterapia Väärä Oy",
    "Perintä Väärä Oy",
    "Luotto Väärä Oy",
    "7003",
    "7004",
    "P2",
]


@pytest.fixture
def register_file(tmp_path: Path) -> Path:
    """A Finnish register: Aino and three look-alikes sharing her address."""
    path = build_register(
        tmp_path / "rekisteri.xlsx",
        clients=[AINO, *LOOKALIKES],
        invoices=INVOICES,
        requests=REQUESTS,
        disclosures=DISCLOSURES,
        extra_headers={"clients": ["Lempiväri"]},
    )
    # Text that a spreadsheet would run as a formula, stored as text in her Lempiväri cell.
    wb = openpyxl.load_workbook(path)
    cell = wb["Asiakkaat"].cell(row=2, column=len(CLIENTS.columns) + 1)
    cell.value = FORMULA_TEXT
    cell.data_type = "s"
    wb.save(path)
    return path


def invoke(*args: str, **kwargs: Any):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kwargs)


def make(path: Path, *extra: str) -> dict[str, Any]:
    result = invoke("extract", str(path), "--client", "A1001", "--today", "2026-11-25",
                    "--format", "json", *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def xlsx_strings(path: Path) -> list[str]:
    """Every cell of every sheet of an xlsx as text."""
    wb = pc.CalamineWorkbook.from_path(str(path))
    found = []
    for name in wb.sheet_names:
        found.append(name)
        for row in wb.get_sheet_by_name(name).to_python():
            found += [str(v) for v in row if v != ""]
    return found


def json_strings(value: Any) -> list[str]:
    """Every key and scalar of a JSON document as text."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *json_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    return [str(value)]


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_every_art15_item_in_every_format(register_file, lang):
    """Each Art. 15(1)(a)-(h) item, with its title, is in the xlsx, the HTML and the JSON."""
    files = make(register_file, "--lang", lang)
    cells = xlsx_strings(Path(files["xlsx"]))
    page = Path(files["html"]).read_text(encoding="utf-8")
    data = json.loads(Path(files["json"]).read_text(encoding="utf-8"))
    assert data["language"] == lang
    assert f'<html lang="{lang}">' in page
    for key, point, title_fi, title_en in ART15_ITEMS:
        title = title_fi if lang == "fi" else title_en
        label = f"artikla 15(1)({point})" if lang == "fi" else f"Art. 15(1)({point})"
        assert title in cells and label in cells, key
        assert f'id="{key}"' in page and title in page and label in page, key
        item = data["information"][key]
        assert item["article"] == f"15(1)({point})" and item["title"] == title
        assert item["text"] and all(isinstance(t, str) and t for t in item["text"])
        info_cell = next(c for c in cells if c.startswith(item["text"][0][:30]))
        assert info_cell


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_art15_content_is_specific_to_the_person(register_file, lang):
    """Recipients from her Disclosures and Partner, her holds, the Ombudsman, source, (h)."""
    data = json.loads(Path(make(register_file, "--lang", lang)["json"]).read_text())
    info = data["information"]
    recipients = " ".join(info["recipients"]["text"])
    assert "Perintä Oikea Oy" in recipients and "Fysioterapia Oikea Oy" in recipients
    assert info["recipients"]["details"]["partners"] == ["Fysioterapia Oikea Oy"]
    assert [d["recipient"] for d in info["recipients"]["details"]["disclosures"]] == [
        "Perintä Oikea Oy"
    ]
    retention = " ".join(info["retention"]["text"])
    assert "Avoin reklamaatio" in retention
    assert ("30.6.2027" if lang == "fi" else "2027-06-30") in retention
    complaint = " ".join(info["complaint"]["text"])
    assert "tietosuojavaltuutettu" in complaint and "tietosuoja.fi" in complaint
    if lang == "en":
        assert "Data Protection Ombudsman" in complaint
        assert "Primarily the client." in info["source"]["text"]
        assert info["automated_decisions"]["text"] == ["No automated decision-making or profiling."]
    else:
        assert "Ensisijaisesti asiakkaalta itseltään." in info["source"]["text"]
    rights = " ".join(info["rights"]["text"])
    for article in ("16", "17", "18", "21"):
        assert article in rights


def test_english_extract_of_a_finnish_workbook_translates_default_settings(register_file):
    """Settings still at the notice's Finnish defaults read in English in an English extract."""
    data = json.loads(Path(make(register_file, "--lang", "en")["json"]).read_text())
    purposes = data["information"]["purposes"]["text"][0]
    assert purposes.startswith("Managing the client relationship")


def test_copy_holds_only_this_clients_rows(register_file):
    """Every sheet is copied with only her rows, every column kept, the unknown one too."""
    data = json.loads(Path(make(register_file)["json"]).read_text())
    rows = {key: sheet["rows"] for key, sheet in data["data"].items()}
    assert [r["client_id"] for r in rows["clients"]] == ["A1001"]
    assert [r["invoice_number"] for r in rows["invoices"]] == ["7001", "7002"]
    assert [r["request_id"] for r in rows["requests"]] == ["P1"]
    assert [r["recipient"] for r in rows["disclosures"]] == ["Perintä Oikea Oy"]
    assert rows["clients"][0]["start"] == "2024-03-01"
    assert rows["invoices"][1]["amount"] == 95.5
    assert "Lempiväri" in data["data"]["clients"]["columns"]
    files = make(register_file)
    wb = pc.CalamineWorkbook.from_path(files["xlsx"])
    assert wb.sheet_names == [
        "Tiedot käsittelystä",
        "Asiakkaat",
        "Laskut",
        "Pyynnöt",
        "Luovutukset",
    ]
    invoices = wb.get_sheet_by_name("Laskut").to_python()
    assert [row[0] for row in invoices[1:]] == ["7001", "7002"]


def test_nothing_of_any_other_client_appears(register_file):
    """Near-identical names, shared addresses: no other client's value is in any file."""
    files = make(register_file)
    cells = set(xlsx_strings(Path(files["xlsx"])))
    data = json.loads(Path(files["json"]).read_text(encoding="utf-8"))
    strings = set(json_strings(data))
    page = Path(files["html"]).read_text(encoding="utf-8")
    hers = [s for row in data["data"]["clients"]["rows"] for s in json_strings(row)]
    for value in OTHERS_VALUES:
        assert value not in cells, value
        assert value not in strings, value
        assert f">{html.escape(value)}<" not in page, value
        if not any(value in mine for mine in hers):  # "Virtane" is part of "Virtanen"
            assert html.escape(value) not in page, value
    assert "aino.virtanen@example.fi" in page  # hers is there


def test_folder_named_by_id_and_date_owner_only(register_file, tmp_path):
    """extracts/<id>-<date>/ beside the workbook, no name in any path, readable by the owner."""
    files = make(register_file)
    folder = tmp_path / "extracts" / "A1001-2026-11-25"
    assert Path(files["folder"]) == folder
    for key in ("xlsx", "html", "json"):
        path = Path(files[key])
        assert path.parent == folder and path.name == f"A1001-2026-11-25.{key}"
        assert "Aino" not in str(path) and "Virtanen" not in str(path)
        if os.name == "posix":
            assert path.stat().st_mode & 0o077 == 0
    if os.name == "posix":
        assert folder.stat().st_mode & 0o077 == 0
    assert extract_name("A/10:01", D(2026, 1, 2)) == "A_10_01-2026-01-02"


def test_out_option_and_remaking_on_the_same_day(register_file, tmp_path):
    """--out puts the folder elsewhere; making it again the same day replaces its files."""
    out = tmp_path / "muualla"
    files = make(register_file, "--out", str(out))
    assert Path(files["folder"]) == out / "A1001-2026-11-25"
    again = make(register_file, "--out", str(out))
    assert again == files
    assert sorted(p.name for p in (out / "A1001-2026-11-25").iterdir()) == [
        "A1001-2026-11-25.html",
        "A1001-2026-11-25.json",
        "A1001-2026-11-25.xlsx",
    ]
    assert not (tmp_path / "extracts").exists()


def test_text_is_never_a_formula(register_file):
    """A cell that looks like a formula is written as text in the extract xlsx."""
    files = make(register_file)
    with zipfile.ZipFile(files["xlsx"]) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in zf.read(name)
    assert FORMULA_TEXT in xlsx_strings(Path(files["xlsx"]))


def test_html_is_self_contained_and_escaped(register_file):
    """The page loads nothing from elsewhere, escapes cell text and has print styles."""
    page = Path(make(register_file)["html"]).read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert "@media print" in page
    assert "=HYPERLINK(&quot;http://example.com&quot;)" in page


def test_unknown_client_exits_two_duplicate_exits_one(register_file, tmp_path):
    """No such ID: exit 2, nothing written. The same ID on two rows: exit 1, nothing written."""
    result = CliRunner().invoke(cli, ["extract", str(register_file), "--client", "A9"])
    assert result.exit_code == 2 and "A9" in result.output
    assert not (tmp_path / "extracts").exists()
    twice = build_register(tmp_path / "twice.xlsx", clients=[AINO, client(first_name="Toinen")])
    result = CliRunner().invoke(cli, ["extract", str(twice), "--client", "A1001"])
    assert result.exit_code == 1
    assert "Toinen" not in result.output and "Aino" not in result.output
    assert not (tmp_path / "extracts").exists()
    register = read_register(twice)
    with pytest.raises(AmbiguousClient):
        build_extract(register, "A1001", TODAY)
    with pytest.raises(ClientNotFound):
        build_extract(register, "A1002", TODAY)


def test_former_client_with_only_invoices_left(tmp_path):
    """A client whose row is gone still gets the invoices the register keeps on them."""
    path = build_register(tmp_path / "r.xlsx", clients=[client(client_id="A2")], invoices=INVOICES)
    extract = build_extract(read_register(path), "A1001", TODAY, "en")
    copies = {sheet.key: sheet.rows for sheet in extract.sheets}
    assert copies["clients"] == () and len(copies["invoices"]) == 2


def test_interactive_search_by_name_prints_names_on_stderr_only(register_file, tmp_path):
    """Without --client: search by name, pick a number; stdout names no one."""
    result = invoke(
        "extract",
        str(register_file),
        "--today",
        "2026-11-25",
        input="virtanen\n",
    )
    assert result.exit_code == 2  # listed, then no number and no further search
    assert "Virtanen" in result.stderr and "Virtanen" not in result.stdout
    register = read_register(register_file)
    found = search_clients(register, "aino virtanen")
    assert [c.client_id for c in found][:1] == ["A1001"] or "A1001" in [c.client_id for c in found]
    number = [c.client_id for c in found].index("A1001") + 1
    result = invoke(
        "extract",
        str(register_file),
        "--today",
        "2026-11-25",
        input=f"aino virtanen\n{number}\n",
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "extracts" / "A1001-2026-11-25").is_dir()
    assert "Virtanen" not in result.stdout and "Aino" not in result.stdout


def test_search_ignores_case_and_accents_and_puts_an_exact_id_first(register_file):
    """`virtanen` finds Virtanén too; an exact client ID comes first."""
    register = read_register(register_file)
    names = {c.client_id for c in search_clients(register, "VIRTANEN")}
    assert {"A1001", "A100", "a1001"} <= names
    assert search_clients(register, "A100")[0].client_id == "A100"
    assert search_clients(register, "") == []


def test_demo_register_extract_of_every_client_with_a_request(tmp_path):
    """The demo register's clients with requests all get an extract in both languages."""
    from sheetreg.demo import make_demo_workbook

    path = tmp_path / "demo.xlsx"
    make_demo_workbook(path, clients=120, today=TODAY)
    register = read_register(path)
    table = register.table("requests")
    ids = {table.text(i, "client_id") for i in table.nonblank_rows()}
    clients = {c.client_id for c in search_clients(register, "a", limit=10_000)}
    made = 0
    for client_id in sorted(i for i in ids if i in clients):
        for lang in ("fi", "en"):
            try:
                extract = build_extract(register, client_id, TODAY, lang)
            except AmbiguousClient:
                continue
            assert [i.key for i in extract.items] == [k for k, *_ in ART15_ITEMS]
            made += 1
    assert made >= 10


@pytest.mark.libreoffice
def test_libreoffice_opens_the_extract(register_file, tmp_path):
    """A real LibreOffice opens the extract xlsx and reads its Art. 15 sheet."""
    files = make(register_file, "--lang", "en")
    csv = soffice_convert(Path(files["xlsx"]), "csv", tmp_path / "lo")
    text = csv.read_text(encoding="utf-8", errors="replace")
    assert "Art. 15(1)(a)" in text and "Art. 15(1)(h)" in text
    assert "A1001" in text


def test_retention_names_what_keeps_her_data(tmp_path):
    """Open invoices, debt collection and the Accounting Act date appear, in fi and en."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=[client(end=D(2026, 6, 30))],
        invoices=[
            {"invoice_number": "1", "client_id": "A1001", "invoice_date": D(2026, 5, 2),
             "amount": 90.0},
            {"invoice_number": "2", "client_id": "A1001", "invoice_date": D(2026, 6, 2),
             "amount": 90.0, "debt_collection": "Kyllä"},
            {"invoice_number": "3", "client_id": "A1001", "invoice_date": D(2025, 6, 2),
             "amount": 90.0, "paid_on": D(2025, 6, 9)},
        ],
    )  # fmt: skip
    register = read_register(path)
    fi = build_extract(register, "A1001", TODAY, "fi").item("retention")
    en = build_extract(register, "A1001", TODAY, "en").item("retention")
    assert fi.data["state"] == en.data["state"] == "ended"
    assert fi.data["open_invoices"] == 1 and fi.data["in_debt_collection"] == 1
    assert fi.data["invoices_kept_until"] == "2032-12-31"
    assert any("Asiakkuutesi päättyi 30.6.2026" in p for p in fi.paragraphs)
    assert any("1 maksamatonta laskua" in p for p in fi.paragraphs)
    assert any("31.12.2032" in p and "1336/1997" in p for p in fi.paragraphs)
    assert any("1 invoices are in debt collection" in p for p in en.paragraphs)
    assert en.paragraphs[-1].startswith("General retention rule:")


def test_narrowed_register_gives_the_same_status_as_the_whole(tmp_path):
    """The retention status computed on her rows alone equals the one from the whole register."""
    retention = pytest.importorskip("sheetreg.retention")
    from sheetreg.demo import make_demo_workbook
    from sheetreg.extract import _narrowed, client_rows

    path = tmp_path / "demo.xlsx"
    make_demo_workbook(path, clients=120, today=TODAY)
    register = read_register(path)
    whole = retention.client_statuses(register, TODAY)
    compared = 0
    for client_id, status in whole.items():
        rows = {
            key: client_rows(register.table(key), client_id)
            for key in ("clients", "invoices", "requests", "disclosures")
        }
        if len(rows["clients"]) != 1:
            continue
        narrow = retention.client_statuses(_narrowed(register, rows), TODAY)[client_id]
        assert narrow.state == status.state and narrow.end == status.end
        assert narrow.erasure_due == status.erasure_due
        assert [(h.kind, h.until, h.reason, h.fields) for h in narrow.holds] == [
            (h.kind, h.until, h.reason, h.fields) for h in status.holds
        ]
        assert retention.status_text(narrow, "fi") == retention.status_text(status, "fi")
        compared += 1
    assert compared > 100
