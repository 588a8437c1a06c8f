"""Findings are data: a stable kebab-case code, a severity and the cell where it happened.

The catalogue below is the single source of the codes, their titles and their message
templates in Finnish and English; `docs/finding-codes.md` is generated from it
(`python -m sheetreg.findings`), and a test checks that the committed file is current.
Messages never quote a cell's value: the value may be personal data.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Code:
    """One finding code: its severity, titles and message templates in fi and en."""

    code: str
    severity: Severity
    title_fi: str
    title_en: str
    message_fi: str
    message_en: str

    def title(self, lang: str) -> str:
        """The short title in ``lang``."""
        return self.title_fi if lang == "fi" else self.title_en

    def template(self, lang: str) -> str:
        """The message template in ``lang``; placeholders are filled by :func:`make`."""
        return self.message_fi if lang == "fi" else self.message_en


_CODES = (
    Code(
        "missing-sheet",
        "error",
        "Välilehti puuttuu",
        "Sheet missing",
        "Työkirjasta puuttuu välilehti {label_fi}.",
        "The workbook has no {label_en} sheet.",
    ),
    Code(
        "missing-column",
        "error",
        "Sarake puuttuu",
        "Column missing",
        "Välilehdeltä puuttuu sarake {label_fi}.",
        "The sheet has no {label_en} column.",
    ),
    Code(
        "unknown-column",
        "warning",
        "Tuntematon sarake",
        "Unknown column",
        "Sarake, jota rekisterin rakenne ei tunne; se säilytetään koskemattomana.",
        "A column the register schema does not know; it is kept untouched.",
    ),
    Code(
        "missing-value",
        "error",
        "Pakollinen tieto puuttuu",
        "Required value missing",
        "{label_fi} puuttuu.",
        "{label_en} is missing.",
    ),
    Code(
        "duplicate-client-id",
        "error",
        "Asiakasnumero toistuu",
        "Duplicate client ID",
        "Sama asiakasnumero on jo rivillä {other_row}.",
        "The same client ID is already on row {other_row}.",
    ),
    Code(
        "invalid-phone",
        "error",
        "Virheellinen puhelinnumero",
        "Invalid phone number",
        "Puhelinnumero ei ole kelvollinen suomalainen tai kansainvälinen numero.",
        "The phone number is not a valid Finnish or international number.",
    ),
    Code(
        "phone-stored-as-number",
        "error",
        "Puhelinnumero tallennettu lukuna",
        "Phone number stored as a number",
        "Puhelinnumero on tallennettu lukuna, joten alkunolla on kadonnut. "
        "Muuta solu tekstiksi ja kirjoita numero uudelleen.",
        "The phone number is stored as a number, so its leading zero is gone. "
        "Format the cell as text and type the number again.",
    ),
    Code(
        "invalid-email",
        "error",
        "Virheellinen sähköpostiosoite",
        "Invalid e-mail address",
        "Sähköpostiosoite ei ole kelvollinen.",
        "The e-mail address is not valid.",
    ),
    Code(
        "invalid-postal-code",
        "error",
        "Virheellinen postinumero",
        "Invalid postal code",
        "Postinumeron pitää olla viisi numeroa.",
        "A postal code must be five digits.",
    ),
    Code(
        "invalid-date",
        "error",
        "Virheellinen päivämäärä",
        "Invalid date",
        "{label_fi}: päivämäärää ei voi lukea. Kirjoita muodossa 20.10.2020.",
        "{label_en}: the date cannot be read. Write it like 20.10.2020.",
    ),
    Code(
        "end-before-start",
        "error",
        "Päättyminen ennen alkua",
        "End before start",
        "Asiakkuus päättyi ennen kuin se alkoi.",
        "The relationship ends before it starts.",
    ),
    Code(
        "invalid-choice",
        "error",
        "Arvo ei ole sallittu",
        "Value not allowed",
        "{label_fi}: valitse jokin näistä: {choices_fi}.",
        "{label_en}: choose one of: {choices_en}.",
    ),
    Code(
        "billing-address-incomplete",
        "error",
        "Laskutustiedot puutteelliset",
        "Billing details incomplete",
        "Laskutustapa {method_fi} vaatii tiedot: {needs_fi}.",
        "Billing method {method_en} needs: {needs_en}.",
    ),
    Code(
        "unknown-client",
        "error",
        "Tuntematon asiakas",
        "Unknown client",
        "Asiakasnumeroa ei ole Asiakkaat-välilehdellä.",
        "The client ID is not on the Clients sheet.",
    ),
    Code(
        "hetu-found",
        "error",
        "Henkilötunnus löytyi",
        "Personal identity code found",
        "Solussa on henkilötunnus. Tietosuojaseloste ei mainitse henkilötunnusta; poista se.",
        "The cell holds a Finnish personal identity code. The privacy notice does not list "
        "it; remove it.",
    ),
    Code(
        "duplicate-person",
        "warning",
        "Sama henkilö kahdesti",
        "Same person twice",
        "Sama nimi ja yhteystieto kuin rivillä {other_row}: sama henkilö kahdella "
        "asiakasnumerolla?",
        "Same name and contact as row {other_row}: one person under two client IDs?",
    ),
    Code(
        "invalid-amount",
        "error",
        "Virheellinen summa",
        "Invalid amount",
        "Summaa ei voi lukea. Kirjoita esimerkiksi 85,50.",
        "The amount cannot be read. Write it like 85.50 or 85,50.",
    ),
    Code(
        "future-date",
        "warning",
        "Päivämäärä tulevaisuudessa",
        "Date in the future",
        "{label_fi} on tulevaisuudessa ({today_fi} jälkeen).",
        "{label_en} is in the future (after {today_en}).",
    ),
    Code(
        "formula-in-data",
        "error",
        "Kaava tietosolussa",
        "Formula in a data cell",
        "Solussa on kaava; rekisteriin kuuluu arvo. Kirjoita arvo kaavan tilalle.",
        "The cell holds a formula where a value belongs. Type the value instead.",
    ),
    Code(
        "merged-cells",
        "error",
        "Yhdistettyjä soluja",
        "Merged cells",
        "Alue {range} on yhdistetty; otsikkorivillä ja tietoriveillä ei saa olla "
        "yhdistettyjä soluja.",
        "The range {range} is merged; the header row and data rows must not be merged.",
    ),
    Code(
        "duplicate-column",
        "error",
        "Sarake kahdesti",
        "Column twice",
        "Sarake {label_fi} on jo sarakkeessa {other_column}.",
        "The {label_en} column is already in column {other_column}.",
    ),
)

CATALOGUE: dict[str, Code] = {c.code: c for c in _CODES}


@dataclass(frozen=True)
class Finding:
    """One thing found in the workbook, at a position the user can find in Excel."""

    code: str
    severity: Severity
    sheet: str
    cell: str | None
    row: int | None
    column: str | None
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def make(
    code: str,
    lang: str,
    sheet: str,
    *,
    column: str | None = None,
    row: int | None = None,
    field_key: str | None = None,
    **params: Any,
) -> Finding:
    """Build a finding from the catalogue, filling its message in ``lang``."""
    entry = CATALOGUE[code]
    cell = f"{column}{row}" if column is not None and row is not None else None
    message = entry.template(lang).format(**params) if params else entry.template(lang)
    return Finding(code, entry.severity, sheet, cell, row, column, field_key, message)


@dataclass
class Report:
    """The result of validating one workbook."""

    workbook: str
    findings: list[Finding] = field(default_factory=list)
    lang: str = "fi"  # the workbook's language, for renderers

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity error."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def valid(self) -> bool:
        """True when no finding is an error (warnings allowed)."""
        return not self.errors

    def summary(self) -> dict[str, Any]:
        """Counts by severity and by code."""
        by_code: dict[str, int] = {}
        for f in self.findings:
            by_code[f.code] = by_code.get(f.code, 0) + 1
        return {
            "errors": len(self.errors),
            "warnings": len(self.findings) - len(self.errors),
            "by_code": dict(sorted(by_code.items())),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"workbook", "valid", "findings", "summary"}``."""
        return {
            "workbook": self.workbook,
            "valid": self.valid,
            "findings": [f.to_dict() for f in self.findings],
            "summary": self.summary(),
        }


def catalogue_markdown() -> str:
    """The documentation page of every finding code, in Finnish and English."""
    lines = [
        "# Löydöskoodit / Finding codes",
        "",
        "<!-- Generated by `python -m sheetreg.findings`; do not edit by hand. -->",
        "",
        "| koodi / code | vakavuus / severity | suomeksi | in English |",
        "|---|---|---|---|",
    ]
    for c in _CODES:
        sev = "virhe / error" if c.severity == "error" else "varoitus / warning"
        fi = f"**{c.title_fi}.** {c.message_fi}"
        en = f"**{c.title_en}.** {c.message_en}"
        lines.append(f"| `{c.code}` | {sev} | {fi} | {en} |")
    lines.append("")
    return "\n".join(lines)


DOC_PATH = Path("docs") / "finding-codes.md"

if __name__ == "__main__":  # pragma: no cover - regenerates the docs page
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC_PATH
    target.write_text(catalogue_markdown(), encoding="utf-8")
    json.dump({"written": str(target)}, sys.stdout)
