"""The empty register workbook, generated from the schema in Finnish or English.

The template is built from code (never read from ``templates/``) so that it also works from an
installed wheel; ``python -m sheetreg.template [DIR]`` regenerates the committed copies. Output is
deterministic: fixed document properties and fixed zip timestamps, so regenerating an unchanged
template gives the same bytes.
"""

from __future__ import annotations

import datetime
import io
import re
import sys
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.comments import Comment
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from sheetreg.schema import (
    CLIENTS,
    DISCLOSURES,
    ERASURE_LOG,
    INSTRUCTIONS,
    INVOICES,
    LANGS,
    REQUESTS,
    SETTINGS,
    SETTINGS_ROWS,
    SHEETS,
    YES_NO,
    Column,
    Kind,
    Sheet,
)

TEMPLATE_FILENAMES: dict[str, str] = {
    "fi": "registry_template.xlsx",
    "en": "registry_template_en.xlsx",
}

DATE_FORMAT = "d.m.yyyy"
MONEY_FORMAT = '#,##0.00 "€"'
TEXT_FORMAT = "@"

# Dropdowns and conditional formats reach this row; they cost nothing per row in the file.
VALIDATION_LAST_ROW = 5000
# Empty cells that carry a number format (dates, euros, text) so that a newly typed value shows
# right in every spreadsheet program. Each costs a few bytes, hence fewer than the dropdown rows;
# beyond this row the column style (which Excel and LibreOffice also honour) takes over.
STYLED_LAST_ROW = 1000

# Fixed document properties: regenerating the template must give the same content.
CREATOR = "sheetreg"
FIXED_TIMESTAMP = datetime.datetime(2026, 1, 1, 0, 0, 0)

HEADER_FILL = PatternFill(fill_type="solid", start_color="DDEBF7", end_color="DDEBF7")
SHEETREG_HEADER_FILL = PatternFill(fill_type="solid", start_color="BFBFBF", end_color="BFBFBF")
SHEETREG_COLUMN_FILL = PatternFill(fill_type="solid", start_color="F2F2F2", end_color="F2F2F2")
HEADER_FONT = Font(bold=True)
SHEETREG_HEADER_FONT = Font(bold=True, italic=True, color="404040")
HEADER_BORDER = Border(bottom=Side(style="thin", color="808080"))
HEADER_ALIGNMENT = Alignment(wrap_text=True, vertical="center")
WRAP_TOP = Alignment(wrap_text=True, vertical="top")

# end_color is the background colour a conditional format uses.
# Conditional formatting of the Clients rows by the Privacy status text, in both languages, so
# that a status written in either language lights up whatever the workbook's language.
BLOCKED_WORDS = ("estetty", "blocked")
ATTENTION_WORDS = ("odottaa", "awaits", "Päättynyt", "Ended")
BLOCKED_FILL = PatternFill(fill_type="solid", start_color="FFC7CE", end_color="FFC7CE")
ATTENTION_FILL = PatternFill(fill_type="solid", start_color="FFEB9C", end_color="FFEB9C")

_TEXTS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Asiakasrekisteri",
        "written_note": "sheetreg kirjoittaa tämän sarakkeen. Älä muokkaa sitä.",
        "prompt_title": "Valitse listasta",
        "prompt": "Valitse arvo alasvetovalikosta.",
        "error_title": "Arvo ei ole listalla",
        "error": "Arvo ei ole listalla. Valitse mieluiten listasta. Jätetäänkö silti?",
    },
    "en": {
        "title": "Client register",
        "written_note": "This column is written by sheetreg. Please do not edit it.",
        "prompt_title": "Choose from the list",
        "prompt": "Pick a value from the dropdown.",
        "error_title": "Value not in the list",
        "error": "The value is not in the list. Prefer one from the list. Keep it anyway?",
    },
}


def _check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")


def number_format_for(column: Column) -> str | None:
    """The number format a column's cells get in the template, or None for General."""
    if column.kind is Kind.DATE:
        return DATE_FORMAT
    if column.kind is Kind.MONEY:
        return MONEY_FORMAT
    if column.kind in (Kind.ID, Kind.PHONE, Kind.POSTAL):
        return TEXT_FORMAT
    return None


def _is_sheetreg_column(sheet: Sheet, column: Column) -> bool:
    return sheet.written_by_sheetreg or column.written_by_sheetreg


def _write_header(ws: Worksheet, sheet: Sheet, lang: str) -> None:
    note = _TEXTS[lang]["written_note"]
    for index, column in enumerate(sheet.columns, start=1):
        cell = ws.cell(row=1, column=index, value=column.label(lang))
        cell.alignment = HEADER_ALIGNMENT
        cell.border = HEADER_BORDER
        if _is_sheetreg_column(sheet, column):
            cell.fill = SHEETREG_HEADER_FILL
            cell.font = SHEETREG_HEADER_FONT
            comment = Comment(note, CREATOR)
            comment.width = 220
            comment.height = 60
            cell.comment = comment
        else:
            cell.fill = HEADER_FILL
            cell.font = HEADER_FONT
    ws.row_dimensions[1].height = 32


def _format_columns(ws: Worksheet, sheet: Sheet) -> None:
    for index, column in enumerate(sheet.columns, start=1):
        letter = get_column_letter(index)
        dimension = ws.column_dimensions[letter]
        dimension.width = column.width
        number_format = number_format_for(column)
        sheetreg_column = _is_sheetreg_column(sheet, column)
        if number_format:
            dimension.number_format = number_format
        if sheetreg_column:
            dimension.fill = SHEETREG_COLUMN_FILL
        if number_format is None:
            continue
        # Cells too, not just the column style: a value typed into a cell that exists keeps its
        # format in every program, and a leading zero typed into a text cell survives.
        for row in range(2, STYLED_LAST_ROW + 1):
            cell = ws.cell(row=row, column=index)
            cell.number_format = number_format
            if sheetreg_column:
                cell.fill = SHEETREG_COLUMN_FILL


def _add_dropdowns(ws: Worksheet, sheet: Sheet, lang: str) -> None:
    texts = _TEXTS[lang]
    for index, column in enumerate(sheet.columns, start=1):
        if column.kind not in (Kind.CHOICE, Kind.YESNO) or not column.choices:
            continue
        letter = get_column_letter(index)
        labels = ",".join(choice.label(lang) for choice in column.choices)
        validation = DataValidation(
            type="list",
            formula1=f'"{labels}"',
            allow_blank=True,
            showErrorMessage=True,
            showInputMessage=True,
            errorStyle="warning",  # a value in the other language must still be accepted
            errorTitle=texts["error_title"],
            error=texts["error"],
            promptTitle=texts["prompt_title"],
            prompt=texts["prompt"],
        )
        validation.add(f"{letter}2:{letter}{VALIDATION_LAST_ROW}")
        ws.add_data_validation(validation)


def _search_any(words: tuple[str, ...], cell: str) -> str:
    tests = ",".join(f'ISNUMBER(SEARCH("{word}",{cell}))' for word in words)
    return f"OR({tests})"


def _add_status_highlight(ws: Worksheet) -> None:
    status_index = CLIENTS.columns.index(CLIENTS.column("privacy_status")) + 1
    status_cell = f"${get_column_letter(status_index)}2"
    last_letter = get_column_letter(len(CLIENTS.columns))
    cell_range = f"A2:{last_letter}{VALIDATION_LAST_ROW}"
    ws.conditional_formatting.add(
        cell_range,
        FormulaRule(
            formula=[_search_any(BLOCKED_WORDS, status_cell)],
            fill=BLOCKED_FILL,
            stopIfTrue=True,
        ),
    )
    ws.conditional_formatting.add(
        cell_range,
        FormulaRule(
            formula=[_search_any(ATTENTION_WORDS, status_cell)],
            fill=ATTENTION_FILL,
            stopIfTrue=True,
        ),
    )


def _build_table_sheet(ws: Worksheet, sheet: Sheet, lang: str) -> None:
    _write_header(ws, sheet, lang)
    _format_columns(ws, sheet)
    _add_dropdowns(ws, sheet, lang)
    ws.freeze_panes = "B2" if sheet is CLIENTS else "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(sheet.columns))}1"
    if sheet is CLIENTS:
        _add_status_highlight(ws)
    if sheet.written_by_sheetreg:
        ws.sheet_properties.tabColor = "808080"


def _build_settings(ws: Worksheet, lang: str) -> None:
    _write_header(ws, SETTINGS, lang)
    for index, column in enumerate(SETTINGS.columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = column.width
    ws.column_dimensions["B"].alignment = WRAP_TOP
    for row, setting in enumerate(SETTINGS_ROWS, start=2):
        label = ws.cell(row=row, column=1, value=setting.label(lang))
        label.alignment = WRAP_TOP
        label.font = HEADER_FONT
        value = ws.cell(row=row, column=2, value=setting.default(lang))
        value.alignment = WRAP_TOP
    ws.freeze_panes = "A2"


def instructions(lang: str) -> list[str]:
    """The lines of the Instructions sheet in ``lang``; the first is its title."""
    _check_lang(lang)
    clients, invoices, requests = CLIENTS.label(lang), INVOICES.label(lang), REQUESTS.label(lang)
    disclosures = DISCLOSURES.label(lang)
    log, settings = ERASURE_LOG.label(lang), SETTINGS.label(lang)
    grey = ", ".join(
        column.label(lang)
        for sheet in (CLIENTS, REQUESTS)
        for column in sheet.columns
        if column.written_by_sheetreg
    )
    approve = CLIENTS.column("approve_erasure").label(lang)
    paid = INVOICES.column("paid_on").label(lang)
    yes, no = YES_NO[0].label(lang), YES_NO[1].label(lang)
    if lang == "fi":
        return [
            "Näin käytät asiakasrekisteriä",
            "Tämä työkirja on vastaanoton asiakasrekisteri. sheetreg tarkistaa sen kerran "
            "viikossa ja auttaa pitämään tietosuojaselosteen lupaukset.",
            f"{clients}: yksi rivi jokaista asiakasta kohden. Asiakasnumero (esim. A1001), "
            "nimi, alkamispäivä ja puhelin tai sähköposti tarvitaan aina.",
            f"{invoices}: jokainen lasku omalle rivilleen. Kun lasku on maksettu, kirjoita "
            f"päivä sarakkeeseen {paid}.",
            f"{requests}: kirjaa asiakkaan tietosuojapyyntö (esim. tarkastus tai poisto) "
            "samana päivänä kuin se saapuu. sheetreg laskee määräajan.",
            f"{disclosures}: merkitse aina, kun annat asiakkaan tietoja eteenpäin "
            "(yhteistyökumppani, laskutus, perintä, viranomainen).",
            f"{settings}: vastaanoton tiedot tietosuojaselosteesta ja poistokäytäntö.",
            "Kirjoita päivämäärät muodossa 20.10.2020.",
            f"Valitse arvot alasvetovalikoista (esim. {yes}/{no}).",
            f"Harmaat sarakkeet ({grey}) ja koko {log} ovat sheetregin kirjoittamia: "
            "älä muokkaa niitä.",
            "Punainen rivi: asiakkaan tietoja ei saa nyt käyttää. Keltainen rivi: asiakkuus on "
            "päättynyt tai rivi odottaa sinulta jotain.",
            f"Poiston hyväksyminen: kun sheetreg ehdottaa poistoa, valitse riville "
            f"{approve} = {yes}. Poisto tehdään seuraavalla ajolla.",
            "Tarkistus: tallenna ja sulje työkirja ja aja komento  sheetreg validate "
            "asiakasrekisteri.xlsx  (tai anna viikoittaisen ajon hoitaa se).",
            "Työkirjan vierestä löydät varmuuskopiot kansiosta backups/, asiakkaille "
            "annettavat otteet kansiosta extracts/ ja raportit kansiosta reports/.",
            "Älä kirjoita tähän hoitoon liittyviä tietoja tai henkilötunnuksia.",
        ]
    return [
        "How to use the client register",
        "This workbook is the practice's client register. sheetreg checks it once a week and "
        "helps keep the promises of the privacy notice.",
        f"{clients}: one row per client. A client ID (e.g. A1001), the name, the start date "
        "and a phone number or an e-mail are always needed.",
        f"{invoices}: one row per invoice. When an invoice is paid, type the date in {paid}.",
        f"{requests}: record a client's privacy request (e.g. access or erasure) on the day it "
        "arrives. sheetreg works out the deadline.",
        f"{disclosures}: note every time you pass a client's data on (a partner, billing, debt "
        "collection, an authority).",
        f"{settings}: the practice's details from the privacy notice and the erasure policy.",
        "Type dates like 20.10.2020.",
        f"Choose values from the dropdowns (e.g. {yes}/{no}).",
        f"The grey columns ({grey}) and the whole {log} are written by sheetreg: please do "
        "not edit them.",
        "A red row: the client's data must not be used now. An amber row: the relationship has "
        "ended or the row awaits something from you.",
        f"To approve an erasure that sheetreg proposes, set {approve} = {yes} on the row. The "
        "erasure happens on the next run.",
        "To check the register: save and close the workbook and run  sheetreg validate "
        "client-register.xlsx  (or let the weekly job do it).",
        "Beside the workbook you will find backups in backups/, extracts for clients in "
        "extracts/ and reports in reports/.",
        "Do not write anything about treatment or personal identity codes here.",
    ]


def _build_instructions(ws: Worksheet, lang: str) -> None:
    lines = instructions(lang)
    ws.column_dimensions["A"].width = 110
    title = ws.cell(row=1, column=1, value=lines[0])
    title.font = Font(bold=True, size=14)
    for row, line in enumerate(lines[1:], start=3):
        ws.cell(row=row, column=1, value=line).alignment = WRAP_TOP


def build_template(lang: str = "fi") -> openpyxl.Workbook:
    """An empty register workbook with every schema sheet, labelled in ``lang`` ("fi"/"en")."""
    _check_lang(lang)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sheet in SHEETS:
        ws = wb.create_sheet(sheet.label(lang))
        if sheet is SETTINGS:
            _build_settings(ws, lang)
        elif sheet is INSTRUCTIONS:
            _build_instructions(ws, lang)
        else:
            _build_table_sheet(ws, sheet, lang)
    wb.active = 0
    props = wb.properties
    props.creator = CREATOR
    props.lastModifiedBy = CREATOR
    props.title = _TEXTS[lang]["title"]
    props.language = lang
    props.created = FIXED_TIMESTAMP
    props.modified = FIXED_TIMESTAMP
    return wb


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def workbook_bytes(wb: openpyxl.Workbook) -> bytes:
    """``wb`` saved as .xlsx bytes, with a fixed modified time and fixed zip entry times.

    openpyxl stamps the current time into the document properties on every save; this puts
    the workbook's own ``properties.modified`` back so the same workbook gives the same bytes.
    """
    modified = (wb.properties.modified or FIXED_TIMESTAMP).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = io.BytesIO()
    wb.save(raw)
    out = io.BytesIO()
    stamp = (1980, 1, 1, 0, 0, 0)
    with (
        zipfile.ZipFile(io.BytesIO(raw.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _MODIFIED.sub(rb"\g<1>" + modified.encode() + rb"\g<2>", data)
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)
    return out.getvalue()


def write_new_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, which must not exist yet (raises FileExistsError)."""
    with Path(path).open("xb") as handle:
        handle.write(data)


def write_template(path: Path, lang: str = "fi") -> None:
    """Write an empty register template in ``lang`` to ``path``; never overwrites a file."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(str(path))
    write_new_file(path, workbook_bytes(build_template(lang)))


def regenerate(directory: Path) -> list[Path]:
    """Rewrite the committed templates (both languages) in ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for lang, name in TEMPLATE_FILENAMES.items():
        target = directory / name
        target.unlink(missing_ok=True)
        write_template(target, lang)
        written.append(target)
    return written


if __name__ == "__main__":
    for written_path in regenerate(Path(sys.argv[1] if len(sys.argv) > 1 else "templates")):
        print(written_path)
