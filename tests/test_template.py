"""The register template: built from the schema, pleasant in Excel, committed copies current."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from sheetreg.schema import (
    CLIENTS,
    LANGS,
    SETTINGS,
    SETTINGS_ROWS,
    SHEETS,
    Kind,
    match_column,
    match_sheet,
)
from sheetreg.template import (
    DATE_FORMAT,
    MONEY_FORMAT,
    STYLED_LAST_ROW,
    TEMPLATE_FILENAMES,
    TEXT_FORMAT,
    build_template,
    instructions,
    workbook_bytes,
    write_template,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _reload(wb: openpyxl.Workbook) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(workbook_bytes(wb)))


def _fingerprint(wb: openpyxl.Workbook) -> dict[str, Any]:
    """Everything the template promises, as plain data that compares by value."""
    out: dict[str, Any] = {"sheets": wb.sheetnames}
    props = wb.properties
    out["properties"] = (props.creator, props.title, props.created, props.modified)
    for ws in wb.worksheets:
        values = {
            cell.coordinate: cell.value
            for row in ws.iter_rows()
            for cell in row
            if cell.value is not None
        }
        header = [
            (
                cell.coordinate,
                cell.number_format,
                cell.fill.fgColor.rgb,
                cell.font.b,
                cell.comment.text if cell.comment else None,
            )
            for cell in ws[1]
        ]
        columns = {
            letter: (dim.width, dim.number_format, dim.fill.fgColor.rgb)
            for letter, dim in sorted(ws.column_dimensions.items())
        }
        styled = {
            cell.coordinate: cell.number_format
            for row_number in (2, STYLED_LAST_ROW)
            for cell in ws[row_number]
        }
        validations = sorted(
            (str(dv.sqref), dv.type, dv.formula1, dv.errorStyle, dv.allow_blank, dv.prompt)
            for dv in ws.data_validations.dataValidation
        )
        conditional = sorted(
            (str(cf.sqref), rule.type, tuple(rule.formula), rule.stopIfTrue, rule.priority)
            for cf in ws.conditional_formatting
            for rule in cf.rules
        )
        out[ws.title] = {
            "values": values,
            "header": header,
            "columns": columns,
            "styled": styled,
            "validations": validations,
            "conditional": conditional,
            "freeze": ws.freeze_panes,
            "autofilter": ws.auto_filter.ref,
        }
    return out


@pytest.mark.parametrize("lang", LANGS)
def test_committed_template_matches_generator(lang: str) -> None:
    """The committed template has exactly the content the generator makes today."""
    committed = openpyxl.load_workbook(TEMPLATES / TEMPLATE_FILENAMES[lang])
    assert _fingerprint(committed) == _fingerprint(_reload(build_template(lang)))


@pytest.mark.parametrize("lang", LANGS)
def test_template_is_deterministic(lang: str) -> None:
    """Building the template twice gives the same bytes."""
    assert workbook_bytes(build_template(lang)) == workbook_bytes(build_template(lang))


def test_write_template_refuses_to_overwrite(tmp_path: Path) -> None:
    """write_template never replaces an existing file."""
    target = tmp_path / "register.xlsx"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        write_template(target)
    assert target.read_bytes() == b"keep me"


def test_write_template_writes_a_workbook(tmp_path: Path) -> None:
    """write_template makes a workbook openpyxl can open, in the chosen language."""
    target = tmp_path / "register.xlsx"
    write_template(target, "en")
    assert openpyxl.load_workbook(target).sheetnames[0] == "Clients"


def test_unknown_language_is_refused() -> None:
    """Only fi and en templates exist."""
    with pytest.raises(ValueError, match="language"):
        build_template("sv")


@pytest.mark.parametrize("lang", LANGS)
def test_sheets_in_schema_order_and_language(lang: str) -> None:
    """Every schema sheet is present, in schema order, named in the workbook's language."""
    assert build_template(lang).sheetnames == [sheet.label(lang) for sheet in SHEETS]


@pytest.mark.parametrize("lang", LANGS)
def test_headers_freeze_filter_and_widths(lang: str) -> None:
    """Each table sheet has the schema headers, a frozen header row, a filter and widths."""
    wb = build_template(lang)
    for sheet in SHEETS:
        if not sheet.columns or sheet is SETTINGS:
            continue
        ws = wb[sheet.label(lang)]
        assert [c.value for c in ws[1]] == [col.label(lang) for col in sheet.columns]
        assert ws.freeze_panes == ("B2" if sheet is CLIENTS else "A2")
        assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(sheet.columns)).column_letter}1"
        for index, column in enumerate(sheet.columns, start=1):
            letter = ws.cell(1, index).column_letter
            assert ws.column_dimensions[letter].width == column.width


@pytest.mark.parametrize("lang", LANGS)
def test_number_formats_by_kind(lang: str) -> None:
    """Dates show d.m.yyyy, money as euros, and IDs, phones and postal codes are text."""
    wb = build_template(lang)
    expected = {
        Kind.DATE: DATE_FORMAT,
        Kind.MONEY: MONEY_FORMAT,
        Kind.ID: TEXT_FORMAT,
        Kind.PHONE: TEXT_FORMAT,
        Kind.POSTAL: TEXT_FORMAT,
    }
    checked = set()
    for sheet in SHEETS:
        ws = wb[sheet.label(lang)]
        for index, column in enumerate(sheet.columns, start=1):
            if column.kind not in expected:
                continue
            letter = ws.cell(1, index).column_letter
            want = expected[column.kind]
            assert ws.column_dimensions[letter].number_format == want
            assert ws.cell(2, index).number_format == want
            assert ws.cell(STYLED_LAST_ROW, index).number_format == want
            checked.add(column.kind)
    assert checked == set(expected)


@pytest.mark.parametrize("lang", LANGS)
def test_dropdowns_for_every_choice_column(lang: str) -> None:
    """Every choice and yes/no column has a list dropdown in the language, warning on others."""
    wb = build_template(lang)
    for sheet in SHEETS:
        ws = wb[sheet.label(lang)]
        found = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
        for index, column in enumerate(sheet.columns, start=1):
            letter = ws.cell(1, index).column_letter
            if column.kind not in (Kind.CHOICE, Kind.YESNO):
                assert not any(ref.startswith(f"{letter}2:") for ref in found)
                continue
            dv = found[f"{letter}2:{letter}5000"]
            assert dv.type == "list"
            assert dv.errorStyle == "warning"
            labels = ",".join(choice.label(lang) for choice in column.choices)
            assert dv.formula1 == f'"{labels}"'
            assert dv.promptTitle and len(dv.promptTitle) <= 32


@pytest.mark.parametrize("lang", LANGS)
def test_sheetreg_columns_are_set_apart(lang: str) -> None:
    """Columns sheetreg writes have their own header fill and a note saying so."""
    wb = build_template(lang)
    note = "sheetreg kirjoittaa tämän sarakkeen" if lang == "fi" else "written by sheetreg"
    for sheet in SHEETS:
        if sheet is SETTINGS:
            continue
        ws = wb[sheet.label(lang)]
        user_fills = set()
        for index, column in enumerate(sheet.columns, start=1):
            cell = ws.cell(1, index)
            if sheet.written_by_sheetreg or column.written_by_sheetreg:
                assert note in cell.comment.text
                assert cell.fill.fgColor.rgb.endswith("BFBFBF")
            else:
                assert cell.comment is None
                user_fills.add(cell.fill.fgColor.rgb)
        assert not any(rgb.endswith("BFBFBF") for rgb in user_fills)


@pytest.mark.parametrize("lang", LANGS)
def test_privacy_status_lights_up_rows_in_both_languages(lang: str) -> None:
    """Conditional formats on Clients search the status column for words of both languages."""
    ws = build_template(lang)[CLIENTS.label(lang)]
    rules = [(str(cf.sqref), rule) for cf in ws.conditional_formatting for rule in cf.rules]
    assert [ref for ref, _ in rules] == ["A2:S5000", "A2:S5000"]
    blocked, attention = (rule.formula[0] for _, rule in rules)
    for word in ("estetty", "blocked"):
        assert f'SEARCH("{word}",$S2)' in blocked
    for word in ("odottaa", "awaits", "Päättynyt", "Ended"):
        assert f'SEARCH("{word}",$S2)' in attention
    assert all(rule.type == "expression" and rule.dxf.fill is not None for _, rule in rules)


@pytest.mark.parametrize("lang", LANGS)
def test_settings_sheet_lists_every_setting(lang: str) -> None:
    """The Settings sheet has one row per schema setting with its label and default."""
    ws = build_template(lang)[SETTINGS.label(lang)]
    rows = [tuple(c.value for c in row) for row in ws.iter_rows(min_row=1, max_col=2)]
    assert rows[0] == tuple(col.label(lang) for col in SETTINGS.columns)
    assert rows[1:] == [(s.label(lang), s.default(lang)) for s in SETTINGS_ROWS]
    assert ws["B2"].alignment.wrap_text


@pytest.mark.parametrize("lang", LANGS)
def test_instructions_are_short_and_name_the_folders(lang: str) -> None:
    """The Instructions sheet is a 10-20 line how-to naming the command and the folders."""
    lines = instructions(lang)
    assert 10 <= len(lines) <= 20
    text = "\n".join(lines)
    for needle in ("sheetreg validate", "backups/", "extracts/", "reports/", "20.10.2020"):
        assert needle in text
    approve = CLIENTS.column("approve_erasure").label(lang)
    assert approve in text
    ws = build_template(lang)["Ohjeet" if lang == "fi" else "Instructions"]
    assert [c.value for c in ws["A"] if c.value] == lines


@pytest.mark.parametrize("lang", LANGS)
def test_calamine_reads_every_sheet_and_header(lang: str) -> None:
    """python-calamine sees every schema sheet and every column header of the template."""
    wb = CalamineWorkbook.from_path(str(TEMPLATES / TEMPLATE_FILENAMES[lang]))
    seen = {match_sheet(name): name for name in wb.sheet_names}
    for sheet in SHEETS:
        assert sheet in seen
        if not sheet.columns:
            continue
        rows = wb.get_sheet_by_name(seen[sheet]).to_python()
        headers = [match_column(sheet, h) for h in rows[0]]
        assert headers == list(sheet.columns)
        if sheet is not SETTINGS:
            assert len(rows) == 1  # formatted but empty rows are not data


@pytest.mark.parametrize("lang", LANGS)
def test_template_holds_no_data_rows(lang: str) -> None:
    """The template's data sheets have a header and nothing else: no personal data."""
    wb = build_template(lang)
    for sheet in SHEETS:
        if not sheet.columns or sheet is SETTINGS:
            continue
        ws = wb[sheet.label(lang)]
        assert not [c for row in ws.iter_rows(min_row=2) for c in row if c.value is not None]


@pytest.mark.libreoffice
@pytest.mark.parametrize("lang", LANGS)
def test_libreoffice_opens_template(lang: str, tmp_path: Path) -> None:
    """LibreOffice converts the template to CSV; the first line is the Clients header."""
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    source = TEMPLATES / TEMPLATE_FILENAMES[lang]
    result = subprocess.run(
        [
            soffice,
            "--headless",
            f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",  # 76: UTF-8
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / source.with_suffix(".csv").name).read_text(encoding="utf-8-sig")
    first = next(csv.reader(io.StringIO(text)))
    assert first == [column.label(lang) for column in CLIENTS.columns]
