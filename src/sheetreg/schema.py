"""The register's schema: sheets, columns, value types and their Finnish and English labels.

This module only describes; `register.py` reads against it and `validate.py` checks against it.
Headers and sheet names match in either language, ignoring case and surrounding white space.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

LANGS = ("fi", "en")


class Kind(enum.Enum):
    """How a column's cells are read and checked."""

    TEXT = "text"
    ID = "id"
    DATE = "date"
    YESNO = "yesno"
    CHOICE = "choice"
    MONEY = "money"
    PHONE = "phone"
    EMAIL = "email"
    POSTAL = "postal"


@dataclass(frozen=True)
class Choice:
    """One allowed value of a choice column, with its stable key and its labels."""

    key: str
    fi: str
    en: str

    def label(self, lang: str) -> str:
        """The label in ``lang`` ("fi" or "en")."""
        return self.fi if lang == "fi" else self.en


YES_NO = (Choice("yes", "Kyllä", "Yes"), Choice("no", "Ei", "No"))
BILLING_METHODS = (
    Choice("email", "Sähköposti", "Email"),
    Choice("paper", "Paperilasku", "Paper"),
    Choice("einvoice", "Verkkolasku", "E-invoice"),
)
REQUEST_TYPES = (
    Choice("access", "Tarkastus", "Access"),
    Choice("rectification", "Oikaisu", "Rectification"),
    Choice("erasure", "Poisto", "Erasure"),
    Choice("restriction", "Rajoitus", "Restriction"),
    Choice("objection", "Vastustus", "Objection"),
    Choice("consent-withdrawal", "Suostumuksen peruutus", "Consent withdrawal"),
    Choice("portability", "Siirto", "Portability"),
)
CHANNELS = (
    Choice("written", "Kirjallinen", "Written"),
    Choice("in-person", "Henkilökohtaisesti", "In person"),
    Choice("email", "Sähköposti", "Email"),
    Choice("phone", "Puhelin", "Phone"),
)
REQUEST_STATUSES = (
    Choice("open", "Avoin", "Open"),
    Choice("done", "Valmis", "Done"),
    Choice("refused", "Hylätty", "Refused"),
)
DISCLOSURE_BASES = (
    Choice("joint-service", "Yhteistyöpalvelu", "Joint service"),
    Choice("debt-collection", "Perintä", "Debt collection"),
    Choice("billing", "Laskutus", "Billing"),
    Choice("credit-application", "Luottohakemus", "Credit application"),
    Choice("legal-obligation", "Lakisääteinen", "Legal obligation"),
)


@dataclass(frozen=True)
class Column:
    """One column of a register sheet."""

    key: str
    fi: str
    en: str
    kind: Kind = Kind.TEXT
    required: bool = False
    choices: tuple[Choice, ...] = ()
    written_by_sheetreg: bool = False
    width: int = 16

    def label(self, lang: str) -> str:
        """The header text in ``lang``."""
        return self.fi if lang == "fi" else self.en


@dataclass(frozen=True)
class Sheet:
    """One sheet of the register."""

    key: str
    fi: str
    en: str
    columns: tuple[Column, ...] = ()
    required: bool = True
    written_by_sheetreg: bool = False

    def label(self, lang: str) -> str:
        """The sheet name in ``lang``."""
        return self.fi if lang == "fi" else self.en

    def column(self, key: str) -> Column:
        """The column with schema key ``key``."""
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(key)


C = Column
CLIENTS = Sheet(
    "clients",
    "Asiakkaat",
    "Clients",
    (
        C("client_id", "Asiakasnumero", "Client ID", Kind.ID, required=True, width=14),
        C("first_name", "Etunimi", "First name", required=True),
        C("last_name", "Sukunimi", "Last name", required=True, width=18),
        C("phone", "Puhelin", "Phone", Kind.PHONE, width=16),
        C("email", "Sähköposti", "Email", Kind.EMAIL, width=28),
        C("street", "Katuosoite", "Street address", width=26),
        C("postal_code", "Postinumero", "Postal code", Kind.POSTAL, width=12),
        C("city", "Postitoimipaikka", "City", width=16),
        C(
            "billing_method",
            "Laskutustapa",
            "Billing method",
            Kind.CHOICE,
            choices=BILLING_METHODS,
            width=15,
        ),
        C("start", "Asiakkuus alkoi", "Relationship start", Kind.DATE, required=True, width=14),
        C("end", "Asiakkuus päättyi", "Relationship end", Kind.DATE, width=14),
        C("survey_consent", "Kyselylupa", "Survey consent", Kind.YESNO, choices=YES_NO, width=12),
        C(
            "marketing_objection",
            "Suoramarkkinointikielto",
            "Direct marketing objection",
            Kind.YESNO,
            choices=YES_NO,
            width=14,
        ),
        C("partner", "Yhteistyökumppani", "Partner", width=18),
        C("hold_until", "Säilytä asti", "Hold until", Kind.DATE, width=13),
        C("hold_reason", "Säilytyksen syy", "Hold reason", width=22),
        C(
            "approve_erasure",
            "Hyväksy poisto",
            "Approve erasure",
            Kind.YESNO,
            choices=YES_NO,
            width=12,
        ),
        C("notes", "Lisätiedot", "Notes", width=30),
        C(
            "privacy_status",
            "Tietosuojatila",
            "Privacy status",
            written_by_sheetreg=True,
            width=44,
        ),
    ),
)
INVOICES = Sheet(
    "invoices",
    "Laskut",
    "Invoices",
    (
        C("invoice_number", "Laskunumero", "Invoice number", Kind.ID, required=True, width=14),
        C("client_id", "Asiakasnumero", "Client ID", Kind.ID, required=True, width=14),
        C("invoice_date", "Laskun päiväys", "Invoice date", Kind.DATE, required=True, width=14),
        C("due_date", "Eräpäivä", "Due date", Kind.DATE, width=13),
        C("amount", "Summa (€)", "Amount (EUR)", Kind.MONEY, required=True, width=12),
        C("paid_on", "Maksettu", "Paid on", Kind.DATE, width=13),
        C(
            "debt_collection",
            "Perinnässä",
            "In debt collection",
            Kind.YESNO,
            choices=YES_NO,
            width=12,
        ),
    ),
)
REQUESTS = Sheet(
    "requests",
    "Pyynnöt",
    "Requests",
    (
        C("request_id", "Pyyntö", "Request ID", Kind.ID, required=True, width=10),
        C("received", "Vastaanotettu", "Received", Kind.DATE, required=True, width=14),
        C("client_id", "Asiakasnumero", "Client ID", Kind.ID, required=True, width=14),
        C("type", "Tyyppi", "Type", Kind.CHOICE, required=True, choices=REQUEST_TYPES, width=20),
        C("channel", "Kanava", "Channel", Kind.CHOICE, choices=CHANNELS, width=18),
        C(
            "identity_verified",
            "Henkilöllisyys varmistettu",
            "Identity verified",
            Kind.YESNO,
            choices=YES_NO,
            width=14,
        ),
        C("extended", "Jatkettu", "Extended", Kind.YESNO, choices=YES_NO, width=10),
        C("due", "Määräaika", "Due", Kind.DATE, written_by_sheetreg=True, width=13),
        C("status", "Tila", "Status", Kind.CHOICE, choices=REQUEST_STATUSES, width=11),
        C("completed_on", "Käsitelty", "Completed on", Kind.DATE, width=13),
        C("outcome", "Tulos", "Outcome", written_by_sheetreg=True, width=36),
    ),
)
DISCLOSURES = Sheet(
    "disclosures",
    "Luovutukset",
    "Disclosures",
    (
        C("date", "Päiväys", "Date", Kind.DATE, required=True, width=13),
        C("client_id", "Asiakasnumero", "Client ID", Kind.ID, required=True, width=14),
        C("recipient", "Vastaanottaja", "Recipient", required=True, width=26),
        C(
            "basis",
            "Peruste",
            "Basis",
            Kind.CHOICE,
            required=True,
            choices=DISCLOSURE_BASES,
            width=20,
        ),
        C("data_categories", "Tiedot", "Data categories", width=32),
    ),
)
ERASURE_LOG = Sheet(
    "erasure_log",
    "Poistoloki",
    "Erasure log",
    (
        C("log_id", "Lokitunnus", "Log ID", width=12),
        C("timestamp", "Aikaleima", "Timestamp", width=20),
        C("reference", "Pseudonyymi viite", "Pseudonymous reference", width=22),
        C("reason", "Syy", "Reason", width=14),
        C("fields_erased", "Poistetut kentät", "Fields erased", width=40),
        C("fields_kept", "Säilytetyt kentät", "Fields kept", width=40),
        C("recipients", "Ilmoitettavat vastaanottajat", "Recipients to notify", width=30),
        C("operator", "Suorittaja", "Operator", width=14),
        C("sha_before", "SHA-256 ennen", "SHA-256 before", width=20),
        C("sha_after", "SHA-256 jälkeen", "SHA-256 after", width=20),
        C("verification", "Varmennus", "Verification", width=30),
    ),
    required=False,
    written_by_sheetreg=True,
)
SETTINGS = Sheet(
    "settings",
    "Asetukset",
    "Settings",
    (
        C("setting", "Asetus", "Setting", width=34),
        C("value", "Arvo", "Value", width=90),
    ),
    required=False,
)
INSTRUCTIONS = Sheet("instructions", "Ohjeet", "Instructions", (), required=False)

SHEETS: tuple[Sheet, ...] = (
    CLIENTS,
    INVOICES,
    REQUESTS,
    DISCLOSURES,
    ERASURE_LOG,
    SETTINGS,
    INSTRUCTIONS,
)
DATA_SHEETS: tuple[Sheet, ...] = (CLIENTS, INVOICES, REQUESTS, DISCLOSURES)


@dataclass(frozen=True)
class Setting:
    """One row of the Settings sheet: a stable key, labels, and the default from the notice."""

    key: str
    fi: str
    en: str
    default_fi: str = ""
    default_en: str = ""

    def label(self, lang: str) -> str:
        """The setting's name in ``lang``."""
        return self.fi if lang == "fi" else self.en

    def default(self, lang: str) -> str:
        """The default value in ``lang``."""
        return self.default_fi if lang == "fi" else self.default_en


# Prefilled from the practice's privacy notice (../shared/seed/, updated 20.10.2020), fi and en.
SETTINGS_ROWS: tuple[Setting, ...] = (
    Setting("language", "Kieli", "Language", "fi", "en"),
    Setting(
        "controller",
        "Rekisterinpitäjä",
        "Controller",
        "Tähtihetki Terapiapalvelut",
        "Tähtihetki Terapiapalvelut",
    ),
    Setting(
        "controller_address",
        "Osoite",
        "Address",
        "Hämeenpuisto 27b 2c, 33210 Tampere",
        "Hämeenpuisto 27b 2c, 33210 Tampere, Finland",
    ),
    Setting(
        "contact_person",
        "Yhteyshenkilö",
        "Contact person",
        "Terapeutti Sanna Kallio, 050 3226357",
        "Therapist Sanna Kallio, +358 50 3226357",
    ),
    Setting(
        "register_name",
        "Rekisterin nimi",
        "Name of the register",
        "Asiakasrekisteri",
        "Client register",
    ),
    Setting(
        "purposes",
        "Käsittelyn tarkoitukset",
        "Purposes of processing",
        "Asiakassuhteen hoitaminen; palveluiden kehittäminen esimerkiksi kyselytutkimuksella; "
        "sopimus- ja muiden lupaustemme ja velvollisuuksiemme täyttäminen; palvelun "
        "ylläpidon tutkimus- ja tilastointitarkoitukset.",
        "Managing the client relationship; developing the services, for example by surveys; "
        "fulfilling contracts and our other promises and obligations; research and statistics "
        "for maintaining the service.",
    ),
    Setting(
        "legal_basis",
        "Käsittelyn oikeusperuste",
        "Legal basis",
        "Yrityksen oikeutettu etu: asiakassuhde ja/tai sopimuksen täytäntöönpano.",
        "The company's legitimate interest: the client relationship and/or performing the "
        "contract.",
    ),
    Setting(
        "categories",
        "Tietoryhmät",
        "Categories of data",
        "Nimi, puhelinnumero/sähköposti ja laskutusosoite; asiakkuutta ja sopimusta koskevat "
        "tiedot; asiointitiedot kuten sähköiset laskutustiedot ja sähköinen viestintä.",
        "Name, phone number/e-mail and billing address; data on the client relationship and "
        "contract; dealings such as electronic billing data and electronic communication.",
    ),
    Setting(
        "recipients",
        "Vastaanottajat",
        "Recipients",
        "Yhteistyökumppanit yhdessä tarjotuissa palveluissa; luottohakemukseen, perintään tai "
        "laskutukseen liittyvät tahot; viranomaiset lainsäädännön velvoittaessa.",
        "Cooperation partners in jointly offered services; parties involved in credit "
        "applications, debt collection or billing; authorities where the law requires.",
    ),
    Setting(
        "retention",
        "Säilytysaika",
        "Retention",
        "Yhteystiedot säilytetään vain palvelusuhteen ajan ja poistetaan sen päätyttyä. "
        "Laskutustiedot säilytetään kirjanpitolain (1336/1997, 2:10) mukaan kuusi vuotta "
        "sen vuoden lopusta, jona tilikausi päättyi.",
        "Contact data are kept only while the client relationship lasts and are erased after "
        "it ends. Billing data are kept for six years from the end of the year in which the "
        "financial year ended, as the Accounting Act (1336/1997, 2:10) requires.",
    ),
    Setting(
        "source",
        "Tietolähteet",
        "Source of the data",
        "Ensisijaisesti asiakkaalta itseltään.",
        "Primarily the client.",
    ),
    Setting(
        "automated_decisions",
        "Automaattinen päätöksenteko",
        "Automated decision-making",
        "Ei automaattista päätöksentekoa eikä profilointia.",
        "No automated decision-making or profiling.",
    ),
    Setting(
        "erasure_policy",
        "Poistokäytäntö (hyväksyntä / automaattinen)",
        "Erasure policy (approval / automatic)",
        "hyväksyntä",
        "approval",
    ),
    Setting(
        "erasure_after_days",
        "Automaattinen poisto, päivää päättymisestä",
        "Automatic erasure, days after the end",
        "30",
        "30",
    ),
    Setting(
        "financial_year_end", "Tilikauden päättymispäivä", "Financial year ends", "31.12.", "31.12."
    ),
    Setting("backup_count", "Varmuuskopioiden määrä", "Number of backups", "10", "10"),
)


def normalise_header(text: str) -> str:
    """Case- and white-space-insensitive form used to match headers and sheet names."""
    return " ".join(str(text).split()).casefold()


@dataclass(frozen=True)
class _Index:
    sheets: dict[str, Sheet] = field(default_factory=dict)
    columns: dict[str, dict[str, Column]] = field(default_factory=dict)
    choices: dict[tuple[Choice, ...], dict[str, Choice]] = field(default_factory=dict)


def _choice_index(choices: Iterable[Choice]) -> dict[str, Choice]:
    out: dict[str, Choice] = {}
    for ch in choices:
        out[normalise_header(ch.fi)] = ch
        out[normalise_header(ch.en)] = ch
    return out


def _build_index() -> _Index:
    idx = _Index()
    for sheet in SHEETS:
        idx.sheets[normalise_header(sheet.fi)] = sheet
        idx.sheets[normalise_header(sheet.en)] = sheet
        cols: dict[str, Column] = {}
        for col in sheet.columns:
            cols[normalise_header(col.fi)] = col
            cols[normalise_header(col.en)] = col
            if col.choices and col.choices not in idx.choices:
                idx.choices[col.choices] = _choice_index(col.choices)
        idx.columns[sheet.key] = cols
    return idx


_INDEX = _build_index()


def match_sheet(name: str) -> Sheet | None:
    """The schema sheet a workbook tab name stands for, in either language."""
    return _INDEX.sheets.get(normalise_header(name))


def match_column(sheet: Sheet, header: str) -> Column | None:
    """The schema column a header stands for, in either language."""
    return _INDEX.columns[sheet.key].get(normalise_header(header))


def match_choice(choices: tuple[Choice, ...], text: str) -> Choice | None:
    """The choice a cell's text stands for, in either language."""
    return _INDEX.choices[choices].get(normalise_header(text))


def sheet_by_key(key: str) -> Sheet:
    """The schema sheet with the stable key ``key``."""
    for sheet in SHEETS:
        if sheet.key == key:
            return sheet
    raise KeyError(key)


_SETTINGS_INDEX = {
    normalise_header(label): s for s in SETTINGS_ROWS for label in (s.fi, s.en, s.key)
}


def match_setting(label: str) -> Setting | None:
    """The setting a Settings-sheet row label stands for, in either language."""
    return _SETTINGS_INDEX.get(normalise_header(label))
