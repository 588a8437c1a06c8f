"""The access extract (GDPR Art. 15) and portable copy (Art. 20) of one client.

:func:`build_extract` is pure: from the register it takes this client's rows only, from every
data sheet (Clients, Invoices, Requests, Disclosures), and the Art. 15(1)(a)-(h) information from
Settings made specific to this person: the recipients that actually received their data, the
retention that applies to them now, the source of each kind of data. :func:`write_extract` writes
it as three files in one folder named by client ID and date (never by name):

- ``<id>-<date>.xlsx``: for people; a first sheet with the Art. 15 information, then one sheet
  per source sheet holding only this client's rows;
- ``<id>-<date>.html``: the same as one self-contained, print-friendly page;
- ``<id>-<date>.json``: structured and machine-readable, for portability.

The extract is the only place where personal data leave the workbook. Its folder and files are
made readable by the owner only (on POSIX), and nothing from it is printed or logged.

A password-protected register gets a protected extract: only the .xlsx, encrypted (agile AES,
as Excel does) with a password for the person, which the therapist hands over by another
channel; :func:`make_extract` makes a new readable one unless given one. HTML and JSON cannot be
encrypted, so they are written only when asked for explicitly (``allow_plain``), and then every
file is plain. The password is returned once and never written anywhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sheetreg import crypto, values
from sheetreg.errors import SheetregError
from sheetreg.schema import (
    DATA_SHEETS,
    DISCLOSURE_BASES,
    SETTINGS_ROWS,
    YES_NO,
    Column,
    Kind,
    Setting,
)

if TYPE_CHECKING:
    from sheetreg.register import Register, Table

EXTRACT_FORMAT = "sheetreg-access-extract/1"
EXTRACTS_DIR = "extracts"

# The Art. 15(1) items in order: key, point, title in fi and en.
ART15_ITEMS: tuple[tuple[str, str, str, str], ...] = (
    (
        "purposes",
        "a",
        "Käsittelyn tarkoitukset ja oikeusperuste",
        "Purposes of the processing and legal basis",
    ),
    ("categories", "b", "Käsiteltävät henkilötietoryhmät", "Categories of personal data"),
    ("recipients", "c", "Vastaanottajat", "Recipients"),
    ("retention", "d", "Säilytysaika", "Retention period"),
    (
        "rights",
        "e",
        "Oikeus tietojen oikaisemiseen, poistamiseen, käsittelyn rajoittamiseen ja vastustamiseen",
        "Right to rectification, erasure, restriction of processing and to object",
    ),
    (
        "complaint",
        "f",
        "Oikeus tehdä valitus valvontaviranomaiselle",
        "Right to lodge a complaint with a supervisory authority",
    ),
    ("source", "g", "Tietolähteet", "Source of the data"),
    (
        "automated_decisions",
        "h",
        "Automaattinen päätöksenteko ja profilointi",
        "Automated decision-making and profiling",
    ),
)

_WORDS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Tarkastusote",
        "subtitle": "Henkilötietosi asiakasrekisterissä (EU:n yleinen tietosuoja-asetus, "
        "15 ja 20 artikla)",
        "info_sheet": "Tiedot käsittelystä",
        "info_heading": "Tiedot henkilötietojesi käsittelystä",
        "copy_heading": "Jäljennös tiedoistasi",
        "copy_note": "Alla ovat kaikki rekisterissä olevat tietosi: jokaiselta välilehdeltä vain "
        "sinua koskevat rivit.",
        "article": "artikla 15(1)({point})",
        "controller": "Rekisterinpitäjä",
        "controller_address": "Osoite",
        "contact_person": "Yhteyshenkilö",
        "register_name": "Rekisteri",
        "client_id": "Asiakasnumero",
        "made_on": "Otteen päiväys",
        "request": "Pyyntö",
        "point": "Kohta",
        "topic": "Aihe",
        "content": "Tiedot",
        "field": "Tieto",
        "value": "Arvo",
        "no_rows": "Ei rivejä.",
        "rows": "{n} riviä",
        "row": "1 rivi",
        "footer": "Ote tehty {date} sheetregillä. JSON-tiedosto sisältää samat tiedot "
        "koneluettavassa muodossa (20 artikla).",
        "purposes_basis": "Oikeusperuste: {basis}",
        "categories_held": "Sinusta on tallennettu: {what}.",
        "categories_general": "Rekisteriselosteen mukaiset tietoryhmät: {text}",
        "recipients_none": "Tietojasi ei ole luovutettu kenellekään.",
        "recipients_disclosed": "Tietojasi on luovutettu seuraaville:",
        "recipient_row": "{date}: {recipient} ({basis}); tiedot: {data}",
        "recipient_row_nodata": "{date}: {recipient} ({basis})",
        "partner": "Yhteistyökumppani yhteisessä palvelussa: {partner}",
        "recipients_general": "Tietoja voidaan tulevaisuudessa luovuttaa: {text}",
        "retention_general": "Yleinen säilytyssääntö: {text}",
        "retention_active": "Asiakkuutesi on voimassa (alkanut {start}). Yhteystietosi "
        "säilytetään asiakkuuden ajan ja poistetaan sen päätyttyä.",
        "retention_ended": "Asiakkuutesi päättyi {end}. Yhteystietosi poistetaan asiakkuuden "
        "päätyttyä, ellei jokin alla mainittu peruste edellytä niiden säilyttämistä.",
        "retention_auto": " Ne poistetaan {date}.",
        "retention_ending": "Asiakkuutesi päättyy {end}. Yhteystietosi säilytetään siihen asti "
        "ja poistetaan sen jälkeen, ellei jokin alla mainittu peruste edellytä niiden "
        "säilyttämistä.",
        "retention_hold": "Tietojasi säilytetään {until} asti.",
        "retention_hold_open": "Tietojasi säilytetään toistaiseksi.",
        "retention_hold_reason": "Syy: {reason}",
        "retention_open": "Sinulla on {n} maksamatonta laskua. Laskutustiedot säilytetään, "
        "kunnes ne on maksettu, oikeusvaateiden vuoksi (17 artiklan 3 kohdan e alakohta).",
        "retention_collection": "{n} laskua on perinnässä; niiden tiedot säilytetään perinnän "
        "ajan (17 artiklan 3 kohdan e alakohta).",
        "retention_accounting": "Laskujesi tiedot säilytetään kirjanpitolain (1336/1997, 2:10) "
        "mukaan {until} asti (17 artiklan 3 kohdan b alakohta).",
        "retention_status": "Tilanteesi nyt: {text}",
        "rights": "Sinulla on oikeus pyytää virheellisten tietojesi oikaisemista "
        "(16 artikla), tietojesi poistamista (17 artikla) ja käsittelyn rajoittamista "
        "(18 artikla) sekä vastustaa tietojesi käsittelyä (21 artikla), myös "
        "suoramarkkinointia. Voit myös saada tietosi koneluettavassa muodossa (20 artikla) ja "
        "peruuttaa antamasi suostumuksen milloin tahansa (7 artiklan 3 kohta).",
        "rights_how": "Pyynnöt voi tehdä kirjallisesti tai henkilökohtaisesti: {contact}.",
        "rights_now": "Tilanne rekisterissä nyt: {items}.",
        "complaint": "Jos katsot, että henkilötietojesi käsittely rikkoo tietosuoja-asetusta, "
        "sinulla on oikeus tehdä valitus valvontaviranomaiselle (77 artikla). Suomessa "
        "valvontaviranomainen on tietosuojavaltuutettu (Tietosuojavaltuutetun toimisto), "
        "www.tietosuoja.fi.",
        "source_general": "{text}",
        "source_clients": "Asiakastiedot: sinulta itseltäsi asiakkuuden alkaessa ja sen aikana.",
        "source_invoices": "Laskut: rekisterinpitäjän laatimat palveluistasi.",
        "source_requests": "Pyynnöt: kirjattu tekemistäsi pyynnöistä.",
        "source_disclosures": "Luovutukset: rekisterinpitäjän kirjaamat.",
    },
    "en": {
        "title": "Access extract",
        "subtitle": "Your personal data in the client register (EU General Data Protection "
        "Regulation, Articles 15 and 20)",
        "info_sheet": "Processing information",
        "info_heading": "Information about the processing of your personal data",
        "copy_heading": "A copy of your data",
        "copy_note": "Below is all the data the register holds on you: from each sheet, only "
        "the rows about you.",
        "article": "Art. 15(1)({point})",
        "controller": "Controller",
        "controller_address": "Address",
        "contact_person": "Contact person",
        "register_name": "Register",
        "client_id": "Client ID",
        "made_on": "Date of the extract",
        "request": "Request",
        "point": "Point",
        "topic": "Topic",
        "content": "Information",
        "field": "Field",
        "value": "Value",
        "no_rows": "No rows.",
        "rows": "{n} rows",
        "row": "1 row",
        "footer": "Extract made on {date} with sheetreg. The JSON file holds the same data in a "
        "machine-readable format (Art. 20).",
        "purposes_basis": "Legal basis: {basis}",
        "categories_held": "The register holds on you: {what}.",
        "categories_general": "Categories of data in the privacy notice: {text}",
        "recipients_none": "Your data have not been disclosed to anyone.",
        "recipients_disclosed": "Your data have been disclosed to:",
        "recipient_row": "{date}: {recipient} ({basis}); data: {data}",
        "recipient_row_nodata": "{date}: {recipient} ({basis})",
        "partner": "Cooperation partner in a joint service: {partner}",
        "recipients_general": "Data may in future be disclosed to: {text}",
        "retention_general": "General retention rule: {text}",
        "retention_active": "Your client relationship is active (since {start}). Your contact "
        "data are kept while it lasts and erased after it ends.",
        "retention_ended": "Your client relationship ended on {end}. Your contact data are "
        "erased after the end, unless a reason below requires keeping them.",
        "retention_auto": " They will be erased on {date}.",
        "retention_ending": "Your client relationship ends on {end}. Your contact data are kept "
        "until then and erased after it, unless a reason below requires keeping them.",
        "retention_hold": "Your data are kept until {until}.",
        "retention_hold_open": "Your data are kept until further notice.",
        "retention_hold_reason": "Reason: {reason}",
        "retention_open": "You have {n} unpaid invoices. Their billing data are kept until they "
        "are paid, for legal claims (Art. 17(3)(e)).",
        "retention_collection": "{n} invoices are in debt collection; their data are kept while "
        "it lasts (Art. 17(3)(e)).",
        "retention_accounting": "Your invoices are kept until {until}, as the Accounting Act "
        "(1336/1997, 2:10) requires (Art. 17(3)(b)).",
        "retention_status": "Your status now: {text}",
        "rights": "You have the right to have inaccurate data rectified (Art. 16), to have your "
        "data erased (Art. 17), to have their processing restricted (Art. 18) and to object to "
        "their processing (Art. 21), direct marketing included. You can also receive your data "
        "in a machine-readable format (Art. 20) and withdraw a consent at any time "
        "(Art. 7(3)).",
        "rights_how": "Requests can be made in writing or in person: {contact}.",
        "rights_now": "What the register says now: {items}.",
        "complaint": "If you consider that the processing of your personal data infringes the "
        "GDPR, you have the right to lodge a complaint with a supervisory authority (Art. 77). "
        "In Finland this is the Data Protection Ombudsman (tietosuojavaltuutettu, Office of the "
        "Data Protection Ombudsman), www.tietosuoja.fi.",
        "source_general": "{text}",
        "source_clients": "Client data: from you, when the relationship began and during it.",
        "source_invoices": "Invoices: made by the controller for your services.",
        "source_requests": "Requests: recorded from the requests you made.",
        "source_disclosures": "Disclosures: recorded by the controller.",
    },
}

_HOLD_KINDS = {
    "open-invoice": ("Avoin lasku", "Open invoice"),
    "debt-collection": ("Perintä", "Debt collection"),
    "manual-hold": ("Säilytys", "Hold"),
    "accounting-retention": ("Kirjanpitolaki", "Accounting Act"),
}


class ClientNotFound(SheetregError):
    """No sheet of the register has a row with this client ID (exit 2)."""

    exit_code = 2


class AmbiguousClient(SheetregError):
    """The client ID is on the Clients sheet more than once: refuse to mix two people (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class InfoItem:
    """One Art. 15(1) item made specific to the person: title, paragraphs, structured data."""

    key: str
    point: str  # "a".."h"
    article: str  # "Art. 15(1)(a)" in the extract's language
    title: str
    paragraphs: tuple[str, ...]
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "article": f"15(1)({self.point})",
            "label": self.article,
            "title": self.title,
            "text": list(self.paragraphs),
            **({"details": self.data} if self.data else {}),
        }


@dataclass(frozen=True)
class SheetCopy:
    """This client's rows of one source sheet: column keys, headers and typed values."""

    key: str  # schema sheet key
    title: str  # the sheet's name in the extract's language
    keys: tuple[str, ...]  # schema column key, or the header text of a column sheetreg ignores
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]  # str, int, float, bool, date or None


@dataclass(frozen=True)
class Extract:
    """Everything the extract says, in one language; written by :func:`write_extract`."""

    client_id: str
    made_on: dt.date
    lang: str
    header: tuple[tuple[str, str, str], ...]  # (key, label, value): controller, date, request
    items: tuple[InfoItem, ...]
    sheets: tuple[SheetCopy, ...]
    request_ids: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The folder and file stem: client ID and date, never a name."""
        return extract_name(self.client_id, self.made_on)

    def item(self, key: str) -> InfoItem:
        """The Art. 15 item with ``key``."""
        return next(item for item in self.items if item.key == key)

    def to_dict(self) -> dict[str, Any]:
        """The JSON (portability) form: stable keys, ISO dates, values as typed."""
        words = _WORDS[self.lang]
        return {
            "format": EXTRACT_FORMAT,
            "language": self.lang,
            "client_id": self.client_id,
            "made_on": self.made_on.isoformat(),
            "requests": list(self.request_ids),
            "title": words["title"],
            "header": {key: {"label": label, "value": value} for key, label, value in self.header},
            "information": {item.key: item.to_dict() for item in self.items},
            "data": {
                sheet.key: {
                    "sheet": sheet.title,
                    "columns": dict(zip(sheet.keys, sheet.headers, strict=True)),
                    "rows": [
                        {k: _json_value(v) for k, v in zip(sheet.keys, row, strict=True)}
                        for row in sheet.rows
                    ],
                }
                for sheet in self.sheets
            },
        }


@dataclass(frozen=True)
class ExtractFiles:
    """Where an extract was written; ``html`` and ``json`` are None when not written.

    ``password`` is the one the .xlsx is encrypted with (None: not encrypted). It is for the
    therapist's eyes once: never in ``repr`` or :meth:`to_dict`, never logged or stored.
    """

    folder: Path
    xlsx: Path
    html: Path | None = None
    json: Path | None = None
    password: str | None = field(default=None, repr=False, compare=False)

    @property
    def encrypted(self) -> bool:
        """True when the .xlsx is password-protected (and no HTML or JSON was written)."""
        return self.password is not None

    @property
    def paths(self) -> tuple[Path, ...]:
        """The files written, .xlsx first."""
        return tuple(p for p in (self.xlsx, self.html, self.json) if p is not None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (paths as text, None for a format not written); no password."""
        return {
            "folder": str(self.folder),
            "xlsx": str(self.xlsx),
            "html": str(self.html) if self.html else None,
            "json": str(self.json) if self.json else None,
            "encrypted": self.encrypted,
        }


# --- names and places ------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^0-9A-Za-z._-]+")


def extract_name(client_id: str, made_on: dt.date) -> str:
    """``<client-id>-<YYYY-MM-DD>``, with characters unsafe in file names replaced by ``_``."""
    safe = _UNSAFE.sub("_", client_id.strip()).strip("._") or "client"
    return f"{safe}-{made_on.isoformat()}"


def default_extracts_dir(workbook: Path) -> Path:
    """Where extracts go unless configured: ``extracts/`` beside the workbook."""
    return workbook.parent / EXTRACTS_DIR


# --- building (pure) -------------------------------------------------------------------------


def _id(raw: Any) -> str:
    return values.as_text(raw) or ""


def client_rows(table: Table | None, client_id: str) -> list[int]:
    """Data row indices of ``table`` whose Client ID is exactly ``client_id`` (trimmed)."""
    if table is None or not table.has("client_id"):
        return []
    idx = table.columns["client_id"]
    found = []
    # One pass over the rows, no transposing: a 20,000-client register has 60,000 of them.
    for i, row in enumerate(table.rows):
        raw = row[idx] if idx < len(row) else ""
        if raw.__class__ is str:
            if raw == client_id or (raw and raw.strip() == client_id):
                found.append(i)
        elif _id(raw) == client_id:
            found.append(i)
    return found


def build_extract(
    register: Register,
    client_id: str,
    today: dt.date,
    lang: str | None = None,
    *,
    request_ids: Sequence[str] = (),
) -> Extract:
    """The access extract of ``client_id`` as of ``today``, in ``lang`` (default: workbook's).

    Raises :class:`ClientNotFound` when no sheet has the ID and :class:`AmbiguousClient` when
    the Clients sheet has it more than once.
    """
    lang = lang or register.lang
    client_id = client_id.strip()
    rows = {
        spec.key: client_rows(register.table(spec.key), client_id)
        for spec in DATA_SHEETS
        if register.table(spec.key) is not None
    }
    name = register.path.name
    if not any(rows.values()):
        raise ClientNotFound(
            f"{name}: no row has client ID {client_id}. / Asiakasnumeroa ei löydy rekisteristä."
        )
    if len(rows.get("clients", [])) > 1:
        clients = register.table("clients")
        assert clients is not None
        cells = ", ".join(clients.ref(i, "client_id") for i in rows["clients"])
        raise AmbiguousClient(
            f"{name}, {clients.name}: client ID {client_id} is on more than one row ({cells}); "
            "no extract was made, to keep two people's data apart. / Asiakasnumero on usealla "
            "rivillä; otetta ei tehty."
        )
    sheets = tuple(
        _sheet_copy(table, rows[key], lang)
        for key in rows
        if (table := register.table(key)) is not None
    )
    words = _WORDS[lang]
    header = tuple(
        (key, words[key], _setting(register, key, lang))
        for key in ("controller", "controller_address", "contact_person", "register_name")
    )
    header += (
        ("client_id", words["client_id"], client_id),
        ("made_on", words["made_on"], _date_text(today, lang)),
    )
    if request_ids:
        header += (("requests", words["request"], ", ".join(request_ids)),)
    items = _art15_items(register, client_id, rows, sheets, today=today, lang=lang)
    return Extract(client_id, today, lang, header, items, sheets, tuple(request_ids))


def _date_text(day: dt.date, lang: str) -> str:
    return f"{day.day}.{day.month}.{day.year}" if lang == "fi" else day.isoformat()


def _setting(register: Register, key: str, lang: str) -> str:
    """A Settings value in ``lang``: the workbook's text, or the notice's default.

    A value that is the notice's default in the other language is given in ``lang``; a value
    the therapist wrote herself is given as written.
    """
    spec: Setting = next(s for s in SETTINGS_ROWS if s.key == key)
    value = register.settings.get(key)
    if not value:
        return spec.default(lang)
    other = "en" if lang == "fi" else "fi"
    if " ".join(value.split()) == " ".join(spec.default(other).split()):
        return spec.default(lang)
    return value


def _cell_value(raw: Any, column: Column | None, lang: str) -> Any:
    """A cell as the extract shows it: dates as dates, choices in ``lang``, numbers as numbers."""
    if values.is_empty(raw):
        return None
    if column is not None:
        try:
            if column.kind is Kind.DATE:
                return values.as_date(raw)
            if column.kind is Kind.MONEY:
                return values.as_money(raw)
            if column.choices:
                choice = values.as_choice(raw, column.choices)
                return choice.label(lang) if choice else None
        except ValueError:
            pass  # shown as written: the person sees what the register holds
        if column.kind in (Kind.ID, Kind.PHONE, Kind.POSTAL, Kind.TEXT, Kind.EMAIL):
            return values.as_text(raw)
    if isinstance(raw, dt.datetime):
        return raw.date() if raw.time() == dt.time() else raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        return raw.strip()
    return raw


def _sheet_copy(table: Table, indices: Sequence[int], lang: str) -> SheetCopy:
    """``table``'s header and the rows at ``indices``, every column kept, values typed."""
    by_index = {idx: table.spec.column(key) for key, idx in table.columns.items()}
    width = max([len(table.header), *(len(table.rows[i]) for i in indices)])
    keys: list[str] = []
    headers: list[str] = []
    picked: list[int] = []
    for idx in range(width):
        column = by_index.get(idx)
        raw_header = table.header[idx] if idx < len(table.header) else ""
        header_text = values.as_text(raw_header) or ""
        has_value = any(
            idx < len(table.rows[i]) and not values.is_empty(table.rows[i][idx]) for i in indices
        )
        if column is None and not header_text and not has_value:
            continue
        if column is not None:
            keys.append(column.key)
            headers.append(column.label(lang))
        else:
            label = header_text or table.letter_at(idx)
            keys.append(label)
            headers.append(label)
        picked.append(idx)
    rows = tuple(
        tuple(
            _cell_value(
                table.rows[i][idx] if idx < len(table.rows[i]) else "", by_index.get(idx), lang
            )
            for idx in picked
        )
        for i in indices
    )
    return SheetCopy(table.spec.key, table.spec.label(lang), tuple(keys), tuple(headers), rows)


def _art15_items(
    register: Register,
    client_id: str,
    rows: dict[str, list[int]],
    sheets: tuple[SheetCopy, ...],
    *,
    today: dt.date,
    lang: str,
) -> tuple[InfoItem, ...]:
    words = _WORDS[lang]
    paragraphs: dict[str, list[str]] = {}
    details: dict[str, dict[str, Any]] = {}

    paragraphs["purposes"] = [
        _setting(register, "purposes", lang),
        words["purposes_basis"].format(basis=_setting(register, "legal_basis", lang)),
    ]

    held = []
    for sheet in sheets:
        filled = [
            header
            for col, header in enumerate(sheet.headers)
            if any(row[col] is not None for row in sheet.rows)
        ]
        if sheet.rows:
            count = (
                words["row"] if len(sheet.rows) == 1 else words["rows"].format(n=len(sheet.rows))
            )
            held.append(f"{sheet.title} ({count}): {', '.join(filled)}")
    paragraphs["categories"] = [
        words["categories_held"].format(what="; ".join(held)),
        words["categories_general"].format(text=_setting(register, "categories", lang)),
    ]
    details["categories"] = {
        sheet.key: [
            key
            for col, key in enumerate(sheet.keys)
            if any(row[col] is not None for row in sheet.rows)
        ]
        for sheet in sheets
        if sheet.rows
    }

    paragraphs["recipients"], details["recipients"] = _recipients(register, rows, lang)
    paragraphs["retention"], details["retention"] = _retention(
        register, client_id, rows, today, lang
    )
    paragraphs["rights"] = _rights(register, rows, lang)
    paragraphs["complaint"] = [words["complaint"]]
    details["complaint"] = {
        "authority": "Tietosuojavaltuutettu / Data Protection Ombudsman",
        "country": "FI",
        "website": "https://tietosuoja.fi",
    }
    paragraphs["source"] = [words["source_general"].format(text=_setting(register, "source", lang))]
    paragraphs["source"] += [words[f"source_{key}"] for key in rows if rows[key]]
    paragraphs["automated_decisions"] = [_setting(register, "automated_decisions", lang)]
    details["automated_decisions"] = {"automated_decision_making": False}

    return tuple(
        InfoItem(
            key,
            point,
            words["article"].format(point=point),
            title_fi if lang == "fi" else title_en,
            tuple(p for p in paragraphs[key] if p),
            details.get(key, {}),
        )
        for key, point, title_fi, title_en in ART15_ITEMS
    )


def _recipients(
    register: Register, rows: dict[str, list[int]], lang: str
) -> tuple[list[str], dict[str, Any]]:
    """The recipients that actually received this client's data: Disclosures and Partner."""
    words = _WORDS[lang]
    lines: list[str] = []
    disclosed: list[dict[str, Any]] = []
    table = register.table("disclosures")
    if table is not None:
        for i in rows.get("disclosures", []):
            day = table.date(i, "date")
            try:
                basis = values.as_choice(table.get(i, "basis"), DISCLOSURE_BASES)
            except ValueError:
                basis = None
            entry = {
                "date": day.isoformat() if day else table.text(i, "date"),
                "recipient": table.text(i, "recipient") or "",
                "basis": basis.key if basis else table.text(i, "basis"),
                "basis_label": basis.label(lang) if basis else table.text(i, "basis"),
                "data_categories": table.text(i, "data_categories"),
            }
            disclosed.append(entry)
            template = "recipient_row" if entry["data_categories"] else "recipient_row_nodata"
            lines.append(
                words[template].format(
                    date=_date_text(day, lang) if day else (entry["date"] or "–"),
                    recipient=entry["recipient"] or "–",
                    basis=entry["basis_label"] or "–",
                    data=entry["data_categories"],
                )
            )
    partners: list[str] = []
    clients = register.table("clients")
    if clients is not None:
        for i in rows.get("clients", []):
            partner = clients.text(i, "partner")
            if partner:
                partners.append(partner)
                lines.append(words["partner"].format(partner=partner))
    intro = [words["recipients_disclosed"]] if lines else [words["recipients_none"]]
    general = words["recipients_general"].format(text=_setting(register, "recipients", lang))
    return [*intro, *lines, general], {"disclosures": disclosed, "partners": partners}


@dataclass
class _Retention:
    """What keeps this client's data now, from the client's status or from Settings."""

    source: str  # "retention" (the client's status, retention.py) or "settings" (derived here)
    state: str | None = None  # "active", "ending" or "ended"
    start: dt.date | None = None
    end: dt.date | None = None
    erasure_on: dt.date | None = None  # automatic erasure day, when the policy is automatic
    status_text: str | None = None  # the Privacy status in plain words (retention.py)
    held: bool = False  # a manual hold (Hold until / Hold reason) applies now
    hold_until: dt.date | None = None  # None with ``held``: until further notice
    hold_reason: str | None = None
    open_invoices: int = 0
    in_debt_collection: int = 0
    invoices_kept_until: dt.date | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            out[key] = value.isoformat() if isinstance(value, dt.date) else value
        return out


def _financial_year_end(register: Register, day: dt.date) -> dt.date:
    """The end of the financial year that ``day`` belongs to (Settings, default 31.12.)."""
    text = register.settings.get("financial_year_end", "31.12.")
    m = re.fullmatch(r"\s*(\d{1,2})\s*\.\s*(\d{1,2})\s*\.?\s*", text)
    dd, mm = (int(m[1]), int(m[2])) if m else (31, 12)
    try:
        end = dt.date(day.year, mm, dd)
    except ValueError:
        end = dt.date(day.year, 12, 31)
    return end if day <= end else end.replace(year=end.year + 1)


def _retention(
    register: Register, client_id: str, rows: dict[str, list[int]], today: dt.date, lang: str
) -> tuple[list[str], dict[str, Any]]:
    """The retention that applies to this client now, in words, then the general rule."""
    found = _retention_from_statuses(register, client_id, rows, today, lang)
    if found is None:
        found = _retention_from_settings(register, rows, today)
    clients = register.table("clients")
    if clients is not None and rows.get("clients"):
        found.start = clients.date(rows["clients"][0], "start")
    words = _WORDS[lang]
    lines: list[str] = []
    if found.status_text:
        lines.append(words["retention_status"].format(text=found.status_text))
    if found.state == "active":
        lines.append(words["retention_active"].format(start=_fmt(found.start, lang)))
    elif found.state == "ending" and found.end is not None:
        lines.append(words["retention_ending"].format(end=_date_text(found.end, lang)))
    elif found.state == "ended" and found.end is not None:
        text = words["retention_ended"].format(end=_date_text(found.end, lang))
        if found.erasure_on is not None and found.erasure_on > today:
            text += words["retention_auto"].format(date=_date_text(found.erasure_on, lang))
        lines.append(text)
    if found.held:
        key = "retention_hold" if found.hold_until else "retention_hold_open"
        until = _date_text(found.hold_until, lang) if found.hold_until else ""
        text = words[key].format(until=until)
        if found.hold_reason:
            text += " " + words["retention_hold_reason"].format(reason=found.hold_reason)
        lines.append(text)
    if found.open_invoices:
        lines.append(words["retention_open"].format(n=found.open_invoices))
    if found.in_debt_collection:
        lines.append(words["retention_collection"].format(n=found.in_debt_collection))
    if found.invoices_kept_until is not None:
        until = _date_text(found.invoices_kept_until, lang)
        lines.append(words["retention_accounting"].format(until=until))
    lines.append(words["retention_general"].format(text=_setting(register, "retention", lang)))
    return lines, found.to_dict()


def _retention_from_settings(
    register: Register, rows: dict[str, list[int]], today: dt.date
) -> _Retention:
    """The retention derived from the register and Settings alone (a client with no status)."""
    found = _Retention("settings")
    clients = register.table("clients")
    if clients is not None and rows.get("clients"):
        i = rows["clients"][0]
        end = clients.date(i, "end")
        found.end = end
        found.state = "active" if end is None else "ending" if today <= end else "ended"
        policy = register.settings.get("erasure_policy", "").strip().casefold()
        days = register.settings.get("erasure_after_days", "").strip()
        if end is not None and policy.startswith("auto") and days.isdigit():
            found.erasure_on = end + dt.timedelta(days=int(days))
        until = clients.date(i, "hold_until")
        reason = clients.text(i, "hold_reason")
        if (until is not None and until >= today) or (until is None and reason):
            found.held, found.hold_until, found.hold_reason = True, until, reason
    invoices = register.table("invoices")
    indices = rows.get("invoices", []) if invoices is not None else []
    if invoices is not None and indices:
        unpaid = [i for i in indices if invoices.date(i, "paid_on") is None]
        found.in_debt_collection = sum(1 for i in unpaid if invoices.yes(i, "debt_collection"))
        found.open_invoices = len(unpaid) - found.in_debt_collection
        dates = [d for i in indices if (d := invoices.date(i, "invoice_date")) is not None]
        if dates:
            until = dt.date(_financial_year_end(register, max(dates)).year + 6, 12, 31)
            found.invoices_kept_until = until if until >= today else None
    return found


def _fmt(day: dt.date | None, lang: str) -> str:
    return _date_text(day, lang) if day else "–"


def _narrowed(register: Register, rows: dict[str, list[int]]) -> Register:
    """``register`` with only this client's rows in its data sheets (same headers, settings).

    retention.py computes every client's status at once; one client's extract needs
    one, and on a 20,000-client register the narrowed register answers 30 times faster.
    Row numbers in the result do not match the workbook; only the status is used.
    """
    tables = dict(register.tables)
    for key, indices in rows.items():
        table = tables.get(key)
        if table is not None:
            tables[key] = dataclasses.replace(
                table,
                rows=[table.rows[i] for i in indices],
                _by_column=None,
                _nonblank=None,
                _distinct={},
            )
    return dataclasses.replace(register, tables=tables)


def _retention_from_statuses(
    register: Register, client_id: str, rows: dict[str, list[int]], today: dt.date, lang: str
) -> _Retention | None:
    """The client's status and holds (retention.py); None when the client has none."""
    from sheetreg.retention import client_statuses, status_text

    status = client_statuses(_narrowed(register, rows), today).get(client_id)
    if status is None:
        return None
    found = _Retention("retention", status.state, end=status.end)
    found.status_text = status_text(status, lang)
    if status.automatic:
        found.erasure_on = status.erasure_due
    kept: list[dt.date] = []
    for hold in status.holds:
        count = len([n for n in (hold.reason or "").split(",") if n.strip()]) or 1
        if hold.kind == "manual-hold":
            found.held, found.hold_until = True, hold.until
            found.hold_reason = hold.reason or None
        elif hold.kind == "open-invoice":
            found.open_invoices += count
        elif hold.kind == "debt-collection":
            found.in_debt_collection += count
        elif hold.kind == "accounting-retention" and hold.until is not None:
            kept.append(hold.until)
    found.invoices_kept_until = max(kept, default=None)
    return found


def _rights(register: Register, rows: dict[str, list[int]], lang: str) -> list[str]:
    words = _WORDS[lang]
    lines = [
        words["rights"],
        words["rights_how"].format(contact=_setting(register, "contact_person", lang)),
    ]
    clients = register.table("clients")
    if clients is not None and rows.get("clients"):
        i = rows["clients"][0]
        now = []
        for key in ("survey_consent", "marketing_objection"):
            if not clients.has(key):
                continue
            column = clients.spec.column(key)
            try:
                choice = values.as_choice(clients.get(i, key), YES_NO)
            except ValueError:
                choice = None
            if choice is not None:
                now.append(f"{column.label(lang)}: {choice.label(lang)}")
        if now:
            lines.append(words["rights_now"].format(items="; ".join(now)))
    return lines


# --- writing -------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _display(value: Any, lang: str) -> str:
    """A value as text for the HTML page."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return _date_text(value, lang)
    if isinstance(value, bool):
        return YES_NO[0].label(lang) if value else YES_NO[1].label(lang)
    if isinstance(value, float):
        text = f"{value:.2f}"
        return text.replace(".", ",") if lang == "fi" else text
    return str(value)


def write_extract(extract: Extract, out_dir: Path, *, password: str | None = None) -> ExtractFiles:
    """Write ``extract`` as xlsx, HTML and JSON into ``out_dir/<client-id>-<date>/``.

    Each file is written to a temporary name and renamed into place, so a file that exists is
    whole; an extract remade on the same day replaces the earlier one's files. With
    ``password`` only the .xlsx is written, encrypted (the plain package never reaches the
    disk), and an HTML or JSON file left by an earlier plain extract of the day is removed.
    """
    folder = out_dir / extract.name
    folder.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        # Health data: only the owner may read the extract (the umask may be laxer).
        out_dir.chmod(out_dir.stat().st_mode | 0o700)
        folder.chmod(0o700)
    xlsx, page, portable = (folder / f"{extract.name}.{ext}" for ext in ("xlsx", "html", "json"))
    if password is not None:
        _atomic_write(xlsx, crypto.encrypt(xlsx_bytes(extract), password, source=xlsx.name))
        page.unlink(missing_ok=True)
        portable.unlink(missing_ok=True)
        return ExtractFiles(folder, xlsx, password=password)
    _atomic_write(xlsx, xlsx_bytes(extract))
    _atomic_write(page, render_html(extract).encode("utf-8"))
    payload = json.dumps(extract.to_dict(), ensure_ascii=False, indent=2)
    _atomic_write(portable, (payload + "\n").encode("utf-8"))
    return ExtractFiles(folder, xlsx, page, portable)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)  # mkstemp made it 0600, and replace keeps that
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def xlsx_bytes(extract: Extract) -> bytes:
    """The extract as an .xlsx workbook; every text is written as text, never as a formula."""
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    words = _WORDS[extract.lang]
    date_format = "d.m.yyyy" if extract.lang == "fi" else "yyyy-mm-dd"
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    wb.set_properties({"title": f"{words['title']} {extract.client_id}", "author": "sheetreg"})
    bold = wb.add_format({"bold": True, "valign": "top", "text_wrap": True})
    title = wb.add_format({"bold": True, "font_size": 14})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    header = wb.add_format(
        {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True, "valign": "top"}
    )
    dates = wb.add_format({"num_format": date_format, "valign": "top", "align": "left"})
    money = wb.add_format({"num_format": "#,##0.00", "valign": "top"})
    top = wb.add_format({"valign": "top"})

    ws = wb.add_worksheet(words["info_sheet"][:31])
    ws.set_column(0, 0, 18)
    ws.set_column(1, 1, 34)
    ws.set_column(2, 2, 100)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.write_string(0, 0, f"{words['title']}: {extract.client_id}", title)
    ws.write_string(1, 0, words["subtitle"])
    row = 3
    for _key, label, value in extract.header:
        ws.write_string(row, 0, label, bold)
        ws.write_string(row, 1, value, wrap)
        row += 1
    row += 1
    ws.write_string(row, 0, words["info_heading"], title)
    row += 1
    for col, label in enumerate((words["point"], words["topic"], words["content"])):
        ws.write_string(row, col, label, header)
    ws.repeat_rows(row)
    row += 1
    for item in extract.items:
        ws.write_string(row, 0, item.article, bold)
        ws.write_string(row, 1, item.title, bold)
        ws.write_string(row, 2, "\n".join(item.paragraphs), wrap)
        # Neither Excel nor LibreOffice grows a row to its wrapped text on opening a new file.
        lines = max(_wrapped_lines([item.title], 32), _wrapped_lines(item.paragraphs, 112))
        ws.set_row(row, 14.5 * lines + 3)
        row += 1
    row += 1
    ws.write_string(row, 0, words["footer"].format(date=_date_text(extract.made_on, extract.lang)))

    formats = {"date": dates, "money": money, "top": top, "header": header, "bold": bold}
    for sheet in extract.sheets:
        ws = wb.add_worksheet(sheet.title[:31])
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        if sheet.key == "clients":
            _write_record_sheet(ws, sheet, formats, words)
            continue
        ws.set_landscape()
        ws.repeat_rows(0)
        for col, text in enumerate(sheet.headers):
            ws.write_string(0, col, text, header)
            longest = max([len(text), *(len(_display(r[col], extract.lang)) for r in sheet.rows)])
            ws.set_column(col, col, max(10, min(40, longest + 2)))
        for r, values_row in enumerate(sheet.rows, start=1):
            for col, value in enumerate(values_row):
                _write_value(ws, r, col, value, formats)
        ws.freeze_panes(1, 0)
        if sheet.headers:
            ws.autofilter(0, 0, max(len(sheet.rows), 1), len(sheet.headers) - 1)
    wb.close()
    return buffer.getvalue()


def _wrapped_lines(paragraphs: Iterable[str], width: int) -> int:
    """About how many lines ``paragraphs`` take in a wrapped cell ``width`` characters wide."""
    return sum(max(1, -(-len(p) // width)) for p in paragraphs)


def _write_record_sheet(
    ws: Any, sheet: SheetCopy, formats: dict[str, Any], words: dict[str, str]
) -> None:
    """The client's own row as field / value pairs: one record reads best that way."""
    ws.set_column(0, 0, 30)
    ws.set_column(1, 1, 50)
    ws.write_string(0, 0, words["field"], formats["header"])
    ws.write_string(0, 1, words["value"], formats["header"])
    for r, text in enumerate(sheet.headers, start=1):
        ws.write_string(r, 0, text, formats["bold"])
        if sheet.rows:
            _write_value(ws, r, 1, sheet.rows[0][r - 1], formats)
    ws.freeze_panes(1, 0)


def _write_value(ws: Any, row: int, col: int, value: Any, formats: dict[str, Any]) -> None:
    if value is None:
        return
    if isinstance(value, dt.datetime):
        ws.write_datetime(row, col, value, formats["date"])
    elif isinstance(value, dt.date):
        ws.write_datetime(row, col, dt.datetime.combine(value, dt.time()), formats["date"])
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value, formats["top"])
    elif isinstance(value, float):
        ws.write_number(row, col, value, formats["money"])
    elif isinstance(value, int):
        ws.write_number(row, col, value, formats["top"])
    else:
        ws.write_string(row, col, str(value), formats["top"])


_CSS = """
:root { color-scheme: light; }
body { font-family: "Segoe UI", "Helvetica Neue", Arial, sans-serif; font-size: 11pt;
  line-height: 1.45; color: #111; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; border-bottom: 2px solid #333; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
.subtitle { margin: 0 0 1rem; color: #333; }
.art { display: inline-block; min-width: 9rem; color: #444; font-weight: normal; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: 10pt; }
th, td { border: 1px solid #999; padding: .25rem .4rem; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
td.num { text-align: right; white-space: nowrap; }
footer { margin-top: 2rem; font-size: 9pt; color: #444; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  @page { size: A4; margin: 15mm; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  section.item, tr { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def render_html(extract: Extract) -> str:
    """The extract as one self-contained, print-friendly HTML page (no external resources)."""
    words = _WORDS[extract.lang]
    e = html.escape
    out: list[str] = [
        "<!DOCTYPE html>",
        f'<html lang="{extract.lang}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
        f"<title>{e(words['title'])} {e(extract.client_id)} – "
        f"{e(_date_text(extract.made_on, extract.lang))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{e(words['title'])}</h1>",
        f'<p class="subtitle">{e(words["subtitle"])}</p>',
        '<dl class="meta">',
    ]
    for _key, label, value in extract.header:
        out.append(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>")
    out += ["</dl>", "</header>", '<section id="art15">', f"<h2>{e(words['info_heading'])}</h2>"]
    for item in extract.items:
        out.append(f'<section class="item" id="{item.key}">')
        out.append(f'<h3><span class="art">{e(item.article)}</span> {e(item.title)}</h3>')
        out.extend(f"<p>{e(p)}</p>" for p in item.paragraphs)
        out.append("</section>")
    out += ["</section>", '<section id="data">', f"<h2>{e(words['copy_heading'])}</h2>"]
    out.append(f"<p>{e(words['copy_note'])}</p>")
    for sheet in extract.sheets:
        out.append(f'<section class="sheet" id="sheet-{sheet.key}">')
        out.append(f"<h3>{e(sheet.title)}</h3>")
        if not sheet.rows:
            out.append(f"<p>{e(words['no_rows'])}</p>")
        elif sheet.key == "clients" and len(sheet.rows) == 1:
            # The client's own row reads best as field / value pairs, and prints narrow.
            out.append(
                f"<table><thead><tr><th>{e(words['field'])}</th><th>{e(words['value'])}</th>"
                "</tr></thead><tbody>"
            )
            for head, value in zip(sheet.headers, sheet.rows[0], strict=True):
                out.append(
                    f'<tr><th scope="row">{e(head)}</th>'
                    f"<td>{e(_display(value, extract.lang))}</td></tr>"
                )
            out.append("</tbody></table>")
        else:
            out.append("<table><thead><tr>")
            out.extend(f'<th scope="col">{e(h)}</th>' for h in sheet.headers)
            out.append("</tr></thead><tbody>")
            for row in sheet.rows:
                cells = "".join(
                    f'<td class="num">{e(_display(v, extract.lang))}</td>'
                    if isinstance(v, int | float) and not isinstance(v, bool)
                    else f"<td>{e(_display(v, extract.lang))}</td>"
                    for v in row
                )
                out.append(f"<tr>{cells}</tr>")
            out.append("</tbody></table>")
        out.append("</section>")
    footer = words["footer"].format(date=_date_text(extract.made_on, extract.lang))
    out += ["</section>", f"<footer><p>{e(footer)}</p></footer>", "</body>", "</html>", ""]
    return "\n".join(out)


# --- one call ------------------------------------------------------------------------------


def make_extract(
    register: Register,
    client_id: str,
    *,
    today: dt.date,
    lang: str | None = None,
    out_dir: Path | None = None,
    request_ids: Iterable[str] = (),
    password: str | None = None,
    allow_plain: bool = False,
) -> ExtractFiles:
    """Build and write one client's extract; ``out_dir`` defaults to ``extracts/`` beside it.

    This is what `sheetreg extract`, `sheetreg requests --process` and the demo call.

    The extract of a password-protected register is protected too: only the .xlsx, encrypted
    with ``password``, or with a new one (:func:`sheetreg.crypto.new_password`) returned in
    the result's ``password`` for the therapist to pass on by another channel. ``password``
    protects a plain register's extract as well. ``allow_plain`` writes every format
    unencrypted, HTML and JSON included, whatever the register.
    """
    if allow_plain and password is not None:
        raise SheetregError(
            "an extract is either protected with a password or written plain, not both. / "
            "Ote joko salataan salasanalla tai kirjoitetaan salaamattomana, ei molempia."
        )
    extract = build_extract(register, client_id, today, lang, request_ids=tuple(request_ids))
    if password is None and register.encrypted and not allow_plain:
        password = crypto.new_password()
    return write_extract(extract, out_dir or default_extracts_dir(register.path), password=password)


# --- finding a client ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A client matching a search, for the terminal prompt only (never logged)."""

    client_id: str
    name: str
    city: str
    start: dt.date | None


def _fold(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def search_clients(register: Register, query: str, limit: int = 20) -> list[Candidate]:
    """Clients whose ID, name (either order) or e-mail contains every word of ``query``.

    Case and accents are ignored (``hameenlinna`` finds ``Hämeenlinna``); an exact client ID
    comes first.
    """
    clients = register.table("clients")
    words = _fold(query).split()
    if clients is None or not words:
        return []
    exact: list[Candidate] = []
    found: list[Candidate] = []
    for i in clients.nonblank_rows():
        cid = clients.text(i, "client_id") or ""
        first = clients.text(i, "first_name") or ""
        last = clients.text(i, "last_name") or ""
        haystack = _fold(f"{cid} {first} {last} {first} {clients.text(i, 'email') or ''}")
        if not all(word in haystack for word in words):
            continue
        candidate = Candidate(
            cid, f"{first} {last}".strip(), clients.text(i, "city") or "", clients.date(i, "start")
        )
        (exact if _fold(cid) == _fold(query) else found).append(candidate)
    return (exact + found)[:limit]
