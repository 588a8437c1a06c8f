"""Synthetic demo registers: a realistic clean workbook, and one with known planted problems.

Everything is made up: names, addresses and phone numbers come from a seeded Faker("fi_FI"),
e-mail addresses use the reserved example.com/.net/.org domains, and the personal identity codes
planted for ``hetu-found`` use the individual numbers 900-999, which are never given to real
people. The same seed, ``today`` and library versions give the same workbook.

The demo workbook carries two or three instances of every validation finding code, each the only
problem in its cell, and :class:`DemoManifest` says where they are, as Excel cell references.
"""

from __future__ import annotations

import datetime
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from faker import Faker
from openpyxl.utils import coordinate_to_tuple, get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from sheetreg.schema import (
    BILLING_METHODS,
    CHANNELS,
    CLIENTS,
    DISCLOSURE_BASES,
    DISCLOSURES,
    INVOICES,
    LANGS,
    REQUEST_STATUSES,
    REQUEST_TYPES,
    REQUESTS,
    YES_NO,
    Choice,
    Sheet,
)
from sheetreg.template import build_template, number_format_for, workbook_bytes, write_new_file

# The validation finding codes the demo plants, each two or three times.
PLANTED_CODES: tuple[str, ...] = (
    "missing-value",
    "duplicate-client-id",
    "invalid-phone",
    "phone-stored-as-number",
    "invalid-email",
    "invalid-postal-code",
    "invalid-date",
    "end-before-start",
    "invalid-choice",
    "billing-address-incomplete",
    "unknown-client",
    "hetu-found",
    "duplicate-person",
    "invalid-amount",
    "future-date",
    "unknown-column",
)

HETU_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
MOBILE_PREFIXES = ("40", "41", "44", "45", "46", "50")
PRICES = (85.0, 90.0, 95.0, 110.0, 120.0, 135.0)
POOL_SIZE = 45  # plain clients set aside, each to carry one planted problem
MIN_CLIENTS = 80  # the pool, plus enough ordinary clients for requests and disclosures

Row = dict[str, Any]

_WORDS: dict[str, dict[str, Any]] = {
    "fi": {
        "notes": (
            "Toivoo tekstiviestimuistutuksen",
            "Toivoo aamupäiväaikoja",
            "Laskut mieluiten kuun alussa",
            "Ei puheluita työaikana",
            "Yhteydenotot sähköpostilla",
            "Käyttää pyörätuolia, esteetön sisäänkäynti",
        ),
        "hold_reasons": (
            "Avoin reklamaatio",
            "Laskuriita selvityksessä",
            "Asiakkaan pyyntö säilyttää",
        ),
        "data_categories": {
            "joint-service": "Nimi, puhelin, sähköposti",
            "debt-collection": "Nimi, osoite, avoimet laskut",
            "billing": "Nimi, osoite, laskut",
            "credit-application": "Nimi, osoite, laskutushistoria",
            "legal-obligation": "Nimi, laskut",
        },
        "authorities": ("Verohallinto", "Kela"),
        "partner": "Fysioterapia {} Oy",
        "collector": "Perintäpalvelu {} Oy",
        "biller": "Laskutuspalvelu {} Oy",
        "creditor": "Rahoitus {} Oy",
        "extra_client_column": "Lempiväri",
        "extra_invoice_column": "Viitenumero",
        "colours": ("sininen", "vihreä", "punainen", "keltainen", "musta"),
        "bad_date": "ensi viikolla",
        "bad_billing": "Lasku",
        "bad_yesno": "Ehkä",
        "bad_channel": "Kirje",
        "bad_amount": "kaksikymmentä",
        "hetu_notes": ("syntynyt {}", "Hetu {}", "Laskun lisätieto: {}"),
    },
    "en": {
        "notes": (
            "Would like a text message reminder",
            "Prefers morning appointments",
            "Invoices preferably at the start of the month",
            "No calls during working hours",
            "Contact by e-mail",
            "Uses a wheelchair, step-free entrance",
        ),
        "hold_reasons": (
            "Open complaint",
            "Invoice dispute under review",
            "Client asked us to keep the data",
        ),
        "data_categories": {
            "joint-service": "Name, phone, e-mail",
            "debt-collection": "Name, address, open invoices",
            "billing": "Name, address, invoices",
            "credit-application": "Name, address, billing history",
            "legal-obligation": "Name, invoices",
        },
        "authorities": ("Verohallinto", "Kela"),
        "partner": "Fysioterapia {} Oy",
        "collector": "Perintäpalvelu {} Oy",
        "biller": "Laskutuspalvelu {} Oy",
        "creditor": "Rahoitus {} Oy",
        "extra_client_column": "Favourite colour",
        "extra_invoice_column": "Reference number",
        "colours": ("blue", "green", "red", "yellow", "black"),
        "bad_date": "next week",
        "bad_billing": "Bill",
        "bad_yesno": "Maybe",
        "bad_channel": "Letter",
        "bad_amount": "twenty",
        "hetu_notes": ("born {}", "ID code {}", "Invoice detail: {}"),
    },
}


@dataclass(frozen=True)
class DemoManifest:
    """What a demo workbook holds: its path and where each planted problem is.

    ``planted`` maps a finding code to the cells that carry it, as "Sheet!A1" references in the
    workbook's own sheet names (e.g. "Asiakkaat!D17"); empty for a clean workbook.
    """

    path: Path
    planted: dict[str, list[str]] = field(default_factory=dict)


def hetu_check_char(birth: str, individual: str) -> str:
    """The HETU check character for ``DDMMYY`` and ``ZZZ`` (the mod-31 rule)."""
    return HETU_CHECK_CHARS[int(birth + individual) % 31]


def synthetic_hetu(rng: random.Random) -> str:
    """A valid personal identity code with an individual number 900-999 (never a real one)."""
    born = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randint(0, 54 * 365))
    birth = born.strftime("%d%m%y")
    individual = f"{rng.randint(900, 999)}"
    sign = "-" if born.year < 2000 else "A"
    return f"{birth}{sign}{individual}{hetu_check_char(birth, individual)}"


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch in ".-"))
    return kept.lower()


def _date_as_text(day: datetime.date, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.6:
        return f"{day.day}.{day.month}.{day.year}"
    if style < 0.8:
        return day.strftime("%d.%m.%Y")
    return day.isoformat()


def _money_as_text(amount: float) -> str:
    return f"{amount:.2f}".replace(".", ",")


class _Generator:
    """Builds the rows of one demo register; all randomness comes from one seed."""

    def __init__(self, *, clients: int, lang: str, today: datetime.date, seed: int) -> None:
        self.count = clients
        self.lang = lang
        self.words = _WORDS[lang]
        self.today = today
        self.rng = random.Random(seed)
        self.faker = Faker("fi_FI")
        self.faker.seed_instance(seed)
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.clients: list[Row] = []
        self.invoices: list[Row] = []
        self.requests: list[Row] = []
        self.disclosures: list[Row] = []
        self.pool: list[Row] = []  # ordinary clients kept free for planting problems
        self.extra_columns: dict[str, str] = {}

    # --- values -------------------------------------------------------------------------

    def choice_label(self, choices: tuple[Choice, ...], key: str) -> str:
        return next(c for c in choices if c.key == key).label(self.lang)

    def yes_no(self, value: bool) -> str:
        return YES_NO[0 if value else 1].label(self.lang)

    def days_ago(self, low: int, high: int) -> datetime.date:
        return self.today - datetime.timedelta(days=self.rng.randint(low, high))

    def phone(self) -> str:
        while True:
            if self.rng.random() < 0.85:
                prefix = self.rng.choice(MOBILE_PREFIXES)
                digits = f"{self.rng.randint(0, 9_999_999):07d}"
                style = self.rng.random()
                if style < 0.35:
                    text = f"0{prefix} {digits[:3]} {digits[3:]}"
                elif style < 0.55:
                    text = f"+358 {prefix} {digits}"
                elif style < 0.8:
                    text = f"0{prefix}{digits}"
                elif style < 0.9:
                    text = f"0{prefix} {digits}"
                else:
                    text = f"+358{prefix}{digits}"
            else:
                digits = f"{self.rng.randint(1_000_000, 9_999_999)}"
                area = self.rng.choice(("03", "03", "09"))
                if self.rng.random() < 0.5:
                    text = f"{area} {digits}"
                else:
                    text = f"{area} {digits[:3]} {digits[3:]}"
            number = phonenumbers.parse(text, "FI")
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(number) and e164 not in self.phones:
                self.phones.add(e164)
                return text

    def mobile_digits(self) -> str:
        """A fresh valid mobile number's national digits without the leading zero."""
        while True:
            number = phonenumbers.parse(self.phone(), "FI")
            if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE:
                return phonenumbers.national_significant_number(number)

    def email(self, first: str, last: str) -> str:
        first_a, last_a = _ascii(first), _ascii(last)
        for attempt in range(1000):
            style = self.rng.random()
            if style < 0.5:
                local = f"{first_a}.{last_a}"
            elif style < 0.7:
                local = f"{first_a[0]}.{last_a}"
            else:
                local = f"{first_a}{last_a}{self.rng.randint(1, 99)}"
            if attempt:
                local = f"{local}{attempt}"
            address = f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"
            if address not in self.emails:
                self.emails.add(address)
                return address
        raise RuntimeError("could not make a unique e-mail address")

    def street(self) -> str:
        number = self.rng.randint(1, 60)
        suffix = ""
        if self.rng.random() < 0.4:
            suffix = f" {self.rng.choice('ABCD')} {self.rng.randint(1, 30)}"
        return f"{self.faker.street_name()} {number}{suffix}"

    # --- sheets -------------------------------------------------------------------------

    def make_clients(self) -> None:
        names: set[tuple[str, str]] = set()
        indices = list(range(self.count))
        pooled = set(self.rng.sample(indices, k=POOL_SIZE))
        ordinary = [i for i in indices if i not in pooled]
        ending_soon = set(self.rng.sample(ordinary, k=max(3, self.count // 75)))
        for index in indices:
            in_pool = index in pooled
            while True:
                first, last = self.faker.first_name(), self.faker.last_name()
                if (first, last) not in names:
                    names.add((first, last))
                    break
            # Pool clients are plain on purpose: a problem planted on them stays the only one.
            start = self.days_ago(400 if in_pool else 0, 6 * 365)
            end: datetime.date | None = None
            if in_pool:
                pass
            elif index in ending_soon and start < self.today:
                end = self.today + datetime.timedelta(days=self.rng.randint(3, 42))
            elif self.rng.random() < 0.3 and (self.today - start).days > 60:
                end = start + datetime.timedelta(
                    days=self.rng.randint(30, (self.today - start).days)
                )
            has_phone = in_pool or self.rng.random() < 0.93
            has_email = in_pool or not has_phone or self.rng.random() < 0.8
            if in_pool:
                billing = "email"
            elif has_email:
                billing = self.rng.choices(("email", "paper", "einvoice"), (55, 25, 20))[0]
            else:
                billing = self.rng.choice(("paper", "einvoice"))
            has_address = in_pool or billing != "email" or self.rng.random() < 0.85
            consent = self.rng.random()
            objection = self.rng.random()
            row: Row = {
                "client_id": f"A{1001 + index}",
                "first_name": first,
                "last_name": last,
                "phone": self.phone() if has_phone else None,
                "email": self.email(first, last) if has_email else None,
                "street": self.street() if has_address else None,
                "postal_code": self.faker.postcode() if has_address else None,
                "city": self.faker.city() if has_address else None,
                "billing_method": self.choice_label(BILLING_METHODS, billing),
                "start": start,
                "end": end,
                "survey_consent": None if consent < 0.1 else self.yes_no(consent < 0.6),
                "marketing_objection": None if objection < 0.1 else self.yes_no(objection > 0.9),
                "partner": None,
                "hold_until": None,
                "hold_reason": None,
                "approve_erasure": None,
                "notes": None,
                "_start_as_text": not in_pool and self.rng.random() < 0.15,
            }
            if not in_pool and self.rng.random() < 0.12:
                row["notes"] = self.rng.choice(self.words["notes"])
            self.clients.append(row)
            if in_pool:
                self.pool.append(row)

        others = self.others()
        partner_names = [self.words["partner"].format(self.faker.last_name()) for _ in range(3)]
        for client in self.rng.sample(others, k=max(3, self.count // 10)):
            client["partner"] = self.rng.choice(partner_names)
        ended = [c for c in others if c["end"] is not None and c["end"] < self.today]
        for client in self.rng.sample(ended, k=min(len(ended), 3)):
            client["hold_until"] = self.today + datetime.timedelta(days=self.rng.randint(60, 400))
            client["hold_reason"] = self.rng.choice(self.words["hold_reasons"])
        long_ended = [
            c for c in ended if c["hold_until"] is None and (self.today - c["end"]).days > 60
        ]
        for client in self.rng.sample(long_ended, k=min(len(long_ended), 4)):
            client["approve_erasure"] = self.yes_no(True)

    def make_invoices(self) -> None:
        pooled = {id(c) for c in self.pool}
        for client in self.clients:
            in_pool = id(client) in pooled
            # Pool clients' invoices are all old enough to be paid.
            last_day = self.today - datetime.timedelta(days=30) if in_pool else self.today
            last_day = min(client["end"] or last_day, last_day)
            span = max((last_day - client["start"]).days, 0)
            for _ in range(self.rng.randint(2, 6)):
                invoice_date = client["start"] + datetime.timedelta(days=self.rng.randint(0, span))
                age = (self.today - invoice_date).days
                paid_on = None
                if in_pool or self.rng.random() < (0.97 if age > 21 else 0.4):
                    paid_on = invoice_date + datetime.timedelta(
                        days=self.rng.randint(1, max(1, min(20, age)))
                    )
                    if paid_on > self.today:
                        paid_on = None
                amount: float | str = self.rng.choice(PRICES)
                if self.rng.random() < 0.03:
                    amount = _money_as_text(float(amount) + 0.5)
                self.invoices.append(
                    {
                        "client_id": client["client_id"],
                        "invoice_date": invoice_date,
                        "due_date": invoice_date + datetime.timedelta(days=14),
                        "amount": amount,
                        "paid_on": paid_on,
                        "debt_collection": self.yes_no(False),
                        "_client": client,
                    }
                )
        self.invoices.sort(key=lambda row: (row["invoice_date"], row["client_id"]))
        for number, invoice in enumerate(self.invoices, start=10001):
            invoice["invoice_number"] = str(number)
        old_open = [
            row
            for row in self.invoices
            if row["paid_on"] is None and (self.today - row["invoice_date"]).days > 60
        ]
        for invoice in self.rng.sample(old_open, k=min(len(old_open), 2)):
            invoice["debt_collection"] = self.yes_no(True)

    def others(self) -> list[Row]:
        pooled = {id(c) for c in self.pool}
        return [c for c in self.clients if id(c) not in pooled]

    def make_requests(self) -> None:
        others = self.others()
        chosen = self.rng.sample(others, k=14)
        for index, client in enumerate(chosen):
            kind = REQUEST_TYPES[index % len(REQUEST_TYPES)].key
            channel = CHANNELS[index % len(CHANNELS)].key
            phase = index % 4
            extended = False
            completed: datetime.date | None = None
            status = "open"
            if phase == 0:
                received = self.days_ago(1, 20)
            elif phase == 1:
                received = self.days_ago(40, 300)
                status = "done"
                completed = received + datetime.timedelta(days=self.rng.randint(3, 25))
            elif phase == 2:
                received = self.days_ago(35, 70)
                extended = True
            else:
                received = self.days_ago(30, 200)
                status = "refused" if index == 3 else "done"
                completed = received + datetime.timedelta(days=self.rng.randint(2, 20))
            if client["start"] > received:  # a request cannot predate the relationship
                received = client["start"]
                completed = received if completed else None
            if completed is not None:
                completed = min(completed, self.today)
            self.requests.append(
                {
                    "received": received,
                    "client_id": client["client_id"],
                    "type": self.choice_label(REQUEST_TYPES, kind),
                    "channel": self.choice_label(CHANNELS, channel),
                    "identity_verified": self.yes_no(status != "open" or index % 8 < 4),
                    "extended": self.yes_no(extended),
                    "status": self.choice_label(REQUEST_STATUSES, status),
                    "completed_on": completed,
                    "_extra": index >= len(REQUEST_TYPES),
                }
            )
        self.requests.sort(key=lambda row: row["received"])
        for number, request in enumerate(self.requests, start=1):
            request["request_id"] = f"P{number:03d}"

    def make_disclosures(self) -> None:
        others = self.others()
        with_partner = [c for c in others if c["partner"]]
        collected = [row for row in self.invoices if row["debt_collection"] == self.yes_no(True)]
        surnames = [self.faker.last_name() for _ in range(3)]
        for index in range(20):
            basis = DISCLOSURE_BASES[index % len(DISCLOSURE_BASES)].key
            client = self.rng.choice(others)
            recipient = ""
            earliest = client["start"]
            if basis == "joint-service" and with_partner:
                client = self.rng.choice(with_partner)
                recipient = client["partner"]
                earliest = client["start"]
            elif basis == "debt-collection":
                if collected:
                    invoice = self.rng.choice(collected)
                    client = invoice["_client"]
                    earliest = invoice["due_date"] + datetime.timedelta(days=30)
                recipient = self.words["collector"].format(surnames[0])
            elif basis == "billing":
                recipient = self.words["biller"].format(surnames[1])
            elif basis == "credit-application":
                recipient = self.words["creditor"].format(surnames[2])
            elif basis == "legal-obligation":
                recipient = self.rng.choice(self.words["authorities"])
            if not recipient:
                recipient = self.words["partner"].format(surnames[0])
            span = max((self.today - earliest).days, 0)
            self.disclosures.append(
                {
                    "date": earliest + datetime.timedelta(days=self.rng.randint(0, span)),
                    "client_id": client["client_id"],
                    "recipient": recipient,
                    "basis": self.choice_label(DISCLOSURE_BASES, basis),
                    "data_categories": self.words["data_categories"][basis],
                    "_extra": index >= len(DISCLOSURE_BASES),
                }
            )
        self.disclosures.sort(key=lambda row: row["date"])

    def build(self) -> None:
        self.make_clients()
        self.make_invoices()
        self.make_requests()
        self.make_disclosures()


def _plant(row: Row, code: str, key: str) -> None:
    row.setdefault("_planted", []).append((code, key))


class _Planter:
    """Plants two or three instances of every finding code on rows set aside for it."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.words = gen.words
        self.rng = gen.rng
        self.pool = list(gen.pool)
        self.sheet_level: dict[str, list[tuple[Sheet, str]]] = {}

    def client(self) -> Row:
        return self.pool.pop()

    def client_pair(self) -> tuple[Row, Row]:
        first, second = self.client(), self.client()
        order = {id(c): i for i, c in enumerate(self.gen.clients)}
        if order[id(first)] > order[id(second)]:
            first, second = second, first
        return first, second

    def invoice(self) -> Row:
        owner = self.client()
        return next(row for row in self.gen.invoices if row["_client"] is owner)

    def request(self) -> Row:
        row = next(r for r in self.gen.requests if r["_extra"] and not r.get("_planted"))
        row["_extra"] = False
        return row

    def disclosure(self) -> Row:
        row = next(r for r in self.gen.disclosures if r["_extra"] and not r.get("_planted"))
        row["_extra"] = False
        return row

    def plant_all(self) -> None:
        gen, words = self.gen, self.words
        email_billing = gen.choice_label(BILLING_METHODS, "email")
        paper_billing = gen.choice_label(BILLING_METHODS, "paper")

        # missing-value: a required cell empty; or neither phone nor e-mail (on the phone cell).
        row = self.client()
        row["last_name"] = None
        _plant(row, "missing-value", "last_name")
        row = self.client()
        gen.emails.discard(row["email"])
        row["phone"], row["email"], row["billing_method"] = None, None, paper_billing
        _plant(row, "missing-value", "phone")
        row = self.invoice()
        row["amount"] = None
        _plant(row, "missing-value", "amount")

        # duplicate-client-id: the later row repeats an earlier ID; its invoices follow it.
        for _ in range(2):
            first, second = self.client_pair()
            for invoice in gen.invoices:
                if invoice["_client"] is second:
                    invoice["client_id"] = first["client_id"]
            second["client_id"] = first["client_id"]
            _plant(second, "duplicate-client-id", "client_id")

        for text in ("040 12", "+358 40 12", "0401 23"):
            row = self.client()
            row["phone"] = text
            _plant(row, "invalid-phone", "phone")

        for _ in range(2):
            row = self.client()
            row["phone"] = int(gen.mobile_digits())  # what Excel keeps of "040 123 4567"
            _plant(row, "phone-stored-as-number", "phone")

        for style in range(3):
            row = self.client()
            first, last = _ascii(row["first_name"]), _ascii(row["last_name"])
            row["email"] = (
                f"{first}.{last}.example.com",
                f"{first}@",
                f"{first} {last}@example.com",
            )[style]
            row["billing_method"] = paper_billing
            _plant(row, "invalid-email", "email")

        for text in ("3310", "ABCDE"):
            row = self.client()
            row["postal_code"] = text
            row["billing_method"] = email_billing
            _plant(row, "invalid-postal-code", "postal_code")

        row = self.client()
        row["start"] = "31.2.2021"
        _plant(row, "invalid-date", "start")
        row = self.client()
        row["end"] = words["bad_date"]
        _plant(row, "invalid-date", "end")
        row = self.invoice()
        row["invoice_date"] = "30.2.2022"
        _plant(row, "invalid-date", "invoice_date")

        for _ in range(2):
            row = self.client()
            row["end"] = row["start"] - datetime.timedelta(days=self.rng.randint(10, 120))
            _plant(row, "end-before-start", "end")

        row = self.client()
        row["billing_method"] = words["bad_billing"]
        _plant(row, "invalid-choice", "billing_method")
        row = self.client()
        row["survey_consent"] = words["bad_yesno"]
        _plant(row, "invalid-choice", "survey_consent")
        row = self.request()
        row["channel"] = words["bad_channel"]
        _plant(row, "invalid-choice", "channel")

        row = self.client()
        row["billing_method"], row["street"] = paper_billing, None
        _plant(row, "billing-address-incomplete", "billing_method")
        row = self.client()
        row["billing_method"], row["postal_code"] = paper_billing, None
        _plant(row, "billing-address-incomplete", "billing_method")
        row = self.client()
        gen.emails.discard(row["email"])
        row["billing_method"], row["email"] = email_billing, None
        _plant(row, "billing-address-incomplete", "billing_method")

        for row, unknown in (
            (self.invoice(), "A0997"),
            (self.request(), "A0998"),
            (self.disclosure(), "A0999"),
        ):
            row["client_id"] = unknown
            _plant(row, "unknown-client", "client_id")

        for template in words["hetu_notes"]:
            row = self.client()
            row["notes"] = template.format(synthetic_hetu(self.rng))
            _plant(row, "hetu-found", "notes")

        for same in ("phone", "email"):
            first, second = self.client_pair()
            second["first_name"], second["last_name"] = first["first_name"], first["last_name"]
            second[same] = first[same]
            _plant(second, "duplicate-person", "client_id")

        for text in ("12,5,0", words["bad_amount"]):
            row = self.invoice()
            row["amount"] = text
            _plant(row, "invalid-amount", "amount")

        row = self.client()
        row["start"] = gen.today + datetime.timedelta(days=self.rng.randint(20, 60))
        _plant(row, "future-date", "start")
        row = self.invoice()
        row["invoice_date"] = gen.today + datetime.timedelta(days=self.rng.randint(5, 30))
        row["due_date"] = row["invoice_date"] + datetime.timedelta(days=14)
        row["paid_on"] = None
        _plant(row, "future-date", "invoice_date")
        row = self.request()
        row["received"] = gen.today + datetime.timedelta(days=self.rng.randint(3, 14))
        row["status"] = gen.choice_label(REQUEST_STATUSES, "open")
        row["completed_on"], row["extended"] = None, gen.yes_no(False)
        _plant(row, "future-date", "received")

        colours = words["colours"]
        gen.extra_columns["clients"] = words["extra_client_column"]
        for client in gen.clients:
            if self.rng.random() < 0.4:
                client["_extra_value"] = self.rng.choice(colours)
        gen.extra_columns["invoices"] = words["extra_invoice_column"]
        for invoice in gen.invoices:
            invoice["_extra_value"] = invoice["invoice_number"] + "3"


def _write_sheet(
    ws: Worksheet, sheet: Sheet, rows: Iterable[Row], extra_header: str | None
) -> dict[str, list[str]]:
    """Write ``rows`` under the header; return the planted cells found on them."""
    planted: dict[str, list[str]] = {}
    columns = sheet.columns
    extra_index = len(columns) + 1
    last_row = 1
    for row_number, row in enumerate(rows, start=2):
        last_row = row_number
        for index, column in enumerate(columns, start=1):
            if column.written_by_sheetreg:
                continue
            value = row.get(column.key)
            if column.key == "start" and "_start_text" in row:
                value = row["_start_text"]
            if value is None:
                continue
            cell = ws.cell(row=row_number, column=index, value=value)
            number_format = number_format_for(column)
            if number_format:
                cell.number_format = number_format
        if extra_header and row.get("_extra_value") is not None:
            ws.cell(row=row_number, column=extra_index, value=row["_extra_value"])
        for code, key in row.get("_planted", ()):
            letter = get_column_letter(columns.index(sheet.column(key)) + 1)
            planted.setdefault(code, []).append(f"{ws.title}!{letter}{row_number}")
    last_column = len(columns)
    if extra_header:
        ws.cell(row=1, column=extra_index, value=extra_header)
        ws.column_dimensions[get_column_letter(extra_index)].width = 18
        last_column = extra_index
        planted.setdefault("unknown-column", []).append(
            f"{ws.title}!{get_column_letter(extra_index)}1"
        )
    ws.auto_filter.ref = f"A1:{get_column_letter(last_column)}{last_row}"
    return planted


def _ref_sort_key(ref: str, sheet_order: dict[str, int]) -> tuple[int, int, int]:
    sheet, _, cell = ref.rpartition("!")
    row, column = coordinate_to_tuple(cell)
    return sheet_order[sheet], row, column


def _make_workbook(
    path: Path,
    *,
    clients: int,
    lang: str,
    today: datetime.date,
    seed: int,
    plant: bool,
) -> DemoManifest:
    path = Path(path)
    if path.exists():
        raise FileExistsError(str(path))
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    if clients < MIN_CLIENTS:
        raise ValueError(f"a demo register needs at least {MIN_CLIENTS} clients")
    gen = _Generator(clients=clients, lang=lang, today=today, seed=seed)
    gen.build()
    for client in gen.clients:
        if client["_start_as_text"]:
            client["_start_text"] = _date_as_text(client["start"], gen.rng)
    if plant:
        _Planter(gen).plant_all()

    wb = build_template(lang)
    planted: dict[str, list[str]] = {}
    for sheet, rows in (
        (CLIENTS, gen.clients),
        (INVOICES, gen.invoices),
        (REQUESTS, gen.requests),
        (DISCLOSURES, gen.disclosures),
    ):
        found = _write_sheet(wb[sheet.label(lang)], sheet, rows, gen.extra_columns.get(sheet.key))
        for code, refs in found.items():
            planted.setdefault(code, []).extend(refs)
    write_new_file(path, workbook_bytes(wb))
    sheet_order = {name: position for position, name in enumerate(wb.sheetnames)}
    ordered = {
        code: sorted(planted[code], key=lambda ref: _ref_sort_key(ref, sheet_order))
        for code in PLANTED_CODES
        if code in planted
    }
    return DemoManifest(path=path, planted=ordered)


def make_demo_workbook(
    path: Path,
    *,
    clients: int = 300,
    lang: str = "fi",
    today: datetime.date,
    seed: int = 2026,
) -> DemoManifest:
    """Write a synthetic register with 2-3 planted instances of every finding code to ``path``.

    ``path`` must not exist (FileExistsError). The returned manifest maps each code in
    :data:`PLANTED_CODES` to the "Sheet!A1" cells that carry it; every other cell is clean.
    """
    return _make_workbook(path, clients=clients, lang=lang, today=today, seed=seed, plant=True)


def make_clean_workbook(
    path: Path,
    *,
    clients: int = 300,
    lang: str = "fi",
    today: datetime.date,
    seed: int = 2026,
) -> DemoManifest:
    """Write the same synthetic register as :func:`make_demo_workbook`, with nothing planted."""
    return _make_workbook(path, clients=clients, lang=lang, today=today, seed=seed, plant=False)
