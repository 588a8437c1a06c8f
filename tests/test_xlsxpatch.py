"""The lossless package patcher: an edit changes that cell and nothing else, in real files."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import struct
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import python_calamine as pc
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sheetreg.errors import FidelityError, PatchError
from sheetreg.xlsxpatch import (
    CellEdit,
    PatchResult,
    Residue,
    find_text,
    patch_workbook,
    read_cells,
    sheet_parts,
    verify_patch,
)

from conftest import CORPUS, soffice_convert

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


# --- helpers -------------------------------------------------------------------------------


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def col_letter(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def calamine_cells(data: bytes, sheet: str) -> dict[str, object]:
    """Every non-empty cell of ``sheet`` as python-calamine reads it, keyed A1-style."""
    wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
    rows = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    return {
        f"{col_letter(c + 1)}{r + 1}": v
        for r, row in enumerate(rows)
        for c, v in enumerate(row)
        if v != ""
    }


def all_calamine_cells(data: bytes) -> dict[str, dict[str, object]]:
    wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return {name: calamine_cells(data, name) for name in wb.sheet_names}


def openpyxl_value(data: bytes, sheet: str, ref: str) -> object:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return wb[sheet][ref].value


def patched(data: bytes, edits: list[CellEdit]) -> PatchResult:
    """Patch and run the fidelity check, as the writer always does."""
    result = patch_workbook(data, edits)
    verify_patch(data, result, edits)
    return result


def contains_anywhere(data: bytes, text: str) -> list[str]:
    """Members whose bytes contain ``text`` (case-insensitive), XML-escaped or not."""
    needle = text.casefold()
    hits = []
    for name, raw in members(data).items():
        body = raw.decode("utf-8", "replace").casefold()
        escaped = needle.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if needle in body or escaped in body:
            hits.append(name)
    return hits


def sheet_xml(data: bytes, sheet: str) -> str:
    return members(data)[sheet_parts(data)[sheet]].decode()


def rezip(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """A copy of a package with members replaced (or dropped when None), order kept."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            if info.filename in change:
                content = change[info.filename]
                if content is None:
                    continue
            else:
                content = src.read(info.filename)
            dst.writestr(info, content)
    return out.getvalue()


# --- hand-made packages for the corner cases other writers produce -------------------------

STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<styleSheet xmlns="{MAIN_NS}"><numFmts count="1"><numFmt numFmtId="164" '
    'formatCode="0.000"/></numFmts><fonts count="1"><font><sz val="11"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" '
    'fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" '
    'fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" '
    'borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>'
)


def handmade(
    sheets: dict[str, str],
    *,
    strings: list[str] | None = None,
    prefix: str = "",
    absolute_targets: bool = False,
    date1904: bool = False,
    calc_chain: str | None = None,
    styles: str = STYLES,
) -> bytes:
    """A minimal package with the given sheetData bodies (written with ``prefix``)."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns:{prefix}="{MAIN_NS}"' if prefix else f'xmlns="{MAIN_NS}"'
    rel_ns = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    files: dict[str, str] = {}
    overrides = [
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>',
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.styles+xml"/>',
    ]
    rels = [
        f'<Relationship Id="rIdS" Type="{rel_ns}/styles" Target="'
        + ("/xl/styles.xml" if absolute_targets else "styles.xml")
        + '"/>'
    ]
    sheet_els = []
    for i, (name, body) in enumerate(sheets.items(), start=1):
        part = f"xl/worksheets/sheet{i}.xml"
        files[part] = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<{p}worksheet {xmlns} xmlns:r="{rel_ns}"><{p}dimension ref="A1"/>'
            f"{body}</{p}worksheet>"
        )
        overrides.append(
            f'<Override PartName="/{part}" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
        )
        target = f"/{part}" if absolute_targets else f"worksheets/sheet{i}.xml"
        rels.append(f'<Relationship Id="rId{i}" Type="{rel_ns}/worksheet" Target="{target}"/>')
        sheet_els.append(f'<{p}sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>')
    if strings is not None:
        items = "".join(f"<{p}si><{p}t>{s}</{p}t></{p}si>" for s in strings)
        files["xl/sharedStrings.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><{p}sst {xmlns} '
            f'count="{len(strings)}" uniqueCount="{len(strings)}">{items}</{p}sst>'
        )
        overrides.append(
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        )
        rels.append(
            f'<Relationship Id="rIdT" Type="{rel_ns}/sharedStrings" Target="sharedStrings.xml"/>'
        )
    if calc_chain is not None:
        files["xl/calcChain.xml"] = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<calcChain xmlns="{MAIN_NS}">{calc_chain}</calcChain>'
        )
        overrides.append(
            '<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.calcChain+xml"/>'
        )
        rels.append(f'<Relationship Id="rIdC" Type="{rel_ns}/calcChain" Target="calcChain.xml"/>')
    pr = f'<{p}workbookPr date1904="1"/>' if date1904 else ""
    files["xl/workbook.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<{p}workbook {xmlns} xmlns:r="{rel_ns}">{pr}<{p}sheets>{"".join(sheet_els)}'
        f"</{p}sheets></{p}workbook>"
    )
    files["xl/_rels/workbook.xml.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="'
        f'http://schemas.openxmlformats.org/package/2006/relationships">{"".join(rels)}'
        "</Relationships>"
    )
    files["xl/styles.xml"] = styles
    files["_rels/.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="'
        'http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
        f'Type="{rel_ns}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    files["[Content_Types].xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.'
        'openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType='
        '"application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        f'ContentType="application/xml"/>{"".join(overrides)}</Types>'
    )
    order = ["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels"]
    order += [n for n in files if n not in order]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in order:
            z.writestr(zipfile.ZipInfo(name, (2020, 5, 17, 10, 30, 0)), files[name])
    return out.getvalue()


# --- a register as XlsxWriter saves it (the way Excel does: shared strings) ------------------

FIRST = ["Aino", "Eero", "Helmi", "Ilmari", "Kaarina", "Lauri", "Maija", "Onni", "Saara", "Veikko"]
LAST = ["Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Heikkinen"]
HEADERS = [
    "Asiakasnumero",
    "Etunimi",
    "Sukunimi",
    "Puhelin",
    "Sähköposti",
    "Katuosoite",
    "Postinumero",
    "Postitoimipaikka",
    "Asiakkuus alkoi",
    "Kyselylupa",
    "Lisätiedot",
    "Tietosuojatila",
]
SECRET = "Zyxwvut Erityisnimi"  # a unique surname: the erasure tests look for it everywhere


def make_register(
    path: Path,
    rows: int = 200,
    *,
    comment: bool = False,
    doc_title: bool = False,
    table: bool = False,
) -> Path:
    """A Clients sheet of ``rows`` clients plus an Invoices sheet sharing strings with it."""
    wb = xlsxwriter.Workbook(str(path))
    if doc_title:
        wb.set_properties({"title": f"Asiakas {SECRET}"})
    date_fmt = wb.add_format({"num_format": "d.m.yyyy"})
    bold = wb.add_format({"bold": True})
    ws = wb.add_worksheet("Asiakkaat")
    ws.set_column(11, 11, 20, bold)  # Tietosuojatila: a column style new cells inherit
    data = []
    for i in range(rows):
        first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
        if i == 7:
            last = SECRET
        data.append(
            [
                f"A{1000 + i}",
                first,
                last,
                f"040 {i:03d} {i * 7 % 10000:04d}",
                f"{first.lower()}.{i}@example.fi",
                f"Hämeenkatu {i % 40 + 1}",
                f"{33100 + i % 50:05d}",
                "Tampere" if i % 3 else "Nokia",
                dt.date(2020, 1, 1) + dt.timedelta(days=i * 3),
                "Kyllä" if i % 2 else "Ei",
                None,
            ]
        )
    if table:
        ws.add_table(
            0, 0, rows, len(HEADERS) - 2, {"columns": [{"header": h} for h in HEADERS[:-1]]}
        )
    for c, h in enumerate(HEADERS):
        ws.write_string(0, c, h, bold)
    for r, row in enumerate(data, start=1):
        for c, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, dt.date):
                ws.write_datetime(r, c, dt.datetime.combine(v, dt.time()), date_fmt)
            else:
                ws.write_string(r, c, v)
    ws.set_row(rows + 2, 30)  # an empty row that exists only for its height
    if comment:
        ws.write_comment(8, 2, f"Soita {SECRET}lle maanantaina")
    inv = wb.add_worksheet("Laskut")
    inv.write_row(0, 0, ["Laskunumero", "Asiakasnumero", "Summa", "Maksettu", "Perinnässä"])
    for i in range(40):
        inv.write_row(i + 1, 0, [f"L{i:04d}", f"A{1000 + i}", 60.0 + i, None, "Ei"])
    wb.define_name("Asiakasrekisteri", "=Asiakkaat!$A$1:$L$201")
    wb.close()
    return path


@pytest.fixture
def register(tmp_path: Path) -> bytes:
    """A 200-client register as XlsxWriter writes it."""
    return make_register(tmp_path / "rekisteri.xlsx").read_bytes()


# --- the corpus: every real Excel file, one edit and one emptied cell -----------------------


@dataclass(frozen=True)
class CorpusCase:
    file: str
    sheet: str
    cell: str
    value: object
    empty: str | None = None


CORPUS_CASES = [
    CorpusCase("64759.xlsx", "File", "B2", "Suomi", empty="C3"),
    CorpusCase("51850.xlsx", "comments", "A2", "Uusi arvo", empty="B2"),
    CorpusCase("61652.xlsx", "Model", "A1", dt.date(2026, 1, 15), empty="C5"),
    CorpusCase("NewStyleConditionalFormattings.xlsx", "CF", "A5", 99),
    CorpusCase("49156.xlsx", "1", "K10", 7.25, empty="K11"),
    CorpusCase("123233_charts.xlsx", "data_Page1_1_2", "B3", 123.5, empty="A6"),
    CorpusCase("ExcelPivotTableSample.xlsx", "Tabelle1", "F3", 23, empty="A4"),
    CorpusCase("50867_with_table.xlsx", "Foglio1", "B2", "uusi", empty="C2"),
    CorpusCase("SimpleMacro.xlsm", "Sheet1", "A1", "Makrotyökirja", empty=None),
    CorpusCase("54399.xlsx", "Sheet3", "B6", dt.date(2024, 5, 6)),
    CorpusCase("48923.xlsx", "Sheet1", "B2", True, empty="A2"),
    CorpusCase("WithTextBox.xlsx", "Sheet1", "C5", "laatikon vieressä"),
]


def test_corpus_cases_cover_every_file():
    """Each of the twelve corpus files has a fidelity case."""
    assert {c.file for c in CORPUS_CASES} == {p.name for p in CORPUS.iterdir()}


def _same(got: object, want: object) -> bool:
    if isinstance(want, dt.date) and not isinstance(want, dt.datetime):
        return got in (want, dt.datetime.combine(want, dt.time()))
    if isinstance(want, bool):
        return got is want or got == want
    return got == want


@pytest.mark.parametrize("case", CORPUS_CASES, ids=lambda c: c.file)
def test_corpus_file_keeps_everything_but_the_edit(case: CorpusCase, tmp_path: Path):
    """One edit to a real Excel file: other parts byte-identical, other cells unchanged."""
    src = tmp_path / case.file
    shutil.copyfile(CORPUS / case.file, src)
    data = src.read_bytes()
    edits = [CellEdit(case.sheet, case.cell, case.value)]
    if case.empty:
        edits.append(CellEdit(case.sheet, case.empty, None))
    result = patched(data, edits)

    before, after = members(data), members(result.data)
    part = sheet_parts(data)[case.sheet]
    # A new string may land in the slot of the one it replaced: then only the table changes.
    assert part in result.changed_parts or "xl/sharedStrings.xml" in result.changed_parts
    assert list(after) == [n for n in before if n in after]
    for name in before:
        if name not in result.changed_parts:
            assert after[name] == before[name], name
    bookkeeping = {"xl/sharedStrings.xml", "xl/styles.xml", "xl/calcChain.xml"}
    assert set(result.changed_parts) <= {part, *bookkeeping} | {
        n for n in before if n.startswith("xl/worksheets/sheet")
    }

    old_cells, new_cells = all_calamine_cells(data), all_calamine_cells(result.data)
    edited = {e.cell for e in edits}
    for name, cells in old_cells.items():
        if name == case.sheet:
            keep = {k: v for k, v in cells.items() if k not in edited}
            assert {k: v for k, v in new_cells[name].items() if k not in edited} == keep
        else:
            assert new_cells[name] == cells, name
    assert _same(new_cells[case.sheet].get(case.cell), case.value)
    assert _same(openpyxl_value(result.data, case.sheet, case.cell), case.value)
    if case.empty:
        assert case.empty not in new_cells[case.sheet]
        assert openpyxl_value(result.data, case.sheet, case.empty) is None

    with zipfile.ZipFile(io.BytesIO(result.data)) as z, zipfile.ZipFile(src) as orig:
        old_infos = {i.filename: i for i in orig.infolist()}
        for info in z.infolist():
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.date_time == old_infos[info.filename].date_time


def test_threaded_comments_and_vba_survive_byte_for_byte():
    """Threaded comments, persons and the VBA project are copied, not re-serialised."""
    for name, parts in [
        ("64759.xlsx", ["xl/threadedComments/threadedComment1.xml", "xl/persons/person.xml"]),
        ("SimpleMacro.xlsm", ["xl/vbaProject.bin"]),
        ("54399.xlsx", ["customXml/item1.xml", "customXml/item2.xml"]),
    ]:
        data = (CORPUS / name).read_bytes()
        sheet = next(iter(sheet_parts(data)))
        result = patched(data, [CellEdit(sheet, "H9", "x")])
        for part in parts:
            assert members(result.data)[part] == members(data)[part]


# --- placement of new cells and rows ---------------------------------------------------------


def test_insert_into_an_existing_empty_row(register: bytes):
    """A row element without cells (kept for its height) receives the cell and keeps ht."""
    row = 203
    assert re.search(rf'<row r="{row}"[^>]*ht="30"[^>]*/>', sheet_xml(register, "Asiakkaat"))
    result = patched(register, [CellEdit("Asiakkaat", f"B{row}", "Uusi")])
    xml = sheet_xml(result.data, "Asiakkaat")
    assert re.search(rf'<row r="{row}"[^>]*ht="30"[^>]*><c r="B{row}"[^>]*t="s">', xml)
    assert calamine_cells(result.data, "Asiakkaat")[f"B{row}"] == "Uusi"


def test_insert_into_a_row_with_gaps_keeps_column_order():
    """A cell lands between its neighbours when the row has gaps."""
    body = (
        '<sheetData><row r="1" spans="1:5"><c r="A1"><v>1</v></c><c r="E1"><v>5</v></c>'
        "</row></sheetData>"
    )
    data = handmade({"S": body})
    result = patched(data, [CellEdit("S", "C1", 3), CellEdit("S", "F1", 6)])
    xml = sheet_xml(result.data, "S")
    assert re.findall(r'<c r="([A-Z]+)1"', xml) == ["A", "C", "E", "F"]
    assert 'spans="1:6"' in xml
    assert calamine_cells(result.data, "S") == {"A1": 1.0, "C1": 3.0, "E1": 5.0, "F1": 6.0}


def test_insert_past_the_last_row_grows_the_dimension(register: bytes):
    """A new row after the last one is appended in order and the dimension covers it."""
    result = patched(
        register, [CellEdit("Asiakkaat", "M250", 1), CellEdit("Asiakkaat", "A240", "A9999")]
    )
    xml = sheet_xml(result.data, "Asiakkaat")
    assert '<dimension ref="A1:M250"/>' in xml
    rows = [int(r) for r in re.findall(r'<row r="(\d+)"', xml)]
    assert rows == sorted(rows) and rows[-2:] == [240, 250]
    cells = calamine_cells(result.data, "Asiakkaat")
    assert cells["M250"] == 1.0 and cells["A240"] == "A9999"


def test_insert_between_rows_and_into_empty_sheet_data():
    """New rows go between existing ones, and into a <sheetData/> that had none."""
    body = (
        '<sheetData><row r="2"><c r="A2"><v>2</v></c></row>'
        '<row r="9"><c r="A9"><v>9</v></c></row></sheetData>'
    )
    data = handmade({"S": body, "Tyhjä": "<sheetData/>"})
    edits = [CellEdit("S", "B5", "viisi"), CellEdit("S", "A1", 1), CellEdit("Tyhjä", "D4", 4)]
    result = patched(data, edits)
    assert re.findall(r'<row r="(\d+)"', sheet_xml(result.data, "S")) == ["1", "2", "5", "9"]
    empty = sheet_xml(result.data, "Tyhjä")
    assert '<dimension ref="D4"/>' in empty and "<sheetData><row" in empty
    assert calamine_cells(result.data, "Tyhjä") == {"D4": 4.0}
    assert calamine_cells(result.data, "S") == {"A1": 1.0, "A2": 2.0, "B5": "viisi", "A9": 9.0}


def test_rows_and_cells_without_r_and_a_namespace_prefix():
    """Writers that omit r and prefix every element (<x:c>) are patched correctly."""
    body = (
        "<x:sheetData><x:row><x:c><x:v>1</x:v></x:c><x:c><x:v>2</x:v></x:c></x:row>"
        '<x:row><x:c t="s"><x:v>0</x:v></x:c></x:row></x:sheetData>'
    )
    data = handmade({"S": body}, strings=["vanha"], prefix="x")
    edits = [CellEdit("S", "A1", None), CellEdit("S", "C1", 3), CellEdit("S", "A2", "uusi")]
    result = patched(data, edits)
    assert calamine_cells(result.data, "S") == {"B1": 2.0, "C1": 3.0, "A2": "uusi"}
    assert '<x:c r="C1"><x:v>3</x:v></x:c>' in sheet_xml(result.data, "S")
    assert result.removed_strings == 1
    assert "vanha" not in members(result.data)["xl/sharedStrings.xml"].decode()


def test_absolute_relationship_targets_resolve():
    """Targets like /xl/worksheets/sheet1.xml resolve to the right part."""
    data = handmade({"Eka": "<sheetData/>", "Toka": "<sheetData/>"}, absolute_targets=True)
    assert sheet_parts(data) == {
        "Eka": "xl/worksheets/sheet1.xml",
        "Toka": "xl/worksheets/sheet2.xml",
    }
    result = patched(data, [CellEdit("toka", "a1", "x")])  # sheet and cell case-insensitive
    assert calamine_cells(result.data, "Toka") == {"A1": "x"}


# --- styles ------------------------------------------------------------------------------


def test_new_cells_inherit_row_or_column_style():
    """A new cell takes the row style when customFormat, else the column style."""
    data = (CORPUS / "51850.xlsx").read_bytes()
    result = patched(data, [CellEdit("comments", "C1", "r"), CellEdit("comments", "C2", "c")])
    xml = sheet_xml(result.data, "comments")
    assert re.search(r'<c r="C1" s="4" t="s">', xml)  # row 1: s="4" customFormat="1"
    assert re.search(r'<c r="C2" s="1" t="s">', xml)  # column C: style="1"


def test_overwrite_keeps_the_cell_style(register: bytes):
    """Overwriting a styled cell keeps its s attribute."""
    result = patched(register, [CellEdit("Asiakkaat", "A1", "Asiakas-ID")])
    old = re.search(r'<c r="A1" s="(\d+)"', sheet_xml(register, "Asiakkaat"))
    assert old and f'<c r="A1" s="{old[1]}" t="s">' in sheet_xml(result.data, "Asiakkaat")


def test_date_gets_a_date_format():
    """A date in an unformatted cell gets a date xf: appended once, reused after."""
    data = handmade({"S": "<sheetData/>"})
    edits = [
        CellEdit("S", "A1", dt.date(2026, 4, 15)),
        CellEdit("S", "A2", dt.datetime(2026, 4, 15, 12)),
    ]
    result = patched(data, edits)
    styles = members(result.data)["xl/styles.xml"].decode()
    assert '<cellXfs count="3">' in styles and 'numFmtId="14"' in styles
    assert re.findall(r'<c r="A\d" s="(\d)"', sheet_xml(result.data, "S")) == ["2", "2"]
    cells = calamine_cells(result.data, "S")
    assert cells["A1"] in (dt.date(2026, 4, 15), dt.datetime(2026, 4, 15))
    assert cells["A2"] == dt.datetime(2026, 4, 15, 12)
    assert openpyxl_value(result.data, "S", "A1") == dt.datetime(2026, 4, 15)


def test_date_reuses_an_existing_date_format(register: bytes):
    """A date written into the register reuses its d.m.yyyy style; styles.xml is unchanged."""
    result = patched(
        register,
        [
            CellEdit("Asiakkaat", "I5", dt.date(2026, 1, 31)),
            CellEdit("Asiakkaat", "M5", dt.date(2026, 2, 1)),
        ],
    )
    assert "xl/styles.xml" not in result.changed_parts
    cells = calamine_cells(result.data, "Asiakkaat")
    assert cells["I5"] in (dt.date(2026, 1, 31), dt.datetime(2026, 1, 31))
    assert cells["M5"] in (dt.date(2026, 2, 1), dt.datetime(2026, 2, 1))


def test_date1904_workbooks_get_1904_serials():
    """The 1904 date system shifts the serial number by 1462 days."""
    data = handmade({"S": "<sheetData/>"}, date1904=True)
    result = patched(data, [CellEdit("S", "A1", dt.date(2026, 4, 15))])
    assert read_cells(result.data, "S", ["A1"])["A1"] == 46127 - 1462
    assert openpyxl_value(result.data, "S", "A1") == dt.datetime(2026, 4, 15)


# --- overwriting each kind of value -------------------------------------------------------


def test_overwrite_each_value_kind():
    """Shared strings, inline strings, numbers, booleans and dates can all be overwritten."""
    body = (
        '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>inline'
        '</t></is></c><c r="C1"><v>3.5</v></c><c r="D1" t="b"><v>1</v></c><c r="E1" s="1">'
        "<v>45000</v></c></row></sheetData>"
    )
    data = handmade({"S": body}, strings=["jaettu"])
    edits = [
        CellEdit("S", "A1", 1),
        CellEdit("S", "B1", False),
        CellEdit("S", "C1", "teksti"),
        CellEdit("S", "D1", "  välilyönnit  "),
        CellEdit("S", "E1", -0.25),
    ]
    result = patched(data, edits)
    assert calamine_cells(result.data, "S") == {
        "A1": 1.0,
        "B1": False,
        "C1": "teksti",
        "D1": "  välilyönnit  ",
        "E1": -0.25,
    }
    assert 'xml:space="preserve"' in members(result.data)["xl/sharedStrings.xml"].decode()
    assert result.removed_strings == 1  # "jaettu" was used only by A1
    assert [r.needle for r in result.residues] == []


def test_strings_without_a_shared_string_table_are_written_inline(tmp_path: Path):
    """A package without sharedStrings.xml gets inline strings and no new part."""
    path = tmp_path / "inline.xlsx"
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    wb.add_worksheet("S").write_string(0, 0, "vanha")
    wb.close()
    data = path.read_bytes()
    result = patched(data, [CellEdit("S", "A1", "uusi & <ehkä>"), CellEdit("S", "B2", "toinen")])
    assert set(members(result.data)) == set(members(data))
    assert 't="inlineStr"' in sheet_xml(result.data, "S")
    assert calamine_cells(result.data, "S") == {"A1": "uusi & <ehkä>", "B2": "toinen"}
    assert openpyxl_value(result.data, "S", "A1") == "uusi & <ehkä>"
    assert result.residues == []  # the old inline text is gone with its cell


def test_text_that_looks_like_an_excel_escape_round_trips():
    """Text containing _x0041_, a CR or an apostrophe reads back exactly."""
    data = handmade({"S": "<sheetData/>"}, strings=[])
    values = ["a_x0041_b", "rivi1\r\nrivi2", 'O\'Brien "lainaus"']
    result = patched(data, [CellEdit("S", f"A{i + 1}", v) for i, v in enumerate(values)])
    assert [calamine_cells(result.data, "S")[f"A{i + 1}"] for i in range(3)] == values
    assert [
        read_cells(result.data, "S", ["A1", "A2", "A3"])[f"A{i + 1}"] for i in range(3)
    ] == values


def test_reuses_an_existing_shared_string(register: bytes):
    """Writing a string the table already holds adds no <si>."""
    result = patched(register, [CellEdit("Asiakkaat", "L2", "Tampere")])
    old_sst = members(register)["xl/sharedStrings.xml"]
    new_sst = members(result.data)["xl/sharedStrings.xml"]
    assert new_sst.count(b"<si>") == old_sst.count(b"<si>")
    assert calamine_cells(result.data, "Asiakkaat")["L2"] == "Tampere"


def test_overwriting_a_formula_updates_calc_chain():
    """Overwriting a formula drops its calcChain entry only (same cell on another sheet stays)."""
    data = (CORPUS / "61652.xlsx").read_bytes()
    result = patched(data, [CellEdit("Model", "A1", 5)])
    chain = members(result.data)["xl/calcChain.xml"].decode()
    assert '<c r="A1" i="15"' in chain  # IRPPCalc!A1 (sheetId 15) keeps its entry
    assert not re.search(r'<c r="A1" i="1"', chain)
    assert "<f>" not in re.search(r'<c r="A1".*?</c>', sheet_xml(result.data, "Model"))[0]


def test_calc_chain_sticky_sheet_id_moves_to_the_next_entry():
    """Removing the entry that carried i= writes i= on the entry that inherited it."""
    data = (CORPUS / "49156.xlsx").read_bytes()
    assert b'<c r="EF37" i="18"/><c r="H60"/>' in members(data)["xl/calcChain.xml"]
    result = patched(data, [CellEdit("1", "EF37", None)])
    chain = members(result.data)["xl/calcChain.xml"]
    assert (
        b'<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<c r="H60" i="18"/><c r="H61"/>' in chain
    )


def test_last_formula_gone_drops_calc_chain_and_its_references():
    """When no formula is left, calcChain goes with its relationship and content type."""
    body = '<sheetData><row r="1"><c r="A1"><f>1+1</f><v>2</v></c></row></sheetData>'
    data = handmade({"S": body}, calc_chain='<c r="A1" i="1"/>')
    result = patched(data, [CellEdit("S", "A1", "arvo")])
    parts = members(result.data)
    assert "xl/calcChain.xml" not in parts
    assert "calcChain" not in parts["xl/_rels/workbook.xml.rels"].decode()
    assert "calcChain" not in parts["[Content_Types].xml"].decode()
    assert set(result.changed_parts) >= {
        "xl/calcChain.xml",
        "xl/_rels/workbook.xml.rels",
        "[Content_Types].xml",
    }
    assert calamine_cells(result.data, "S") == {"A1": "arvo"}


def test_emptying_cells_removes_them_or_keeps_their_style():
    """None removes an unstyled cell and leaves a styled one as <c r s/>."""
    body = (
        '<sheetData><row r="1"><c r="A1"><v>1</v></c><c r="B1" s="1"><v>2</v></c>'
        '<c r="C1"><v>3</v></c></row></sheetData>'
    )
    data = handmade({"S": body})
    result = patched(
        data, [CellEdit("S", "A1", None), CellEdit("S", "B1", None), CellEdit("S", "Z9", None)]
    )
    xml = sheet_xml(result.data, "S")
    assert '<row r="1"><c r="B1" s="1"/><c r="C1"><v>3</v></c></row>' in xml
    assert "Z9" not in xml
    assert calamine_cells(result.data, "S") == {"C1": 3.0}


# --- Excel tables ---------------------------------------------------------------------------


def test_edit_below_a_table_grows_it():
    """A value in the row under an Excel table extends its ref and autoFilter."""
    data = (CORPUS / "50867_with_table.xlsx").read_bytes()
    result = patched(data, [CellEdit("Foglio1", "B4", 7)])
    table = members(result.data)["xl/tables/table1.xml"].decode()
    assert 'ref="A1:C4"' in table and '<autoFilter ref="A1:C4"/>' in table
    assert "xl/tables/table1.xml" in result.changed_parts
    assert (
        openpyxl.load_workbook(io.BytesIO(result.data))["Foglio1"].tables["Tabella1"].ref == "A1:C4"
    )


def test_edits_inside_beside_or_far_below_a_table_leave_it(register: bytes):
    """Edits inside the table, right of it or two rows below do not touch the table."""
    data = (CORPUS / "50867_with_table.xlsx").read_bytes()
    edits = [
        CellEdit("Foglio1", "A2", 1),
        CellEdit("Foglio1", "D4", 1),
        CellEdit("Foglio1", "A5", 1),
    ]
    result = patched(data, edits)
    assert "xl/tables/table1.xml" not in result.changed_parts


def test_consecutive_rows_below_a_table_grow_it_by_all(tmp_path: Path):
    """Appending two clients under an XlsxWriter table grows it by two rows."""
    data = make_register(tmp_path / "t.xlsx", rows=20, table=True).read_bytes()
    result = patched(
        data, [CellEdit("Asiakkaat", "A22", "A2000"), CellEdit("Asiakkaat", "B23", "Uusi")]
    )
    table = next(v for k, v in members(result.data).items() if k.startswith("xl/tables/")).decode()
    assert 'ref="A1:K23"' in table


# --- erasure-grade removal ----------------------------------------------------------------


def test_erased_string_is_gone_from_the_whole_package(register: bytes):
    """Emptying the only cell holding a surname removes it from every part."""
    assert contains_anywhere(register, SECRET) == ["xl/sharedStrings.xml"]
    result = patched(register, [CellEdit("Asiakkaat", "C9", None)])
    assert contains_anywhere(result.data, SECRET) == []
    assert result.removed_strings == 1
    assert result.residues == []


def test_erasing_a_client_row(register: bytes):
    """Emptying a whole client row removes its unique strings and keeps shared ones."""
    edits = [CellEdit("Asiakkaat", f"{col_letter(c)}9", None) for c in range(1, 12)]
    before = calamine_cells(register, "Asiakkaat")
    result = patched(register, edits)
    after = calamine_cells(result.data, "Asiakkaat")
    assert {k: v for k, v in before.items() if not re.fullmatch(r"[A-K]9", k)} == after
    for unique in (SECRET, "040 007 0049", "onni.7@example.fi"):
        assert contains_anywhere(result.data, unique) == [], unique
    # Tampere, Onni, Kyllä, ... are still used by other clients: kept and reported.
    kinds = {(r.part, r.kind) for r in result.residues}
    assert ("xl/sharedStrings.xml", "shared-strings") in kinds
    assert result.removed_strings == 3  # surname, phone, e-mail (the id is in Laskut too)
    assert all_calamine_cells(result.data)["Laskut"] == all_calamine_cells(register)["Laskut"]


def test_residues_report_comments_and_doc_properties(tmp_path: Path):
    """A name kept in a comment and in docProps is still there and reported."""
    data = make_register(tmp_path / "r.xlsx", comment=True, doc_title=True).read_bytes()
    result = patched(data, [CellEdit("Asiakkaat", "C9", "Poistettu")])
    assert result.removed_strings == 1
    assert set(contains_anywhere(result.data, SECRET)) == {"xl/comments1.xml", "docProps/core.xml"}
    assert {(r.part, r.kind, r.needle) for r in result.residues} == {
        ("xl/comments1.xml", "comment", 0),
        ("docProps/core.xml", "doc-property", 0),
    }


def test_residues_in_chart_and_pivot_caches(tmp_path: Path):
    """Old values still held by chart caches, pivot caches and other cells are found."""
    data = (CORPUS / "123233_charts.xlsx").read_bytes()
    result = patched(data, [CellEdit("data_Page1_1_2", "A6", None)])
    assert {r.kind for r in result.residues} == {"shared-strings"}  # other data sheets use it
    path = tmp_path / "chart.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("S")
    ws.write_column(0, 0, ["Nimi", "Aino Ainutlaatuinen", "Eero"])
    ws.write_column(0, 1, ["Summa", 3, 4])
    chart = wb.add_chart({"type": "column"})
    chart.add_series({"categories": "=S!$A$2:$A$3", "values": "=S!$B$2:$B$3"})
    ws.insert_chart("D2", chart)
    wb.close()
    result = patched(path.read_bytes(), [CellEdit("S", "A2", None)])
    assert result.residues == [Residue("xl/charts/chart1.xml", "chart-cache", 0)]
    assert result.removed_strings == 1
    pivot = (CORPUS / "ExcelPivotTableSample.xlsx").read_bytes()
    result = patched(pivot, [CellEdit("Tabelle1", "E3", "muu")])
    assert "pivot-cache" in {r.kind for r in result.residues}


def test_orphaned_strings_are_emptied_in_place(register: bytes):
    """Strings no cell uses any more are emptied in their slots: nothing is renumbered, so
    every other sheet stays byte-identical and every other cell reads the same."""
    edits = [CellEdit("Asiakkaat", f"{c}2", None) for c in "ABCDEFGH"]
    edits += [CellEdit("Asiakkaat", f"{c}{r}", f"muutettu {c}{r}") for r in (3, 4) for c in "DEF"]
    result = patched(register, edits)
    assert result.removed_strings > 0
    before, after = all_calamine_cells(register), all_calamine_cells(result.data)
    edited = {e.cell for e in edits}
    assert {k: v for k, v in after["Asiakkaat"].items() if k not in edited} == {
        k: v for k, v in before["Asiakkaat"].items() if k not in edited
    }
    assert "xl/worksheets/sheet2.xml" not in result.changed_parts
    old, new = members(register), members(result.data)
    assert new["xl/worksheets/sheet2.xml"] == old["xl/worksheets/sheet2.xml"]
    old_sst, new_sst = old["xl/sharedStrings.xml"], new["xl/sharedStrings.xml"]
    # The same slots, plus one for each new text written.
    assert new_sst.count(b"<si>") == old_sst.count(b"<si>") + 6
    assert new_sst.count(b"<si><t/></si>") == result.removed_strings


@pytest.fixture
def parsed_whole(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parts the proof parses whole to tell they are well-formed, in order, from now on."""
    from sheetreg import xlsxpatch as xp

    parsed: list[str] = []
    real = xp._check_well_formed

    def spy(name: str, data: bytes) -> None:
        parsed.append(name)
        real(name, data)

    monkeypatch.setattr(xp, "_check_well_formed", spy)
    return parsed


def test_a_string_table_is_proven_well_formed_from_its_changed_strings(
    register: bytes, parsed_whole: list[str]
):
    """Emptied cells blank their strings: the proof then parses the changed strings (and
    the table's prolog and root) rather than the whole table, when the original is one
    string element after another (XlsxWriter's and Excel's); a changed string, the table's
    end or its root that is not well-formed is caught all the same, by the whole parse."""
    parsed = parsed_whole
    edits = [CellEdit("Asiakkaat", f"{c}2", None) for c in "ABCDEFGH"]
    result = patch_workbook(register, edits)
    assert result.removed_strings > 0 and "xl/sharedStrings.xml" in result.changed_parts
    verify_patch(register, result, edits)
    assert "xl/sharedStrings.xml" not in parsed
    sst = members(result.data)["xl/sharedStrings.xml"]
    blank = b"<si><t/></si>"
    assert blank in sst
    for name, bad in (
        ("a changed string", sst.replace(blank, b"<si><t></si>", 1)),
        ("the end", sst.replace(b"</sst>", b"<oops></sst>")),
        ("the root", sst.replace(b"<sst ", b"<sst a='1' a='2' ", 1)),
        ("an unchanged string", sst.replace(b"</t></si>", b"</si>", 1)),
    ):
        broken = replace(result, data=rezip(result.data, {"xl/sharedStrings.xml": bad}))
        parsed.clear()
        with pytest.raises(FidelityError, match=r"sharedStrings\.xml is not well-formed"):
            verify_patch(register, broken, edits)
        assert parsed == ["xl/sharedStrings.xml"], name
    # A table written otherwise (a line between strings) is parsed whole, and passes.
    loose = members(register)["xl/sharedStrings.xml"].replace(b"</si><si>", b"</si>\n<si>")
    spaced = rezip(register, {"xl/sharedStrings.xml": loose})
    result = patch_workbook(spaced, edits)
    parsed.clear()
    verify_patch(spaced, result, edits)
    assert parsed == ["xl/sharedStrings.xml"]


def test_the_last_string_changed_before_an_extension_list_is_proven_too(
    parsed_whole: list[str],
):
    """The last string blanked, with the table's extension list after it: what follows the
    last string is parsed as its own piece, so a break there is caught."""
    strings = ["eka", "toka", "viimeinen"]
    body = (
        '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
        '<c r="C1" t="s"><v>2</v></c></row></sheetData>'
    )
    data = handmade({"Yksi": body}, strings=strings)
    sst = members(data)["xl/sharedStrings.xml"]
    ext = b'<extLst><ext uri="x"><y/></ext></extLst></sst>'
    data = rezip(data, {"xl/sharedStrings.xml": sst.replace(b"</sst>", ext)})
    edits = [CellEdit("Yksi", "C1", None)]
    result = patch_workbook(data, edits)
    new = members(result.data)["xl/sharedStrings.xml"]
    assert new.endswith(b"<si><t/></si>" + ext)
    verify_patch(data, result, edits)
    assert parsed_whole == []
    bad = rezip(result.data, {"xl/sharedStrings.xml": new.replace(b"<y/>", b"<y>")})
    with pytest.raises(FidelityError, match=r"sharedStrings\.xml is not well-formed"):
        verify_patch(data, replace(result, data=bad), edits)


def test_a_compact_string_table_is_one_string_element_after_another():
    """The shape that lets a table be proven from its changed strings alone: strings one
    after another from the start; not with anything between them, nested, self-closing,
    or where a comment, CDATA section or processing instruction could hide markup."""
    from sheetreg.xlsxpatch import _SharedStrings

    def compact(body: str, prefix: str = "") -> bool:
        p = f"{prefix}:" if prefix else ""
        xmlns = f'xmlns:{prefix}="{MAIN_NS}"' if prefix else f'xmlns="{MAIN_NS}"'
        data = f'<?xml version="1.0"?>\n<{p}sst {xmlns} count="9">{body}</{p}sst>'
        return _SharedStrings("sst.xml", data.encode()).compact()

    assert compact("<si><t>a</t></si><si><r><t>b</t></r></si><si><t/></si>")
    assert compact("\n  <si><t>a</t></si><si><t>b</t></si><extLst/>")
    assert compact("<x:si><x:t>a</x:t></x:si><x:si><x:t>b</x:t></x:si>", "x")
    for body in (
        "",
        "<si><t>a</t></si>\n<si><t>b</t></si>",
        "<extLst/><si><t>a</t></si>",
        "<si><t>a</t></si><si><si><t>b</t></si></si>",
        "<si><t>a</t></si><si/>",
        '<si><t>a</t></si><si xml:space="preserve"><t>b</t></si>',
        "<si><t>a</t></si><!-- <si><t>b</t></si> --><si><t>c</t></si>",
        "<si><t><![CDATA[a]]></t></si><si><t>b</t></si>",
        "<si><t>a</t></si><?pi x?><si><t>b</t></si>",
    ):
        assert not compact(body), body


def test_an_emptied_string_changes_no_other_sheet():
    """Only the edited sheet and the string table change; the emptied slot keeps its place."""
    strings = ["poistuva", "pysyvä", "viimeinen"]
    s1 = (
        '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
        "</row></sheetData>"
    )
    s2 = (
        '<sheetData><row r="1"><c r="A1" t="s"><v>2</v></c><c r="B1" t="s"><v>1</v></c>'
        "</row></sheetData>"
    )
    data = handmade({"Yksi": s1, "Kaksi": s2}, strings=strings)
    result = patched(data, [CellEdit("Yksi", "A1", None)])
    assert result.changed_parts == ["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"]
    assert result.removed_strings == 1
    assert calamine_cells(result.data, "Kaksi") == {"A1": "viimeinen", "B1": "pysyvä"}
    assert calamine_cells(result.data, "Yksi") == {"B1": "pysyvä"}
    sst = members(result.data)["xl/sharedStrings.xml"].decode()
    assert 'count="2" uniqueCount="3"' in sst
    assert "poistuva" not in sst and sst.index("<si><t/></si>") < sst.index("pysyvä")


def test_emptied_strings_with_many_other_references_are_kept_and_the_rest_removed():
    """Erasing one cell of each of 80 strings: a string other cells still use (hundreds of
    them, before and after cells of strings used nowhere else, and in number and inline cells
    that only look alike) is kept, and exactly the strings no other text cell uses are
    removed, as a brute-force count of the references says."""
    strings = [f"s{i}" for i in range(80)]
    rows = []
    edits = []
    kept = set()
    for i in range(80):  # row i + 1 holds string i in A; the edit empties it
        rows.append(f'<row r="{i + 1}"><c r="A{i + 1}" t="s"><v>{i}</v></c></row>')
        edits.append(CellEdit("S", f"A{i + 1}", None))
    r = 81
    for rep in range(300):  # strings 0..39 are used again, over and over, and late ones once
        for i in range(0, 40, 3) if rep < 299 else range(40, 80, 7):
            rows.append(f'<row r="{r}"><c r="B{r}" t="s"><v>{i}</v></c></row>')
            kept.add(i)
            r += 1
    # The same numbers as a number and as inline text: not references to the strings.
    rows.append(f'<row r="{r}"><c r="C{r}"><v>41</v></c><c r="D{r}" t="inlineStr"><is>'
                f"<t>43</t></is></c></row>")  # fmt: skip
    data = handmade({"S": "<sheetData>" + "".join(rows) + "</sheetData>"}, strings=strings)
    result = patched(data, edits)
    assert result.removed_strings == 80 - len(kept)
    sst = members(result.data)["xl/sharedStrings.xml"].decode()
    for i in range(80):
        assert (f"<t>s{i}</t>" in sst) == (i in kept), i


def test_swapping_two_strings_keeps_both():
    """Two cells trading values: neither string is orphaned."""
    body = (
        '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
        "</row></sheetData>"
    )
    data = handmade({"S": body}, strings=["eka", "toka"])
    result = patched(data, [CellEdit("S", "A1", "toka"), CellEdit("S", "B1", "eka")])
    assert result.removed_strings == 0
    assert calamine_cells(result.data, "S") == {"A1": "toka", "B1": "eka"}


def test_cell_edits_pickle_as_their_fields():
    """Edits travel to the checks' children pickled: every kind of value comes back equal."""
    import pickle

    edits = [
        CellEdit("Asiakkaat", "S2", "Päättynyt 3.11.2026"),
        CellEdit("S", "A1", None),
        CellEdit("S", "B1", dt.date(2026, 11, 3)),
        CellEdit("S", "C1", 2.5),
        CellEdit("S", "D1", True),
    ]
    back = pickle.loads(pickle.dumps(edits))
    assert back == edits and [type(e.value) for e in back] == [type(e.value) for e in edits]


# --- find_text ---------------------------------------------------------------------------


def test_find_text_matches_escaped_and_case_insensitive_but_not_markup():
    """Needles match text and attribute values in any case, escaped or not; never tag names."""
    s1 = (
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Smith &amp; Sons</t></is></c>'
        "</row></sheetData>"
    )
    data = handmade({"S": s1}, strings=["MÄKINEN"])
    hits = find_text(data, ["smith & sons", "mäkinen", "sheetData", "nobody"])
    assert {(r.part, r.needle) for r in hits} == {
        ("xl/worksheets/sheet1.xml", 0),
        ("xl/sharedStrings.xml", 1),
    }


def test_find_text_sees_character_references_and_attribute_values():
    """A value written as &#228; or held in an attribute (pivot caches do) is found."""
    rows = "".join(
        f'<row r="{r}" ht="20" customHeight="1"><c r="A{r}"><v>{r}</v></c></row>'
        for r in range(1, 200)
    )
    data = handmade({"S": f"<sheetData>{rows}</sheetData>"}, strings=["M&#228;kinen"])
    cache = b'<pivotCacheRecords><r><s v="Virtanen"/></r></pivotCacheRecords>'
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("xl/pivotCache/pivotCacheRecords1.xml", cache)
    data = buf.getvalue()
    hits = find_text(data, ["MÄKINEN", "virtanen", "ei"])  # "ei" only in customHeight
    assert {(r.part, r.kind, r.needle) for r in hits} == {
        ("xl/sharedStrings.xml", "shared-strings", 0),
        ("xl/pivotCache/pivotCacheRecords1.xml", "pivot-cache", 1),
    }


def _find_text_cases() -> tuple[bytes, list[str]]:
    """A package whose values sit everywhere a piece's edge could fall: text, attributes,
    references, markup, a part in UTF-16 and one with CDATA."""
    rows = []
    for r in range(1, 120):
        text = ["Aalto", "Äijälä &amp; Co", "M&#228;kinen", "x" * (r % 7), "Öhman"][r % 5]
        rows.append(
            f'<row r="{r}" ht="20" customHeight="1"><c r="A{r}" t="inlineStr"><is><t>'
            f'{text}{r}</t></is></c><c r="B{r}"><v>{r}</v></c></row>'
        )
    data = handmade({"S": f"<sheetData>{''.join(rows)}</sheetData>"}, strings=["Virtanen"])
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr(
            "xl/pivotCache/pivotCacheRecords1.xml",
            '<?xml version="1.0" encoding="UTF-16"?><r><s v="Lahtinen"/></r>'.encode("utf-16"),
        )
        z.writestr(
            "xl/comments1.xml",
            "<comments><t><![CDATA[<b x='1' Nieminen>]]></t>" + "<t>pad</t>" * 40 + "</comments>",
        )
    needles = [
        "aaltonen",  # nowhere
        "aalto5",
        "äijälä & co61",
        "mäkinen2",
        "mäkinen117",
        "öhman119",
        "customheight",  # markup only
        "lahtinen",
        "nieminen",
        "virtanen",
        "ei",  # only in customHeight: never content
    ]
    return buf.getvalue(), needles


# What a search of _find_text_cases() finds: (part, needle).
_FOUND_IN_CASES = {
    ("xl/worksheets/sheet1.xml", "aalto5"),
    ("xl/worksheets/sheet1.xml", "äijälä & co61"),
    ("xl/worksheets/sheet1.xml", "mäkinen2"),
    ("xl/worksheets/sheet1.xml", "mäkinen117"),
    ("xl/worksheets/sheet1.xml", "öhman119"),
    ("xl/pivotCache/pivotCacheRecords1.xml", "lahtinen"),
    ("xl/comments1.xml", "nieminen"),
    ("xl/sharedStrings.xml", "virtanen"),
}


@pytest.mark.parametrize("piece", [17, 40, 64, 333, 4 << 20])
def test_find_text_in_pieces_finds_what_a_whole_search_finds(
    piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part is searched a piece at a time: every size of piece, down to pieces shorter
    than a needle, finds exactly what one search of the whole part finds."""
    import sheetreg.xlsxpatch as xp

    data, needles = _find_text_cases()
    monkeypatch.setattr(xp, "_SEARCH_PIECE", piece)
    got = {(r.part, needles[r.needle]) for r in find_text(data, needles)}
    assert got == _FOUND_IN_CASES


@given(
    text=st.text(alphabet="<>ab&;#x", max_size=300),
    size=st.integers(1, 40),
    overlap=st.integers(0, 20),
)
def test_xml_pieces_cover_every_short_text_from_its_own_piece(
    text: str, size: int, overlap: int
) -> None:
    """Each piece after the first starts at the first '<' at least ``size`` bytes past the
    previous one's start; any run of up to ``overlap`` bytes lies whole in the piece in which it
    starts; every piece ends at the end or just before a '<'."""
    from sheetreg.xlsxpatch import _xml_pieces

    data = text.encode()
    pieces = list(_xml_pieces(io.BytesIO(data), size, overlap))
    starts = [0]
    while (nxt := data.find(b"<", starts[-1] + size)) >= 0 and len(starts) < len(pieces):
        starts.append(nxt)
    assert len(starts) == len(pieces)
    for start, piece in zip(starts, pieces, strict=True):
        assert data.startswith(piece, start)
        end = start + len(piece)
        assert end == len(data) or data[end : end + 1] == b"<"
    assert data.endswith(pieces[-1])
    for pos in range(len(data)):
        n = max(k for k, start in enumerate(starts) if start <= pos)
        assert starts[n] + len(pieces[n]) >= min(len(data), pos + overlap)


def test_find_text_needle_with_markup_across_a_piece_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value with '<' in it matches as written up to a tag; the piece holding its start
    holds all of it, even when the next piece starts at that tag."""
    import sheetreg.xlsxpatch as xp

    part = b"<x><t>" + b"a" * 50 + b"bc</t></x>"
    monkeypatch.setattr(xp, "_SEARCH_PIECE", part.index(b"</t>"))
    hits = xp._find_text_in(["p.xml"], lambda _n: io.BytesIO(part), {}, ["BC</T"])
    assert hits == [xp.Residue("p.xml", xp._part_kind("p.xml"), 0)]


@given(text=st.text(max_size=60))
def test_quick_fold_is_the_careful_searchs_text_in_utf8(text: str) -> None:
    """The quick search reads a piece as the careful one does: decoded, case-folded (ß, the
    Kelvin sign, İ, Greek and Cherokee letters alike), in UTF-8; only character references,
    which the careful search resolves, make it step aside."""
    from sheetreg.xlsxpatch import _quick_fold

    folds = "Äijälä STRAßE \u212a İstanbul ΣΊΣΥΦΟΣ \uab70"
    for sample in (text, folds + text, text + "M&#228;kinen"):
        raw = sample.encode("utf-8")  # text() draws no lone surrogates: as a decoded part
        got = _quick_fold(raw)
        if "&#" in sample:
            assert got is None
        else:
            assert got == sample.casefold().encode("utf-8")


def test_quick_fold_leaves_bytes_that_are_not_utf8() -> None:
    """Bytes that are not UTF-8 stay as they are (no variant is made of them), and the
    characters around them are folded still."""
    from sheetreg.xlsxpatch import _quick_fold

    assert _quick_fold(b"\xc3A\xa4\xc3\x84\xff") == b"\xc3a\xa4\xc3\xa4\xff"


@pytest.mark.parametrize("quick", [True, False])
def test_find_text_quick_pass_only_skips_pieces_with_nothing(
    quick: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces where the quick search sees no variant are skipped; where it sees one (even in
    markup, as "ei" in customHeight), or cannot tell (a character reference), the careful
    search decides: the same hits with the quick search as without it."""
    import sheetreg.xlsxpatch as xp

    data, needles = _find_text_cases()
    monkeypatch.setattr(xp, "_SEARCH_PIECE", 64)
    careful_pieces = []
    real = xp._search_text

    def counting(text: str, *args: object, **kwargs: object) -> None:
        careful_pieces.append(text)
        real(text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(xp, "_search_text", counting)
    if not quick:
        monkeypatch.setattr(xp, "_may_hold", lambda piece, automata: True)
    got = {(r.part, needles[r.needle]) for r in find_text(data, needles)}
    assert got == _FOUND_IN_CASES
    if quick:  # without the needles found in markup, many pieces hold none of them
        rare = [n for n in needles if n not in ("ei", "customheight")]
        careful_pieces.clear()
        find_text(data, rare)
        skipping = len(careful_pieces)
        monkeypatch.setattr(xp, "_may_hold", lambda piece, automata: True)
        careful_pieces.clear()
        find_text(data, rare)
        assert skipping < 0.6 * len(careful_pieces)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.text(alphabet="aAäÄsSßk\u212a &<>;#x\"'=0", max_size=12), max_size=12),
    needles=st.lists(st.text(alphabet="aAäÄsSßk\u212a &#x", min_size=1, max_size=5), max_size=4),
    piece=st.integers(8, 80),
)
def test_find_text_with_and_without_the_quick_pass(
    cells: list[str], needles: list[str], piece: int
) -> None:
    """Whatever the text and the needles, the quick pass changes no result."""
    from xml.sax.saxutils import escape

    import sheetreg.xlsxpatch as xp

    body = "".join(
        f'<c r="A{n}" t="inlineStr" s="{escape(c, {chr(34): "&quot;"})}"><is><t>{escape(c)}</t>'
        "</is></c>"
        for n, c in enumerate(cells, 1)
    )
    part = f"<sheetData><row>{body}</row></sheetData>".encode()
    needles = [n for n in needles if n.strip()]
    old = xp._SEARCH_PIECE
    try:
        xp._SEARCH_PIECE = piece
        quick = xp._find_text_in(["p.xml"], lambda _n: io.BytesIO(part), {}, needles)
        real = xp._may_hold
        xp._may_hold = lambda piece, automata: True
        try:
            careful = xp._find_text_in(["p.xml"], lambda _n: io.BytesIO(part), {}, needles)
        finally:
            xp._may_hold = real
    finally:
        xp._SEARCH_PIECE = old
    assert quick == careful


def test_xml_pieces_are_pieces() -> None:
    """A long part does come in many short pieces (the memory the search saves)."""
    from sheetreg.xlsxpatch import _xml_pieces

    pieces = list(_xml_pieces(io.BytesIO(b"<c><v>1</v></c>" * 1000), 100, 10))
    assert len(pieces) > 100
    assert max(map(len, pieces)) < 140


def test_read_cells_decodes_each_kind():
    """read_cells resolves shared and inline strings, booleans, numbers and empty cells."""
    body = (
        '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><r><t>'
        'rich </t></r><r><t>text</t></r></is></c><c r="C1" t="b"><v>1</v></c>'
        '<c r="D1"><v>2.5</v></c><c r="E1"><v>45000</v></c><c r="F1" s="1"/></row></sheetData>'
    )
    data = handmade({"S": body}, strings=["jaettu &amp; co"])
    got = read_cells(data, "S", ["A1", "b1", "C1", "D1", "E1", "F1", "Z9"])
    assert got == {
        "A1": "jaettu & co",
        "b1": "rich text",
        "C1": True,
        "D1": 2.5,
        "E1": 45000,
        "F1": None,
        "Z9": None,
    }


def test_writing_the_value_a_cell_already_has_changes_nothing(register: bytes):
    """An edit that writes the same value leaves every part byte-identical."""
    result = patched(
        register, [CellEdit("Asiakkaat", "B2", "Aino"), CellEdit("Asiakkaat", "Q9", None)]
    )
    assert result.changed_parts == [] and result.removed_strings == 0
    assert members(result.data) == members(register)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (CellEdit("Puuttuu", "A1", 1), "no sheet named"),
        (CellEdit("S", "B0", 1), "not a cell reference"),
        (CellEdit("S", "$B$2", 1), "not a cell reference"),
        (CellEdit("S", "XFE1", 1), "not a cell reference"),
        (CellEdit("S", "A1048577", 1), "not a cell reference"),
        (CellEdit("S", "A1", float("nan")), "NaN"),
        (CellEdit("S", "A1", float("inf")), "NaN"),
        (CellEdit("S", "A1", "salainen\x07teksti"), "control character"),
        (CellEdit("S", "A1", "x" * 32_768), "longer than"),
        (CellEdit("S", "A1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)), "time zone"),
        (CellEdit("S", "A1", dt.date(1899, 12, 1)), "before 1900"),
        (CellEdit("S", "A1", [1, 2]), "cannot be written"),
    ],
)
def test_refused_edits(edit: CellEdit, fragment: str):
    """Unsafe or invalid edits raise PatchError naming the cell, never the value."""
    data = handmade({"S": "<sheetData/>"}, strings=[])
    with pytest.raises(PatchError, match=re.escape(fragment)) as info:
        patch_workbook(data, [edit])
    if isinstance(edit.value, str):
        assert "salainen" not in str(info.value) and "xxxx" not in str(info.value)


def test_refuses_formula_masters_and_array_ranges(tmp_path: Path):
    """Shared-formula masters, array-formula masters and cells inside an array are refused."""
    cf = (CORPUS / "NewStyleConditionalFormattings.xlsx").read_bytes()
    with pytest.raises(PatchError, match=r"CF!D2: the cell holds a shared or array formula"):
        patch_workbook(cf, [CellEdit("CF", "D2", 1)])
    patched(cf, [CellEdit("CF", "E2", 1)])  # a shared-formula child is fine
    path = tmp_path / "array.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("S").write_array_formula(0, 0, 2, 0, "{=ROW(A1:A3)}")
    wb.close()
    for ref in ("A1", "A3"):
        with pytest.raises(PatchError, match="array formula"):
            patch_workbook(path.read_bytes(), [CellEdit("S", ref, 1)])


def test_refuses_conflicting_edits_of_one_cell():
    """Two different values for one cell are refused; an exact repeat is fine."""
    data = handmade({"S": "<sheetData/>"})
    with pytest.raises(PatchError, match="two different edits"):
        patch_workbook(data, [CellEdit("S", "A1", 1), CellEdit("S", "a1", 2)])
    patched(data, [CellEdit("S", "A1", 1), CellEdit("S", "A1", 1)])


def test_refuses_encrypted_and_damaged_packages():
    """An encrypted (OLE) file or a damaged zip is refused with PatchError."""
    with pytest.raises(PatchError, match="encrypted"):
        patch_workbook(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, [CellEdit("S", "A1", 1)])
    with pytest.raises(PatchError, match="not a valid"):
        patch_workbook(b"PK\x03\x04 broken", [CellEdit("S", "A1", 1)])


def test_refuses_writing_into_a_chart_only_sheet():
    """A sheet that is not a worksheet cannot take cells."""
    data = handmade({"S": "<sheetData/>"})
    parts = members(data)
    rels = parts["xl/_rels/workbook.xml.rels"].replace(b'/worksheet"', b'/chartsheet"')
    with pytest.raises(PatchError, match="not a worksheet"):
        patch_workbook(rezip(data, {"xl/_rels/workbook.xml.rels": rels}), [CellEdit("S", "A1", 1)])


# --- the fidelity check catches a bad result -------------------------------------------------


def _corrupt_cases(register: bytes) -> tuple[list[tuple[str, PatchResult, str]], list[CellEdit]]:
    edits = [CellEdit("Asiakkaat", "L5", "Merkitty"), CellEdit("Asiakkaat", "C9", None)]
    good = patch_workbook(register, edits)
    parts = members(good.data)
    sheet = parts["xl/worksheets/sheet1.xml"]
    cases = []
    app = parts["docProps/app.xml"].replace(b"Asiakkaat", b"Asiakkaa")
    cases.append(
        (
            "untouched part",
            replace(good, data=rezip(good.data, {"docProps/app.xml": app})),
            "docProps/app.xml",
        )
    )
    other = re.sub(rb'(<c r="A20" t="s"><v>)\d+', rb"\g<1>0", sheet)
    cases.append(
        (
            "other cell",
            replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": other})),
            "A20",
        )
    )
    wrong = re.sub(rb'(<c r="L5"[^>]*><v>)\d+', rb"\g<1>1", sheet)
    cases.append(
        (
            "edited cell",
            replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": wrong})),
            "L5",
        )
    )
    cases.append(
        (
            "lost member",
            replace(good, data=rezip(good.data, {"docProps/core.xml": None})),
            "docProps/core.xml",
        )
    )
    sst = parts["xl/sharedStrings.xml"]
    items = re.findall(rb"<si>.*?</si>", sst)
    swapped = sst.replace(items[1] + items[2], items[2] + items[1], 1)
    cases.append(
        (
            "shuffled strings",
            replace(good, data=rezip(good.data, {"xl/sharedStrings.xml": swapped})),
            "refers to a shared string",
        )
    )
    cases.append(
        (
            "hidden change",
            replace(good, changed_parts=["xl/worksheets/sheet1.xml"]),
            "xl/sharedStrings.xml",
        )
    )
    broken = sheet.replace(b"</sheetData>", b"</sheetData><oops>", 1)
    cases.append(
        (
            "malformed",
            replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": broken})),
            "xl/worksheets/sheet1.xml",
        )
    )
    return cases, edits


def test_verify_patch_catches_corruption(register: bytes):
    """Each kind of unplanned difference makes verify_patch raise FidelityError."""
    cases, edits = _corrupt_cases(register)
    for name, result, fragment in cases:
        with pytest.raises(FidelityError, match=re.escape(fragment)):
            verify_patch(register, result, edits)
        print("caught", name)


def test_verify_patch_messages_hold_no_values(register: bytes):
    """FidelityError messages name parts and cells but never a cell's value."""
    cases, edits = _corrupt_cases(register)
    for _, result, _ in cases:
        with pytest.raises(FidelityError) as info:
            verify_patch(register, result, edits)
        message = str(info.value)
        assert "Merkitty" not in message and SECRET not in message and "A1019" not in message


def test_verify_patch_checks_calc_chain_tables_and_timestamps():
    """A calcChain that lost an unedited entry, a table grown wrongly or new dates are caught."""
    data = (CORPUS / "61652.xlsx").read_bytes()
    edits = [CellEdit("Model", "A1", 5)]
    good = patch_workbook(data, edits)
    chain = members(good.data)["xl/calcChain.xml"].replace(b'<c r="A2" i="1"/>', b"", 1)
    bad = replace(good, data=rezip(good.data, {"xl/calcChain.xml": chain}))
    with pytest.raises(
        FidelityError, match=re.escape("calcChain.xml: lost the entry of an unedited cell A2")
    ):
        verify_patch(data, bad, edits)

    table_file = (CORPUS / "50867_with_table.xlsx").read_bytes()
    edits = [CellEdit("Foglio1", "B4", 7)]
    good = patch_workbook(table_file, edits)
    table = members(good.data)["xl/tables/table1.xml"].replace(b'ref="A1:C4"', b'ref="A1:C9"', 1)
    bad = replace(good, data=rezip(good.data, {"xl/tables/table1.xml": table}))
    with pytest.raises(FidelityError, match=re.escape("table1.xml: the table changed")):
        verify_patch(table_file, bad, edits)

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good.data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            info.date_time = (2030, 1, 1, 0, 0, 0)
            dst.writestr(info, content)
    with pytest.raises(FidelityError, match="timestamp changed"):
        verify_patch(table_file, replace(good, data=out.getvalue()), edits)


# --- LibreOffice ---------------------------------------------------------------------------


@pytest.mark.libreoffice
def test_libreoffice_saved_register_patches_and_verifies(tmp_path: Path):
    """A register re-saved by LibreOffice is patched losslessly too."""
    src = make_register(tmp_path / "rekisteri.xlsx", rows=60)
    converted = soffice_convert(src, "xlsx", tmp_path / "lo")
    data = converted.read_bytes()
    edits = [
        CellEdit("Asiakkaat", "L3", "Merkitty"),
        CellEdit("Asiakkaat", "C9", None),
        CellEdit("Asiakkaat", "I4", dt.date(2026, 3, 2)),
    ]
    result = patched(data, edits)
    cells = calamine_cells(result.data, "Asiakkaat")
    assert cells["L3"] == "Merkitty" and "C9" not in cells
    assert cells["I4"] in (dt.date(2026, 3, 2), dt.datetime(2026, 3, 2))
    assert contains_anywhere(result.data, SECRET) == []


@pytest.mark.libreoffice
def test_libreoffice_opens_a_patched_register(tmp_path: Path):
    """LibreOffice reads the patched file: the edited values appear in its CSV export."""
    data = make_register(tmp_path / "rekisteri.xlsx", rows=60).read_bytes()
    edits = [
        CellEdit("Asiakkaat", "L3", "Tarkistettu äö"),
        CellEdit("Asiakkaat", "B70", "Uusi asiakas"),
        CellEdit("Asiakkaat", "C9", None),
    ]
    result = patched(data, edits)
    out = tmp_path / "patched.xlsx"
    out.write_bytes(result.data)
    csv = soffice_convert(out, "csv:Text - txt - csv (StarCalc):44,34,76,1", tmp_path / "csv")
    text = csv.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert "Tarkistettu äö" in lines[2]
    assert "Uusi asiakas" in lines[69]
    assert SECRET not in text


# --- scale and properties -------------------------------------------------------------------


def test_flagging_every_row_of_a_larger_register(tmp_path: Path):
    """One status per row on 3,000 rows: every flag reads back, nothing else changes."""
    data = make_register(tmp_path / "iso.xlsx", rows=3000).read_bytes()
    edits = [CellEdit("Asiakkaat", f"L{r}", "Päättynyt" if r % 2 else "OK") for r in range(2, 3002)]
    result = patched(data, edits)
    before, after = calamine_cells(data, "Asiakkaat"), calamine_cells(result.data, "Asiakkaat")
    flagged = {f"L{r}" for r in range(2, 3002)}
    assert {k: v for k, v in after.items() if k not in flagged} == before
    assert all(after[f"L{r}"] == ("Päättynyt" if r % 2 else "OK") for r in range(2, 3002))
    assert (
        members(result.data)["xl/sharedStrings.xml"].count(b"<si>")
        == members(data)["xl/sharedStrings.xml"].count(b"<si>") + 2
    )


def test_no_edits_returns_the_original():
    """An empty edit list changes nothing."""
    data = handmade({"S": "<sheetData/>"})
    result = patched(data, [])
    assert result.data == data and result.changed_parts == []


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.dates(dt.date(1900, 3, 1), dt.date(9999, 12, 31)),
    st.text(
        st.characters(
            codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"
        ),
        max_size=12,
    ),
)
_cells = st.tuples(st.sampled_from(["S", "T"]), st.integers(1, 8), st.integers(1, 6))
_WORDS = ["jaettu", "toinen", "kolmas", "neljäs"]


_S_PLAIN = (
    '<sheetData><row r="2" spans="1:4"><c r="A2" t="s"><v>0</v></c><c r="B2"><v>2.5</v></c>'
    '<c r="D2" t="s"><v>1</v></c></row><row r="4"><c r="C4" t="b"><v>0</v></c>'
    '<c r="D4" t="s"><v>0</v></c></row><row r="5" ht="20" customHeight="1"/>'
    '<row r="7"><c r="A7" t="s"><v>2</v></c><c r="F7" s="1"><v>7</v></c></row></sheetData>'
)
# The same grid as another writer might put it: x: prefix, cells and rows without r.
_S_IMPLICIT = (
    '<x:sheetData><x:row r="2"><x:c t="s"><x:v>0</x:v></x:c><x:c><x:v>2.5</x:v></x:c>'
    '<x:c r="D2" t="s"><x:v>1</x:v></x:c></x:row><x:row r="4"><x:c r="C4" t="b"><x:v>0</x:v>'
    '</x:c><x:c t="s"><x:v>0</x:v></x:c></x:row><x:row ht="20" customHeight="1"/>'
    '<x:row r="7"><x:c t="s"><x:v>2</x:v></x:c><x:c r="F7" s="1"><x:v>7</x:v></x:c></x:row>'
    "</x:sheetData>"
)


@pytest.mark.parametrize("layout", ["plain", "implicit"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_cells, st.one_of(_values, st.sampled_from(_WORDS)), max_size=14))
def test_random_edit_sets_read_back_exactly(
    layout: str, edits_by_cell: dict[tuple[str, int, int], object]
):
    """Any edit set on two sheets sharing strings: python-calamine reads exactly the grids."""
    p = "x:" if layout == "implicit" else ""
    t_body = (
        f'<{p}sheetData><{p}row r="1"><{p}c r="A1" t="s"><{p}v>3</{p}v></{p}c><{p}c r="B1" '
        f't="s"><{p}v>1</{p}v></{p}c></{p}row><{p}row r="3"><{p}c r="C3" t="s"><{p}v>2</{p}v>'
        f"</{p}c></{p}row></{p}sheetData>"
    )
    s_body = _S_IMPLICIT if p else _S_PLAIN
    data = handmade({"S": s_body, "T": t_body}, strings=_WORDS, prefix=p.rstrip(":"))
    expected = {
        "S": {"A2": "jaettu", "B2": 2.5, "D2": "toinen", "C4": False, "D4": "jaettu"},
        "T": {"A1": "neljäs", "B1": "toinen", "C3": "kolmas"},
    }
    expected["S"] |= {"F7": 7.0, "A7": "kolmas"}
    assert calamine_cells(data, "S") == expected["S"]
    edits = []
    for (sheet, row, col), value in edits_by_cell.items():
        ref = f"{col_letter(col)}{row}"
        edits.append(CellEdit(sheet, ref, value))
        if value is None or value == "":
            expected[sheet].pop(ref, None)
        elif isinstance(value, int) and not isinstance(value, bool):
            expected[sheet][ref] = float(value)
        else:
            expected[sheet][ref] = value
    result = patched(data, edits)
    assert calamine_cells(result.data, "S") == expected["S"]
    assert calamine_cells(result.data, "T") == expected["T"]
    # Every string the edits orphaned is gone; every string still used is there once.
    used = {v for grid in expected.values() for v in grid.values() if isinstance(v, str)}
    sst = members(result.data)["xl/sharedStrings.xml"].decode()
    for word in _WORDS:
        assert (f"<{p}t>{word}</{p}t>" in sst) == (word in used)


# --- the package writer: unchanged members copied as stored ----------------------------------


def _stored_members(data: bytes) -> dict[str, bytes]:
    """Each member's bytes as stored: from its local header to the next member (or the
    central directory), so that a data descriptor cut short would show."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        starts = sorted(i.header_offset for i in infos)
        ends = dict(zip(starts, [*starts[1:], z.start_dir], strict=True))
        return {i.filename: data[i.header_offset : ends[i.header_offset]] for i in infos}


def test_unchanged_members_are_copied_as_stored(register: bytes):
    """Only the changed parts are deflated again; every other member keeps its stored bytes."""
    result = patched(register, [CellEdit("Asiakkaat", "L2", "Uusi kaupunki")])
    old, new = _stored_members(register), _stored_members(result.data)
    assert list(old) == list(new)
    assert set(result.changed_parts) == {"xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"}
    for name in old:
        assert (old[name] == new[name]) == (name not in result.changed_parts), name
    with zipfile.ZipFile(io.BytesIO(result.data)) as z:
        assert z.testzip() is None
    assert calamine_cells(result.data, "Asiakkaat")["L2"] == "Uusi kaupunki"


@pytest.mark.parametrize("zip64", [False, True])
def test_stored_members_and_data_descriptors_survive(register: bytes, zip64: bool):
    """A package written as a stream (data descriptors, ZIP64 ones too) with uncompressed
    members patches, every unchanged member copied whole."""
    streamed = io.BytesIO()

    class Unseekable(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[override]
            return streamed.write(b)

    with zipfile.ZipFile(io.BytesIO(register)) as src, zipfile.ZipFile(Unseekable(), "w") as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, info.date_time)
            stored = info.filename.startswith("docProps/")
            member.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            with dst.open(member, "w", force_zip64=zip64) as out:
                out.write(src.read(info))
    data = streamed.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert all(i.flag_bits & 0x8 for i in z.infolist())
    result = patched(data, [CellEdit("Asiakkaat", "L3", "Oulu")])
    old, new = _stored_members(data), _stored_members(result.data)
    for name in old:
        assert (old[name] == new[name]) == (name not in result.changed_parts), name
    with zipfile.ZipFile(io.BytesIO(result.data)) as z:
        assert z.testzip() is None
        assert z.getinfo("docProps/app.xml").compress_type == zipfile.ZIP_STORED
    assert calamine_cells(result.data, "Asiakkaat")["L3"] == "Oulu"


def test_data_before_the_first_member_rewrites_the_package(register: bytes):
    """Offsets that cannot be copied (bytes prepended to the zip) fall back to a full rewrite."""
    data = b"junk" * 8 + register
    result = patched(data, [CellEdit("Asiakkaat", "L2", "Vaasa")])
    assert result.data.startswith(b"PK\x03\x04")
    assert calamine_cells(result.data, "Asiakkaat")["L2"] == "Vaasa"


def test_many_distinct_strings_are_looked_up_in_one_pass(register: bytes, monkeypatch):
    """Past 32 distinct texts the table is searched once; existing strings are reused."""
    from sheetreg import xlsxpatch

    existing = ["Tampere", "Tila 0"]
    fresh = [f'Tila {n} – <tarkistettu> & "valmis"' for n in range(1, 41)]
    register = patched(register, [CellEdit("Asiakkaat", "M2", "Tila 0")]).data

    def one_by_one(self, text):
        raise AssertionError("looked up one by one")

    monkeypatch.setattr(xlsxpatch._SharedStrings, "_find_plain", one_by_one)
    edits = [
        CellEdit("Asiakkaat", f"L{row}", text)
        for row, text in enumerate([*existing, *fresh], start=2)
    ]
    result = patched(register, edits)
    old_sst = members(register)["xl/sharedStrings.xml"]
    new_sst = members(result.data)["xl/sharedStrings.xml"]
    for text in existing:  # reused, not appended
        assert old_sst.count(b"<t>" + text.encode() + b"</t>") == 1
        assert new_sst.count(b"<t>" + text.encode() + b"</t>") == 1
    for text in fresh:  # appended once, escaped
        body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()
        assert new_sst.count(b"<t>" + body + b"</t>") == 1
    cells = calamine_cells(result.data, "Asiakkaat")
    assert [cells[e.cell] for e in edits] == [e.value for e in edits]


def test_patch_further_is_one_patch_of_the_original(register: bytes):
    """A second step on a patched package verifies against the original with both edits."""
    from sheetreg.xlsxpatch import patch_further

    first = [CellEdit("Asiakkaat", "L2", "Pori"), CellEdit("Laskut", "B2", 12.5)]
    second = [CellEdit("Asiakkaat", "M2", "Lahti")]
    result = patch_further(patch_workbook(register, first), second)
    verify_patch(register, result, [*first, *second])
    assert {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"} <= set(result.changed_parts)
    with pytest.raises(FidelityError):
        verify_patch(register, result, first)


# --- the bulk proof of many edits (flag writes a status on every row) -----------------------


@pytest.fixture
def bulk(monkeypatch: pytest.MonkeyPatch) -> list[bool | str]:
    """The bulk proof tried for any number of edits; the list records what it concluded
    (True, False, or "raised" when it found a fault itself)."""
    import sheetreg.xlsxpatch as xp

    monkeypatch.setattr(xp, "_BULK_PROOF_CELLS", 1)
    seen: list[bool | str] = []
    original = xp._SheetVerifier._run_bulk

    def spy(self: xp._SheetVerifier, *args: int) -> bool:
        try:
            proven = original(self, *args)
        except FidelityError:
            seen.append("raised")
            raise
        seen.append(proven)
        return proven

    monkeypatch.setattr(xp._SheetVerifier, "_run_bulk", spy)
    return seen


def _status_edits() -> list[CellEdit]:
    """A status on every row (appended cells), a surname replaced and a date in the middle."""
    edits = [CellEdit("Asiakkaat", f"L{r}", f"Tila {r % 3}") for r in range(2, 202)]
    edits += [CellEdit("Asiakkaat", f"C{r}", f"Uusi {r}") for r in range(10, 200, 40)]
    edits.append(CellEdit("Asiakkaat", "I30", dt.date(2026, 11, 25)))
    return edits


def test_bulk_proof_takes_a_flag_of_every_row(
    register: bytes, bulk: list[bool | str], monkeypatch: pytest.MonkeyPatch
):
    """A status on every row is proven without a walk of the rows, the first and next time;
    the original's side is cut before the patch is asked for, and not again."""
    import sheetreg.xlsxpatch as xp

    edits = _status_edits()
    first = patch_workbook(register, edits, residues=False, inline=True)
    calls: list[str] = []
    cut = xp._cut_planned
    monkeypatch.setattr(xp, "_cut_planned", lambda *a: calls.append("cut") or cut(*a))

    def result() -> xp.PatchResult:
        calls.append("patch")
        return first

    verify_patch(register, result, edits)
    assert bulk == [True]
    # The original's body is cut (its cells searched for) before the patch is asked for; the
    # patch's cells are then taken from where the original's cut says they belong.
    assert calls == ["cut", "patch"]
    again = [CellEdit("Asiakkaat", f"L{r}", None if r % 5 == 0 else "Uusi") for r in range(2, 202)]
    second = patch_workbook(first.data, again, residues=False, inline=True)
    verify_patch(first.data, second, again)
    assert bulk == [True, True]
    assert calamine_cells(second.data, "Asiakkaat")["L6"] == "Uusi"
    assert "L5" not in calamine_cells(second.data, "Asiakkaat")


def _tampered_sheets(sheet: bytes) -> dict[str, bytes]:
    def cell(ref: str) -> bytes:
        m = re.search(rb'<c r="' + ref.encode() + rb'"[^>]*>.*?</c>', sheet)
        assert m is not None
        return m[0]

    l50, l80 = cell("L50"), cell("L80")
    moved = sheet.replace(l50, b"", 1).replace(cell("J49"), cell("J49") + l50, 1)
    return {
        "wrong value": sheet.replace(l50, l50.replace(b"Tila 2", b"Tila 1"), 1),
        "cell in another row": moved,
        "other cell": sheet.replace(cell("A20"), cell("A20").replace(b"<v>", b"<v>1", 1), 1),
        "unplanned cell": sheet.replace(l80, l80 + b'<c r="M80"><v>1</v></c>', 1),
        "out of column order": sheet.replace(l80, b"", 1).replace(
            cell("A80"), l80 + cell("A80"), 1
        ),
        "twice": sheet.replace(l80, l80 + l80, 1),
        "row attribute": sheet.replace(b'<row r="60"', b'<row r="60" hidden="1"', 1),
        # The same value, but not well-formed XML (an element left open).
        "not well-formed": sheet.replace(l50, l50.replace(b"</is>", b"<x></is>"), 1),
        # The same text, but not inline: a reader does not read it as text.
        "not inline": sheet.replace(l50, l50.replace(b'"inlineStr"', b'"str"'), 1),
    }


def test_bulk_proof_never_passes_a_bad_result(register: bytes, bulk: list[bool | str]):
    """Each tampering is refused: the bulk proof finds it or hands over to the row walk."""
    edits = _status_edits()
    good = patch_workbook(register, edits, residues=False, inline=True)
    sheet = members(good.data)["xl/worksheets/sheet1.xml"]
    for name, bad_sheet in _tampered_sheets(sheet).items():
        assert bad_sheet != sheet, name
        bad = replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": bad_sheet}))
        bulk.clear()
        with pytest.raises(FidelityError):
            verify_patch(register, bad, edits)
        assert bulk in ([False], ["raised"]), name


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Aktiivinen", True),
        ("Päättynyt 5.7.2023 – poisto odottaa hyväksyntää", True),
        ("x", True),
        ("", False),
        (" alussa", False),
        ("lopussa ", False),
        ("kaksi  väliä", False),
        ("rivi\nvaihto", False),
        ("a & b", False),
        ("<b>", False),
        ("a_x000D_b", False),
    ],
)
def test_plain_text_is_told_apart(text: str, plain: bool):
    """The bulk proof takes text written inline as it is only when nothing in it is decoded
    by a reader (an entity, an escape, spaces at either end or doubled, a line end)."""
    from sheetreg.xlsxpatch import _PLAIN_TEXT

    assert (_PLAIN_TEXT.fullmatch(text) is not None) is plain


@pytest.fixture
def placed(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the bulk proof found the patch's cells where the original's cut says they
    belong: taken from there (True), or, when they are not all there, searched for and then
    checked against those places (what that check found)."""
    import sheetreg.xlsxpatch as xp

    seen: list[bool] = []
    taken, checked = xp._placed_cut, xp._as_placed

    def take(*args: Any) -> Any:
        got = taken(*args)
        if got is not None:
            seen.append(True)
        return got

    def check(*args: Any) -> bool:
        seen.append(checked(*args))
        return seen[-1]

    monkeypatch.setattr(xp, "_placed_cut", take)
    monkeypatch.setattr(xp, "_as_placed", check)
    return seen


def test_bulk_proof_places_cells_where_the_original_says(
    register: bytes, bulk: list[bool | str], placed: list[bool]
):
    """Where each cell belongs is told from the original's cut before the patch exists, and
    the patch's cells are taken from there: cells appended to their rows, written over, put
    back between two others, emptied (gone, or left with their style), and two new ones side
    by side; a cell swapped with its new neighbour is refused (the cells are then searched
    for, are not where they belong, and the check hands over to the cell-by-cell one)."""
    checks = [(register, _status_edits())]
    emptied = patch_workbook(
        register, [CellEdit("Asiakkaat", f"E{r}", None) for r in range(2, 202)], inline=True
    )
    assert b'<c r="E5"' not in members(emptied.data)["xl/worksheets/sheet1.xml"]
    checks.append(
        (emptied.data, [CellEdit("Asiakkaat", f"E{r}", f"e{r}@example.fi") for r in range(2, 202)])
    )
    pair = [CellEdit("Asiakkaat", f"{c}{r}", f"{c} {r}") for r in range(2, 202) for c in "MN"]
    checks.append((register, pair))
    # Emptied: a cell with no style goes, one with a style (a date's) stays, empty.
    checks.append((register, [CellEdit("Asiakkaat", f"E{r}", None) for r in range(2, 202)]))
    dates = [CellEdit("Asiakkaat", f"I{r}", None if r % 2 else "x") for r in range(2, 202)]
    assert (
        b'<c r="I5" s="2"/>'
        in members(patch_workbook(register, dates, inline=True).data)["xl/worksheets/sheet1.xml"]
    )
    checks.append((register, dates))
    for original, edits in checks:
        bulk.clear()
        placed.clear()
        verify_patch(original, patch_workbook(original, edits, residues=False, inline=True), edits)
        assert bulk == [True] and placed == [True]
    good = patch_workbook(register, pair, residues=False, inline=True)
    sheet = members(good.data)["xl/worksheets/sheet1.xml"]
    m40 = re.search(rb'<c r="M40"[^>]*>.*?</c>', sheet)
    n40 = re.search(rb'<c r="N40"[^>]*>.*?</c>', sheet)
    assert m40 is not None and n40 is not None and m40.end() == n40.start()
    swapped = sheet.replace(m40[0] + n40[0], n40[0] + m40[0], 1)
    bad = replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": swapped}))
    bulk.clear()
    placed.clear()
    with pytest.raises(FidelityError):
        verify_patch(register, lambda: bad, pair)
    assert bulk == [False] and placed == [False]


def test_cells_taken_where_they_belong_are_the_cells_searched_for(register: bytes):
    """The cut of the patch's cells from their places leaves the same rest as the search for
    them, and gives each kind of cell as the search finds it (one of each): cells appended,
    written over, emptied with a style (left empty) and without (gone)."""
    import sheetreg.xlsxpatch as xp

    edits = [
        *_status_edits(),
        *(CellEdit("Asiakkaat", f"E{r}", None) for r in range(3, 202, 7)),
        *(CellEdit("Asiakkaat", f"I{r}", None) for r in range(4, 202, 9)),
    ]
    result = patch_workbook(register, edits, residues=False, inline=True)
    part = "xl/worksheets/sheet1.xml"
    old, new = members(register)[part], members(result.data)[part]
    assert b'<c r="I4" s="2"/>' in new and b'<c r="E3"' not in new
    plan = xp._plan(xp._load_workbook(xp._Package(register)), edits, PatchError)[part]
    rx = xp._sheet_rx(b"")
    side = xp._cut_ahead(part, old, plan)
    assert side is not None and side.places is not None
    taken = xp._placed_cut(rx, plan.cells, new, part, side.places)
    searched = xp._bulk_cut(rx, plan.cells, new, part)
    assert taken is not None and searched is not None
    masked, rest, kinds, start = taken
    assert (masked, rest, start) == (searched[0], searched[1], searched[3])
    found = searched[2]
    expected = {}
    for key, m in found.items():
        attrs, content = m.group(1, 2)
        kind = xp._cell_kind(attrs, content, plan.cells[key].value)
        expected.setdefault(kind, xp._Taken(key, m.start(), m.end(), attrs, content))
    assert kinds == expected
    assert len({k[3] for k in kinds}) > 3  # the statuses, a surname, a date, emptied cells


def test_bulk_proof_takes_rows_whose_spans_widen(register: bytes, bulk: list[bool | str]):
    """A status in a column past every row's spans hint widens the hints: the bodies differ
    there and only there, which the proof (by digests, with the hints masked) accepts; a
    changed cell beside the widened hints is still refused."""
    edits = [CellEdit("Asiakkaat", f"M{r}", f"Tila {r % 3}") for r in range(2, 202)]
    good = patch_workbook(register, edits, residues=False, inline=True)
    sheet = members(good.data)["xl/worksheets/sheet1.xml"]
    assert b'<row r="5" spans="1:13">' in sheet
    assert b'<row r="5" spans="1:12">' in members(register)["xl/worksheets/sheet1.xml"]
    verify_patch(register, lambda: good, edits)  # the original's side cut ahead
    assert bulk == [True]
    bulk.clear()
    verify_patch(register, good, edits)
    assert bulk == [True]
    a20 = re.search(rb'<c r="A20"[^>]*>.*?</c>', sheet)
    assert a20 is not None
    tampered = sheet.replace(a20[0], a20[0].replace(b"<v>", b"<v>1", 1), 1)
    bad = replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": tampered}))
    bulk.clear()
    with pytest.raises(FidelityError, match="A20"):
        verify_patch(register, lambda: bad, edits)
    assert bulk == [False]


def test_row_walk_after_the_bulk_proof_reads_the_original_again(
    register: bytes, bulk: list[bool | str], monkeypatch: pytest.MonkeyPatch
):
    """The original sheet is let go before the bulk proof (its cut is enough); when the proof
    hands over to the row walk, the sheet is read again and the walk names the fault."""
    import sheetreg.xlsxpatch as xp

    edits = _status_edits()
    good = patch_workbook(register, edits, residues=False, inline=True)
    sheet = members(good.data)["xl/worksheets/sheet1.xml"]
    bad = replace(
        good,
        data=rezip(good.data, {"xl/worksheets/sheet1.xml": _tampered_sheets(sheet)["other cell"]}),
    )
    reads: list[bytes] = []
    read = xp._Package.read

    def spy(self: xp._Package, name: str) -> bytes:
        data = read(self, name)
        if name == "xl/worksheets/sheet1.xml" and self.data is register:
            reads.append(data)
        return data

    monkeypatch.setattr(xp._Package, "read", spy)
    with pytest.raises(FidelityError, match="A20"):
        verify_patch(register, bad, edits)
    assert bulk == [False]
    assert len(reads) == 2 and reads[0] == reads[1]  # ahead of the patch, then for the walk
    reads.clear()
    bulk.clear()
    verify_patch(register, good, edits)
    assert bulk == [True] and len(reads) == 1  # proven in bulk: read once


def test_bulk_proof_tells_a_number_from_a_boolean(register: bytes, bulk: list[bool | str]):
    """A boolean written as the number 1 is caught, even after a real 1 was proven."""
    edits = [CellEdit("Asiakkaat", f"L{r}", 1 if r % 2 else True) for r in range(2, 202)]
    good = patch_workbook(register, edits, residues=False, inline=True)
    verify_patch(register, good, edits)
    assert bulk == [True]
    sheet = members(good.data)["xl/worksheets/sheet1.xml"]
    cell = re.search(rb'<c r="L4"[^>]*>.*?</c>', sheet)
    assert cell is not None and b't="b"' in cell[0]
    number = cell[0].replace(b' t="b"', b"")
    bad_sheet = sheet.replace(cell[0], number, 1)
    bad = replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": bad_sheet}))
    with pytest.raises(FidelityError, match="L4"):
        verify_patch(register, bad, edits)


def _flag_and_erasure_edits() -> list[CellEdit]:
    """A status on every row, and one client's row emptied as an erasure empties it."""
    edits = [CellEdit("Asiakkaat", f"L{r}", f"Tila {r % 3}") for r in range(2, 202) if r != 7]
    edits += [CellEdit("Asiakkaat", f"{c}7", None) for c in "BCDEFGH"]
    edits.append(CellEdit("Asiakkaat", "L7", "Poistettu"))
    return edits


def test_bulk_proof_takes_flags_with_an_erasure(register: bytes, bulk: list[bool | str]):
    """Flags of every row plus an erasure's emptied cells and strings: proven in bulk."""
    edits = _flag_and_erasure_edits()
    result = patch_workbook(register, edits, residues=False, inline=True)
    assert result.removed_strings > 0
    verify_patch(register, result, edits)
    assert bulk == [True]


def test_bulk_proof_refuses_a_reference_to_an_emptied_string(
    register: bytes, bulk: list[bool | str]
):
    """An unedited cell pointing at a string the erasure emptied, or an erased cell left
    in place, is refused whichever proof runs."""
    edits = _flag_and_erasure_edits()
    good = patch_workbook(register, edits, residues=False, inline=True)
    old_sheet = members(register)["xl/worksheets/sheet1.xml"]
    sheet = members(good.data)["xl/worksheets/sheet1.xml"]
    sst = members(good.data)["xl/sharedStrings.xml"]
    emptied = sst.split(b"<si>")[1:].index(b"<t/></si>")
    c20 = re.search(rb'<c r="C20"[^>]*>.*?</c>', sheet)
    c7 = re.search(rb'<c r="C7"[^>]*>.*?</c>', old_sheet)
    assert c20 is not None and c7 is not None and b't="s"' in c20[0]
    pointing = re.sub(rb"<v>\d+</v>", b"<v>%d</v>" % emptied, c20[0])
    a7 = re.search(rb'<c r="A7"[^>]*>.*?</c>', sheet)
    assert a7 is not None
    kept = sheet.replace(a7[0], a7[0] + c7[0], 1)
    assert kept != sheet
    for bad_sheet in (sheet.replace(c20[0], pointing, 1), kept):
        bad = replace(good, data=rezip(good.data, {"xl/worksheets/sheet1.xml": bad_sheet}))
        bulk.clear()
        with pytest.raises(FidelityError):
            verify_patch(register, bad, edits)
        assert bulk in ([False], ["raised"])


def test_changed_strings_are_exactly_those_no_longer_at_their_index():
    """The strings a reference cannot keep its text through: those changed in place, and
    every one after a string removed or inserted, up to the end of the shorter table;
    found by halving differing runs, they are the ones an element-by-element look finds."""
    import sheetreg.xlsxpatch as xp

    def table(texts: list[str]) -> xp._SharedStrings:
        body = "".join(f"<si><t>{t}</t></si>" for t in texts)
        xml = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://'
            f'schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(texts)}" '
            f'uniqueCount="{len(texts)}">{body}</sst>'
        )
        return xp._SharedStrings("xl/sharedStrings.xml", xml.encode(), FidelityError)

    def by_element(old: xp._SharedStrings, new: xp._SharedStrings) -> set[int]:
        common = min(old.count, new.count)
        same = {i for i in range(common) if old.element(i) == new.element(i)}
        return set(range(old.count)) - same

    texts = [f"arvo {n}" for n in range(5000)]
    cases = {
        "same": texts,
        "appended": [*texts, "uusi"],
        "one in place": [*texts[:1234], "", *texts[1235:]],
        "scattered": [("" if n % 997 == 3 else t) for n, t in enumerate(texts)],
        "removed": texts[:3000] + texts[3001:],
        "inserted": [*texts[:10], "uusi", *texts[10:]],
        "last": [*texts[:-1], "toinen"],
    }
    old = table(texts)
    for name, new_texts in cases.items():
        new = table(new_texts)
        expected = set() if name in ("same", "appended") else by_element(old, new)
        assert xp._changed_strings(old, new) == expected, name
        # Found from the original's index alone (the new table is never indexed), as by
        # both indexes.
        if name not in ("same", "appended"):
            assert xp._changed_in_place(old, table(new_texts)) == expected, name
            assert xp._changed_by_index(old, table(new_texts)) == expected, name
    assert len(xp._changed_strings(old, table(cases["scattered"]))) == 6
    # A string whose new element has no end tag of its own: found by both indexes instead.
    xml = table(texts).data.replace(b"<si><t>arvo 7</t></si>", b"<si/>", 1)
    odd = xp._SharedStrings("xl/sharedStrings.xml", xml, FidelityError)
    assert xp._changed_in_place(old, odd) is None
    assert xp._changed_strings(old, odd) == {7}


# --- excerpts: what the reopen check reads back of a big sheet with few edits ---------------


def test_cells_excerpt_of_a_register_reads_as_the_whole_sheet_does(register: bytes):
    """The excerpt is the part with only the edited cells in its sheetData: each cell, and
    all before and after the rows, as the part has them; a reader finds those cells' values
    where the whole part has them, and a cell of a missing row is simply not there."""
    from sheetreg.xlsxpatch import cells_excerpt

    part = members(register)[sheet_parts(register)["Asiakkaat"]]
    refs = {"B9", "C9", "A2", "J150", "L150", "B500"}  # no L150, no row 500
    excerpt = cells_excerpt(part, refs)
    assert excerpt is not None and len(excerpt) < len(part) // 10
    head, _, rest = part.partition(b"<sheetData>")
    tail = rest[rest.index(b"</sheetData>") :]
    assert excerpt.startswith(head + b"<sheetData>") and excerpt.endswith(tail)
    assert re.findall(rb'<row r="(\d+)">', excerpt) == [b"2", b"9", b"150"]
    for m in re.finditer(rb'<c r="[A-Z]+\d+".*?</c>', excerpt):
        assert m[0] in part
    full = calamine_cells(register, "Asiakkaat")
    cut = rezip(register, {sheet_parts(register)["Asiakkaat"]: excerpt})
    assert calamine_cells(cut, "Asiakkaat") == {ref: full[ref] for ref in refs if ref in full}


def test_cells_excerpt_declines_what_it_cannot_cut_safely():
    """No excerpt (the caller reads the whole part) when a row lacks its leading r, when the
    rows are out of order, or when there are no rows; a prefixed sheet is cut as any other."""
    from sheetreg.xlsxpatch import cells_excerpt

    def part(body: str, prefix: str = "") -> bytes:
        data = handmade({"S": body}, prefix=prefix)
        return members(data)["xl/worksheets/sheet1.xml"]

    rows = "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(1, 41))
    ok = part(f"<sheetData>{rows}</sheetData>")
    assert cells_excerpt(ok, {"A3", "A7"}) is not None
    without_r = ok.replace(b'<row r="5">', b"<row>")
    assert cells_excerpt(without_r, {"A3", "A7"}) is None
    late_r = ok.replace(b'<row r="5">', b'<row spans="1:1" r="5">')
    assert cells_excerpt(late_r, {"A3", "A7"}) is None
    third = '<row r="3"><c r="A3"><v>3</v></c></row>'
    last = part(f"<sheetData>{rows.replace(third, '')}{third}</sheetData>")  # row 3 at the end
    assert cells_excerpt(last, {"A3", "A7"}) is None
    x_rows = "".join(
        f'<x:row r="{n}"><x:c r="A{n}"><x:v>{n}</x:v></x:c></x:row>' for n in range(1, 41)
    )
    prefixed = part(f"<x:sheetData>{x_rows}</x:sheetData>", "x")
    excerpt = cells_excerpt(prefixed, {"A2"})
    assert excerpt is not None and b'<x:row r="2"><x:c r="A2"><x:v>2</x:v></x:c></x:row>' in excerpt
    assert excerpt.count(b"<x:row") == 1
    assert cells_excerpt(part("<sheetData/>"), {"A1"}) is None  # no rows at all


def test_excerpt_package_cuts_only_big_sheets(register: bytes, monkeypatch: pytest.MonkeyPatch):
    """Only a sheet of at least EXCERPT_MIN_BYTES is cut, to the cells the edits name, the
    other members copied as they are stored; a sheet with an edit that is not a cell
    reference is left whole; nothing to cut gives the package itself."""
    from sheetreg import xlsxpatch as xp

    edits = [CellEdit("asiakkaat", "B2", "x"), CellEdit("Asiakkaat", "C9", "y")]
    assert xp.excerpt_package(register, edits) is register  # small
    monkeypatch.setattr(xp, "EXCERPT_MIN_BYTES", 10_000)
    cut = xp.excerpt_package(register, [*edits, CellEdit("Laskut", "A3", "z")])
    parts = sheet_parts(register)
    before, after = _stored_members(register), _stored_members(cut)
    assert len(members(cut)[parts["Asiakkaat"]]) < len(members(register)[parts["Asiakkaat"]])
    assert members(cut)[parts["Laskut"]] == members(register)[parts["Laskut"]]  # under 10 kB
    assert {n for n in before if before[n] != after[n]} == {parts["Asiakkaat"]}
    full = calamine_cells(register, "Asiakkaat")
    kept = {ref: full[ref] for ref in ("B2", "C9")}
    assert calamine_cells(cut, "Asiakkaat") == kept and kept["C9"] == SECRET
    assert xp.excerpt_package(register, [*edits, CellEdit("Asiakkaat", "9C", "z")]) is register


def test_patch_says_where_it_put_cells_and_the_excerpt_takes_them_from_there(register: bytes):
    """A cell appended to its row (a status on every row) is placed where the patch says,
    in the member as written: the excerpt made from there is the excerpt a search makes,
    byte for byte, beside cells that are searched for (in a row with two edits). A
    placement that is not so (a cell off by a byte, another cell's reference, past the rows,
    a reference too many, a span over more than its cell) gives no excerpt. The placement
    does not travel with a pickled patch."""
    import pickle

    from sheetreg import xlsxpatch as xp

    part = sheet_parts(register)["Asiakkaat"]
    statuses = [CellEdit("Asiakkaat", f"Z{r}", f"Tila {r} & <x>") for r in range(2, 150)]
    edits = [*statuses, CellEdit("Asiakkaat", "C9", "uusi")]
    result = patch_workbook(register, edits, residues=False, inline=True)
    placed = result.placed[part]
    # Z9 shares its row with C9: that row is patched the general way, its cells searched for.
    assert placed.refs == [e.cell for e in statuses if e.cell != "Z9"]
    written = members(result.data)[part]
    for k, ref in enumerate(placed.refs):
        cell = written[placed.spans[2 * k] : placed.spans[2 * k + 1]]
        assert cell.startswith(f'<c r="{ref}"'.encode()) and cell.endswith(b"</c>")
        assert cell.count(b"<c ") == 1
    assert pickle.loads(pickle.dumps(result, protocol=5)).placed == {}
    refs = {e.cell for e in edits}
    searched = xp.cells_excerpt(written, refs)
    assert searched is not None and xp.cells_excerpt(written, refs, placed) == searched
    assert b'<c r="C9"' in searched and b'<c r="Z9"' in searched and b'<c r="Z149"' in searched
    cut, cut_placed = set(), set()
    excerpt = xp.excerpt_package(result.data, edits, cut)
    assert xp.excerpt_package(result.data, edits, cut_placed, result.placed) == excerpt
    assert cut == cut_placed == {"asiakkaat"}
    spans = list(placed.spans)
    for wrong, asked in (
        (xp.Placed(placed.refs, xp.array("q", [spans[0] + 1, *spans[1:]])), refs),
        (xp.Placed(["Z3", "Z2", *placed.refs[2:]], placed.spans), refs),
        (xp.Placed(placed.refs, xp.array("q", [*spans[:-1], len(written)])), refs),
        (xp.Placed([*placed.refs, "Z150"], placed.spans), refs),
        # Z2's span stretched over row 3 (Z3 not asked for): it ends with a cell's end tag,
        # but holds other cells.
        (
            xp.Placed([placed.refs[0], *placed.refs[2:]], xp.array("q", [spans[0], *spans[3:]])),
            refs - {"Z3"},
        ),
    ):
        assert xp.cells_excerpt(written, asked, wrong) is None


def test_excerpt_package_without_strings_to_read(register: bytes, monkeypatch: pytest.MonkeyPatch):
    """Cells written inline (the weekly run's) and emptied cells need no string table: every
    edited sheet is cut, small ones too, and the table left empty; the cells read back as
    in the whole package. One cut cell that refers to the table keeps it, and the small
    sheets whole."""
    from sheetreg import xlsxpatch as xp

    monkeypatch.setattr(xp, "EXCERPT_MIN_BYTES", 10_000)
    parts = sheet_parts(register)
    edits = [CellEdit("Asiakkaat", f"L{r}", f"Tila {r}") for r in range(2, 60)]
    edits += [CellEdit("Asiakkaat", "C9", None), CellEdit("laskut", "A3", 7.5)]
    written = patch_workbook(register, edits, residues=False, inline=True).data
    cut: set[str] = set()
    excerpt = xp.excerpt_package(written, edits, cut)
    assert cut == {"asiakkaat", "laskut"}
    assert len(members(register)[parts["Laskut"]]) < 10_000  # cut all the same
    assert members(excerpt)["xl/sharedStrings.xml"].count(b"<si") == 0
    assert members(written)["xl/sharedStrings.xml"].count(b"<si") > 100
    for sheet, refs in (("Asiakkaat", ["L2", "L59", "C9", "C10"]), ("Laskut", ["A3", "A4"])):
        whole, short = calamine_cells(written, sheet), calamine_cells(excerpt, sheet)
        for ref in refs:
            edited = any(e.sheet.casefold() == sheet.casefold() and e.cell == ref for e in edits)
            assert short.get(ref) == (whole.get(ref) if edited else None), (sheet, ref)
    # A cell that refers to a shared string (here a kept one, read back as such).
    shared = re.search(rb'<c r="B5"[^>]*t="s"', members(written)[parts["Asiakkaat"]])
    assert shared is not None
    kept = xp.excerpt_package(written, [*edits, CellEdit("Asiakkaat", "B5", "x")])
    assert members(kept)["xl/sharedStrings.xml"] == members(written)["xl/sharedStrings.xml"]
    assert members(kept)[parts["Laskut"]] == members(written)[parts["Laskut"]]


def test_a_cell_refers_to_the_string_table_however_its_type_is_quoted():
    """The look for a cell that needs the shared-string table (before the table is left
    out of an excerpt) finds t="s" and t='s', spaced or prefixed, and nothing in text
    that only mentions it."""
    from sheetreg.xlsxpatch import _refers_to_sst

    for cell in (
        b'<c r="A1" t="s"><v>0</v></c>',
        b"<c r='A1' t='s'><v>0</v></c>",
        b'<x:c r="A1" s="2" t = "s"><x:v>0</x:v></x:c>',
    ):
        assert _refers_to_sst(b"<row>" + cell + b"</row>"), cell
    for cell in (
        b'<c r="A1" t="inlineStr"><is><t>t="s"</t></is></c>',
        b'<c r="A1" t="str"><v>s</v></c>',
        b"<c r='A1'><v>1</v></c>",
    ):
        assert not _refers_to_sst(b"<row>" + cell + b"</row>"), cell


@pytest.fixture
def parts_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The package parts read (inflated) whole from now on, in order."""
    from sheetreg import xlsxpatch as xp

    names: list[str] = []
    real = xp._Package.read

    def reading(self: xp._Package, name: str) -> bytes:
        names.append(name)
        return real(self, name)

    monkeypatch.setattr(xp._Package, "read", reading)
    return names


def test_the_string_table_is_read_only_when_an_edit_needs_it(
    register: bytes, parts_read: list[str]
):
    """Text written inline over cells that held no shared string leaves the table unread
    (a register's is megabytes); over a cell that held one, it is read, and the string the
    edit orphaned is emptied as ever."""
    read = parts_read
    result = patch_workbook(register, [CellEdit("Asiakkaat", "L2", "Tila")], inline=True)
    assert "xl/sharedStrings.xml" not in read
    assert result.changed_parts == ["xl/worksheets/sheet1.xml"]
    verify_patch(register, result, [CellEdit("Asiakkaat", "L2", "Tila")])
    read.clear()
    edit = CellEdit("Asiakkaat", "C9", "Uusi")  # the unique surname's only cell
    result = patch_workbook(register, [edit], inline=True)
    assert "xl/sharedStrings.xml" in read and result.removed_strings == 1
    assert SECRET not in members(result.data)["xl/sharedStrings.xml"].decode()
    verify_patch(register, result, [edit])


def test_parts_are_deflated_by_isal_and_read_by_zlib(register: bytes, monkeypatch):
    """The rewritten parts come from ISA-L's deflater (a dependency), are standard deflate
    streams that zlib inflates with their CRC-32 right, and a zlib-only install writes the
    same content."""
    import zlib

    from isal import isal_zlib

    from sheetreg import xlsxpatch as xp

    assert xp._fast_zlib is isal_zlib
    edits = [CellEdit("Asiakkaat", "L2", "Tila"), CellEdit("Asiakkaat", "C9", None)]
    with_isal = patched(register, edits)
    monkeypatch.setattr(xp, "_fast_zlib", zlib)
    with_zlib = patched(register, edits)
    assert with_isal.data != with_zlib.data  # two deflaters, two streams
    with zipfile.ZipFile(io.BytesIO(with_isal.data)) as z:
        assert z.testzip() is None
    assert members(with_isal.data) == members(with_zlib.data)


def test_a_prepared_package_patches_as_the_package_itself(register: bytes):
    """prepare_patch inflates the named sheets ahead; the patch made with it takes them
    from there and is the same, byte for byte."""
    from sheetreg import xlsxpatch as xp

    edits = [CellEdit("Asiakkaat", "L2", "Tila"), CellEdit("Asiakkaat", "C9", None)]
    package = xp.prepare_patch(register, ["asiakkaat"])
    assert set(package._preloaded) == {"xl/worksheets/sheet1.xml"}
    prepared = patch_workbook(register, edits, inline=True, package=package)
    assert not package._preloaded  # each taken by its first read
    assert prepared.data == patch_workbook(register, edits, inline=True).data
    assert prepared.removed_strings == 1


def _flip_in_member(data: bytes, name: str, *, at: int | None = None) -> bytes:
    """``data`` with one byte of ``name``'s compressed bytes flipped (the middle, or ``at``)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(name)
    name_len, extra_len = struct.unpack_from("<2H", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    pos = start + (info.compress_size // 2 if at is None else at)
    return data[:pos] + bytes([data[pos] ^ 0x55]) + data[pos + 1 :]


@pytest.mark.parametrize("file", sorted(p.name for p in CORPUS.iterdir()))
def test_members_inflate_as_zipfile_reads_them(file: str):
    """Every member of every corpus file, read whole and streamed in small pieces, is what
    zipfile reads; deflated and stored members take ISA-L's path, not zipfile's."""
    from sheetreg import xlsxpatch as xp

    data = (CORPUS / file).read_bytes()
    pkg = xp._Package(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            want = z.read(info.filename)
            assert pkg._inflated(info.filename) == want, info.filename
            assert pkg.read(info.filename) == want
            with pkg.open(info.filename) as stream:
                assert isinstance(stream, xp._InflateStream)
                pieces = []
                while piece := stream.read(777):
                    pieces.append(piece)
            assert b"".join(pieces) == want, info.filename


def test_a_damaged_member_is_refused_whole_or_streamed(register: bytes):
    """A flipped byte in a deflated member, or a CRC-32 that does not match, is the
    package's error naming the member, read whole or as a stream."""
    from sheetreg import xlsxpatch as xp

    part = "xl/worksheets/sheet1.xml"
    flipped = _flip_in_member(register, part)
    with zipfile.ZipFile(io.BytesIO(register)) as z:
        info = z.getinfo(part)
        pos = z.start_dir  # the central directory: find the member's record
        while struct.unpack_from("<L", register, pos + 42)[0] != info.header_offset:
            pos += 46 + sum(struct.unpack_from("<3H", register, pos + 28))
    bad_crc = bytearray(register)  # its CRC-32 wrong in the local header and the directory
    struct.pack_into("<L", bad_crc, info.header_offset + 14, info.CRC ^ 1)
    struct.pack_into("<L", bad_crc, pos + 16, info.CRC ^ 1)
    refused = r"sheet1\.xml: the package member cannot be read"
    for damaged in (flipped, bytes(bad_crc)):
        pkg = xp._Package(damaged, FidelityError)
        assert pkg._inflated(part) is None
        with pytest.raises(FidelityError, match=refused):
            pkg.read(part)
        with pytest.raises(FidelityError, match=refused), pkg.open(part) as stream:
            while stream.read(1 << 12):
                pass


def test_a_member_whose_local_header_names_another_is_left_to_zipfile(register: bytes):
    """The local header must name the member as the central directory does; when it does
    not, zipfile reads the member (and refuses it)."""
    from sheetreg import xlsxpatch as xp

    part = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(register)) as z:
        info = z.getinfo(part)
    renamed = bytearray(register)
    name_at = info.header_offset + 30 + part.index("sheet1")
    renamed[name_at : name_at + 6] = b"sheetX"
    pkg = xp._Package(bytes(renamed))
    assert pkg._plain_body(part) is None
    with pytest.raises(PatchError, match="cannot be read"):
        pkg.read(part)
    with pytest.raises(PatchError, match="cannot be read"):
        pkg.open(part)
    other = "xl/worksheets/sheet2.xml"  # zipfile's stream, for a member it cannot delimit
    pkg._ends = {}
    with pkg.open(other) as stream:
        assert isinstance(stream, xp._MemberStream)
        assert stream.read() == members(register)[other]


def test_rows_found_ahead_patch_as_the_walk_does(register: bytes, monkeypatch):
    """prepare_patch(rows=True) finds where the rows are while the edits are being made; a
    status on every row is then appended from there, and the patch is the same, byte for
    byte, with cells that need the general path (an overwrite, a cell left of the last
    one, a row that exists only for its height, a new row) among them."""
    from sheetreg import xlsxpatch as xp

    edits = [CellEdit("Asiakkaat", f"L{r}", f"Tila {r % 3}") for r in range(1, 202)]
    edits += [
        CellEdit("Asiakkaat", "C9", None),  # an overwrite
        CellEdit("Asiakkaat", "B12", "Uusi"),  # left of the row's last cell
        CellEdit("Asiakkaat", "L203", "korkea rivi"),  # <row r="203" ... /> (height only)
        CellEdit("Asiakkaat", "L250", "uusi rivi"),  # past the last row
    ]
    plain = patch_workbook(register, edits, inline=True)
    package = xp.prepare_patch(register, ["asiakkaat"], rows=True)
    part = "xl/worksheets/sheet1.xml"
    index = package.row_index(part, package._preloaded[part])
    assert index is not None and set(range(1, 202)) <= set(index) and 203 in index
    calls = []
    real_last_col = xp._last_col
    monkeypatch.setattr(xp, "_last_col", lambda *a: calls.append(a) or real_last_col(*a))
    prepared = patch_workbook(register, edits, inline=True, package=package)
    assert prepared.data == plain.data
    ahead = len(calls)
    calls.clear()
    patch_workbook(register, edits, inline=True)
    assert ahead < 10 < 200 < len(calls)  # the rows found ahead are not looked at again
    verify_patch(register, prepared, edits)
    # Without rows=True nothing is found ahead; with other bytes the index is not used.
    assert xp.prepare_patch(register, ["asiakkaat"])._row_indexes == {}
    assert package.row_index("xl/worksheets/sheet1.xml", bytes(10)) is None


@pytest.mark.parametrize(
    "body",
    [
        # duplicate row numbers, a leading zero, r not first, rows out of order
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2"><v>2</v></c></row>'
        '<row r="2"><c r="A2"><v>3</v></c></row><row r="3"><c r="A3"><v>4</v></c></row>',
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="02"><c r="A2"><v>2</v></c></row>'
        '<row r="3"><c r="A3"><v>4</v></c></row>',
        '<row r="1"><c r="A1"><v>1</v></c></row><row spans="1:1" r="2"><c r="A2"><v>2</v></c>'
        '</row><row r="3"><c r="A3"><v>4</v></c></row>',
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="3"><c r="A3"><v>4</v></c></row>'
        '<row r="2"><c r="A2"><v>2</v></c></row>',
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c><v>2</v></c></row>'
        '<row r="3"><c r="A3"><v>4</v></c><c><v>5</v></c></row>',
        # spans hints to widen, a row with a style of its own, a cell right of the edits
        '<row r="1" spans="1:1"><c r="A1"><v>1</v></c></row><row r="2" spans="1:1" s="1"'
        ' customFormat="1"><c r="A2"><v>2</v></c></row><row r="3" spans="1:3"><c r="A3">'
        '<v>4</v></c><c r="C3"><v>5</v></c></row>',
    ],
    ids=["duplicate", "leading-zero", "r-not-first", "out-of-order", "cells-without-r", "styled"],
)
def test_rows_found_ahead_patch_odd_sheets_as_the_walk_does(body: str):
    """Rows as other writers leave them: with the rows found ahead, the same bytes, or the
    same refusal, as without."""
    from sheetreg import xlsxpatch as xp

    data = handmade({"S": f"<sheetData>{body}</sheetData>"})
    edits = [CellEdit("S", f"B{r}", f"tila {r}") for r in (1, 2, 3)]
    try:
        want: object = patch_workbook(data, edits, inline=True).data
    except PatchError as exc:
        want = str(exc)
    package = xp.prepare_patch(data, ["S"], rows=True)
    try:
        got: object = patch_workbook(data, edits, inline=True, package=package).data
    except PatchError as exc:
        got = str(exc)
    assert got == want


def test_excerpt_package_cuts_sheets_to_their_edited_cells(register: bytes, monkeypatch):
    """A sheet with few edits, or with edits on most rows, is cut to the edited cells; one
    with an edit that names no cell is left whole (the package itself when nothing is
    cut)."""
    from sheetreg import xlsxpatch as xp

    monkeypatch.setattr(xp, "EXCERPT_MIN_BYTES", 0)
    part = "xl/worksheets/sheet1.xml"
    few = [CellEdit("asiakkaat", "B5", "x"), CellEdit("Asiakkaat", "C5", "y")]
    cut = members(xp.excerpt_package(register, few))[part]
    assert cut.count(b"<row ") == 1 and cut.count(b"<c ") == 2 and b'<row r="5"><c r="B5"' in cut
    # Cells that are not there: no row at all (they read as empty).
    missing = [CellEdit("Asiakkaat", "L5", "x"), CellEdit("Asiakkaat", "M5", 1)]
    assert members(xp.excerpt_package(register, missing))[part].count(b"<row ") == 0
    # Most rows: each edited cell there is, taken as it is, in a row of its own number.
    dense = [CellEdit("Asiakkaat", f"{'j' if r == 9 else 'J'}{r}", "x") for r in range(2, 180)]
    cells = members(xp.excerpt_package(register, dense))[part]
    original = members(register)[part]
    assert cells.count(b"<row ") == 178 and cells.count(b"<c ") == 178
    assert b'<row r="9"><c r="J9"' in cells and b'<c r="K9"' not in cells
    for found in re.finditer(rb'<c r="J\d+".*?</c>', cells):
        assert found[0] in original
    assert cells[: cells.index(b"<sheetData>")] == original[: original.index(b"<sheetData>")]
    # Two such columns at once (their letters an alternation in the one search).
    both = [CellEdit("Asiakkaat", f"{c}{r}", "x") for c in "JB" for r in range(2, 180)]
    cells = members(xp.excerpt_package(register, both))[part]
    assert cells.count(b"<row ") == 178 and cells.count(b"<c ") == 356
    assert re.search(rb'<row r="9"><c r="B9"[^>]*>.*?</c><c r="J9"', cells) is not None
    for found in re.finditer(rb'<c r="[BJ]\d+".*?</c>', cells):
        assert found[0] in original
    # Many cells in a few rows: still cut (rows, not cells, count).
    wide = [
        CellEdit("Asiakkaat", f"{col_letter(c)}{r}", "x") for r in (7, 8) for c in range(1, 100)
    ]
    assert members(xp.excerpt_package(register, wide))[part].count(b"<row ") == 2
    assert xp.excerpt_package(register, [*few, CellEdit("Asiakkaat", "Tila", "x")]) is register


def test_cells_excerpt_takes_each_cell_as_it_is_or_gives_up():
    """The edited cells alone, byte for byte (an empty one, a self-closing one, a prefixed
    sheet's), each in a row of its number; a cell not there is left out; a cell twice, or
    cells out of row order, give None (the whole part is read then)."""
    from sheetreg import xlsxpatch as xp

    body = (
        '<row r="1"><c r="A1"><v>1</v></c><c r="B1" t="inlineStr"><is><t>a&lt;b</t></is></c></row>'
        '<row r="2" spans="1:3"><c r="A2"/><c r="B2" s="1"/><c r="C2"><v>3</v></c></row>'
        '<row r="4"><c r="B4"></c><c r="BB4"><v>9</v></c></row>'
    )
    data = handmade({"S": f"<sheetData>{body}</sheetData>"})
    sheet = members(data)["xl/worksheets/sheet1.xml"]
    cut = xp.cells_excerpt(sheet, {"B1", "B2", "B4", "B9", "C2"})
    assert cut is not None
    rows = cut[cut.index(b"<sheetData>") : cut.index(b"</sheetData>")]
    assert rows == (
        b'<sheetData><row r="1"><c r="B1" t="inlineStr"><is><t>a&lt;b</t></is></c></row>'
        b'<row r="2"><c r="B2" s="1"/><c r="C2"><v>3</v></c></row><row r="4"><c r="B4"></c></row>'
    )
    assert cut.replace(rows, b"<sheetData>") == sheet.replace(
        sheet[sheet.index(b"<sheetData>") : sheet.index(b"</sheetData>")], b"<sheetData>"
    )
    calamine = pc.CalamineWorkbook.from_filelike(
        io.BytesIO(rezip(data, {"xl/worksheets/sheet1.xml": cut}))
    )
    assert calamine.get_sheet_by_name("S").to_python() == [["a<b", ""], ["", 3]]
    twice = sheet.replace(b'<c r="C2"><v>3</v></c>', b'<c r="C2"><v>3</v></c><c r="C2"/>')
    assert xp.cells_excerpt(twice, {"C2"}) is None
    # A column with many edited cells is searched in one pass: a cell of it twice, or its
    # cells out of row order, give None too.
    rows = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(1, 81))
    many = members(handmade({"S": f"<sheetData>{rows}</sheetData>"}))["xl/worksheets/sheet1.xml"]
    column = {f"A{r}" for r in range(1, 81)}
    whole = xp.cells_excerpt(many, column | {"B3"})
    assert whole is not None and whole.count(b"<row ") == 80
    assert xp.cells_excerpt(many.replace(b'r="A7"', b'r="A6"'), column) is None
    swapped = many.replace(b'<c r="A7"><v>7</v>', b'<c r="A9"><v>7</v>', 1).replace(
        b'<c r="A9"><v>9</v>', b'<c r="A7"><v>9</v>', 1
    )
    assert xp.cells_excerpt(swapped, column) is None
    prefixed = handmade(
        {"S": f"<x:sheetData>{body.replace('<', '<x:').replace('<x:/', '</x:')}</x:sheetData>"},
        prefix="x",
    )
    psheet = members(prefixed)["xl/worksheets/sheet1.xml"]
    pcut = xp.cells_excerpt(psheet, {"C2"})
    assert pcut is not None and b'<x:row r="2"><x:c r="C2"><x:v>3</x:v></x:c></x:row>' in pcut
    assert xp._canonical_refs(["b2", "C10"]) == {"B2", "C10"}
    for bad in (["B0"], ["B02"], ["Tila"], ["XFE1"], [("B", 2)]):
        assert xp._canonical_refs(bad) is None, bad


def test_the_string_table_counts_its_items_however_written():
    """Items written <si>, <si/>, <si attr> or <si> on a new line all count; an element whose
    name only starts with "si" does not."""
    from sheetreg import xlsxpatch as xp

    def table(items: str) -> bytes:
        return (
            f'<?xml version="1.0"?><sst xmlns="{MAIN_NS}" count="9" uniqueCount="9">{items}</sst>'
        ).encode()

    plain = "".join(f"<si><t>{n}</t></si>" for n in range(5))
    assert xp._SharedStrings("s", table(plain)).count == 5
    mixed = plain + '<si/><si x="1"><t>a</t></si><si\n><t>b</t></si><sib/>'
    assert xp._SharedStrings("s", table(mixed)).count == 8


_RUN_CELLS = st.one_of(
    st.builds(lambda r: f"K{r}", st.integers(1, 700)),
    st.sampled_from(["k7", "K07", "K0", "XFD3", "XFE3", "K1048577", "AAAA1", "K 2", "", 7]),
)
_RUN_VALUES = st.one_of(
    st.sampled_from(["Aktiivinen", "Päättynyt", "Poistettu", "x\x01y", "a" * 32_768]),
    st.none(),
    st.integers(0, 3),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.just([1]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["S", "s", "T", "Nope"]), _RUN_CELLS, _RUN_VALUES),
        max_size=12,
    ),
    st.integers(0, 2**32),
)
def test_a_long_run_of_edits_is_planned_as_edit_by_edit(odd, seed):
    """Edits planned a run at a time (a status on every row) give the same plans, or the
    same refusal naming the same cell, as the same edits planned one by one: with lower case
    and nonsense references, repeated cells, values Excel cannot hold, other sheets."""
    import random

    from sheetreg.xlsxpatch import _load_workbook, _Package, _plan, _Planning

    data = handmade({"S": "<sheetData/>", "T": "<sheetData/>"})
    wb = _load_workbook(_Package(data))
    edits = [CellEdit("S", f"K{r}", "Aktiivinen" if r % 3 else "Päättynyt") for r in range(2, 602)]
    rng = random.Random(seed)
    for sheet, cell, value in odd:
        edits.insert(rng.randrange(len(edits) + 1), CellEdit(sheet, cell, value))  # type: ignore[arg-type]

    def planned(fast: bool) -> object:
        try:
            if fast:
                return _plan(wb, edits, PatchError)
            planning = _Planning(wb, PatchError)
            planning.one_by_one(edits, 0)
            return planning.plans
        except PatchError as exc:
            return str(exc)

    assert planned(True) == planned(False)


def test_a_clean_run_of_edits_is_planned_at_once():
    """The run of a status on every row is taken whole, its cells in edit order."""
    from sheetreg.xlsxpatch import _load_workbook, _Package, _Planning

    data = handmade({"S": "<sheetData/>"})
    wb = _load_workbook(_Package(data))
    edits = [CellEdit("S", f"K{r}", f"tila {r % 7}") for r in range(2, 602)]
    planning = _Planning(wb, PatchError)
    assert planning.run(edits, 5)
    (plan,) = planning.plans.values()
    assert [(c.row, c.col, c.ref, c.value, c.edit_index) for c in plan.cells.values()] == [
        (r, 11, f"K{r}", f"tila {r % 7}", r + 3) for r in range(2, 602)
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                lambda c, r: f"{c}{r}",
                st.sampled_from(["A", "K", "Z", "AA", "XFD", "XFE", "k", "AAAA", ""]),
                st.one_of(st.integers(0, 1_048_580).map(str), st.sampled_from(["01", "", "1e5"])),
            ),
            st.text(alphabet="AK09\n $-.ä١", max_size=6),
        ),
        max_size=8,
    )
)
def test_references_parsed_at_once_are_those_a_patch_writes(cells):
    """The references parsed at once are parsed as one by one, and only when every one is
    as a patch writes it (upper case, no leading zero, on the sheet)."""
    from sheetreg.xlsxpatch import _parse_ref, _ref, parse_canonical_refs

    one_by_one = [_parse_ref(cell) for cell in cells]
    canonical = bool(cells) and all(
        pos is not None and _ref(*pos) == cell for pos, cell in zip(one_by_one, cells, strict=True)
    )
    parsed = parse_canonical_refs(cells)
    if not canonical:
        assert parsed is None
    else:
        assert parsed is not None
        assert list(zip(*parsed, strict=True)) == one_by_one


def test_stored_members_are_the_same_only_byte_for_byte():
    """Two members stored alike are the same only with the same method, CRC and bytes: a
    CRC that happens to agree does not make different bytes the same."""
    from sheetreg.xlsxpatch import _same_stored

    body = memoryview(b"compressed bytes of a member" * 1000)
    assert _same_stored((8, 7, body), (8, 7, memoryview(bytes(body))))
    assert not _same_stored((8, 7, body), (8, 7, memoryview(bytes(body)[:-1] + b"!")))
    assert not _same_stored((8, 7, body), (8, 7, body[:-1]))
    assert not _same_stored((8, 7, body), (0, 7, body))
    assert not _same_stored((8, 7, body), (8, 6, body))


@pytest.mark.parametrize(
    "body",
    [
        '<row r="1" spans="1:2"><c r="A1"><v>1</v></c><c r="B1" t="s"><v>0</v></c></row>'
        '<row r="2"/><row r="3" ht="20" customHeight="1" /><row r="4"></row>'
        '<row r="5"><c r="AA5"><is><t>x</t></is></c></row>',
        # a cell with r later than first, one without r, an extension list, a leading zero
        '<row r="1"><c r="A1"><v>1</v></c><c s="1" r="B1"><v>2</v></c></row>'
        '<row r="2"><c r="A2"><v>1</v></c><c><v>2</v></c></row><row r="3"><c r="C3"/></row>',
        '<row r="1"><c r="A1"><v>1</v></c><extLst/></row><row r="2"><c r="B2"><v>2</v></c></row>',
        '<row r="1"><c r="A1"/></row><row r="07"><c r="A7"/></row><row r="8"><c r="A8"/></row>',
        '<row r="1"><c r="A1"/></row><row r="1"><c r="B1"/></row><row r="2"><c\nr="C2"/></row>',
    ],
)
def test_rows_found_ahead_read_each_row_as_the_walk_does(body: str):
    """The rows found ahead, all at once: where each starts and ends and its last cell's
    column as each row read on its own gives them, up to the first row the walk must find
    itself."""
    from sheetreg import xlsxpatch as xp

    data = f'<worksheet xmlns="{MAIN_NS}"><sheetData>{body}</sheetData></worksheet>'.encode()
    rx = xp._sheet_rx(b"")
    _sd, start, end = xp._sheet_body(data, rx, "", PatchError)
    want = {}
    pos = start
    while (at := data.find(b'<row r="', pos, end)) >= 0:
        m = rx.row_start.match(data, at)
        digits = data[at + 8 : data.find(b'"', at + 8)]
        if not digits.isdigit() or digits[:1] == b"0":
            break
        if m[2]:
            want.setdefault(int(digits), (at, m.end(), -1, 0, m[1]))
            pos = m.end()
            continue
        close = data.find(b"</row>", m.end(), end)
        last = xp._last_col(rx, data, m.end(), close)
        want.setdefault(int(digits), (at, m.end(), close, last, m[1]))
        pos = close
    assert {k: tuple(v) for k, v in xp._index_rows(data).items()} == want
