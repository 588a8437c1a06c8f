"""Planning the Requests sheet: deadlines to write, open requests in order, what each one needs.

Pure: takes a :class:`~sheetreg.register.Register` and a date, returns a :class:`RequestsPlan`.
The plan says which Due cells change (and only those), lists open requests by days left with
overdue ones first, tells for each request what the therapist (or sheetreg) must do next, and
names the Access and Portability requests that ``sheetreg requests --process`` answers with an
extract. Nothing here opens a file; `cli_requests.run_requests` applies the plan.

A password-protected register's extracts are protected too, with a password the therapist hands
over by another channel; so they are never made unattended: for such a register the plan
processes nothing and tells, request by request, to run ``sheetreg extract --client ID``.

Messages name request IDs, client IDs, types, dates and cells, never a person's name or any
other cell text: they go to the terminal and to the weekly job's log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sheetreg import values
from sheetreg.deadlines import Deadline, deadline
from sheetreg.schema import CLIENTS, REQUEST_STATUSES, REQUEST_TYPES, REQUESTS, YES_NO, Choice

if TYPE_CHECKING:
    from sheetreg.register import Register, Table
    from sheetreg.retention import RowIndex
    from sheetreg.xlsxpatch import CellEdit

EXTRACT_TYPES = frozenset({"access", "portability"})  # answered by an access extract

# What each request type needs, as a stable action code; the texts are in _TEXT below.
ACTIONS = (
    "verify-identity",  # identity not verified: nothing else happens until it is
    "make-extract",  # Access/Portability, verified, no outcome: `requests --process` makes it
    # (for an encrypted register: `sheetreg extract --client ID`, by hand)
    "deliver-extract",  # the extract exists (Outcome says where): send it, then mark Done
    "rectify",  # correct the data, tell the recipients (Art. 16, 19)
    "restrict",  # restrict processing, tell the recipients (Art. 18, 19)
    "set-column",  # Objection / Consent withdrawal: a column on the client's row must change
    "close-request",  # that column already says so: mark the request Done
    "erasure-plan",  # an erasure plan (retention.plan_erasure): what goes, what is kept
    "fix-row",  # the row itself cannot be acted on (no date, unknown type or client)
)

# Issue codes: things the user must act on; any of them makes `sheetreg requests` exit 1.
ISSUE_CODES = (
    "request-overdue",
    "request-unverified",
    "request-no-received-date",
    "request-unknown-type",
    "request-unknown-client",
    "request-ambiguous-client",
    "request-no-due-column",
    "request-no-outcome-column",
    "request-extract-failed",  # set by the runner when an extract cannot be made
    "request-extract-manual",  # set by the runner: an encrypted register's extract is made by hand
)

_TEXT: dict[str, dict[str, str]] = {
    "fi": {
        "verify-identity": "Varmista ensin henkilöllisyys ja merkitse {verified} = Kyllä.",
        "make-extract": "Tee tarkastusote: sheetreg requests --process.",
        "make-extract-portability": (
            "Tee ote (JSON-tiedosto on siirrettävä kopio): sheetreg requests --process."
        ),
        "make-extract-encrypted": "Rekisteri on salattu: tee ote itse komennolla sheetreg "
        "extract --client {client}; ote salataan ja sen salasana näytetään kerran.",
        "deliver-extract": "Ote on tehty ({outcome}). Toimita se asiakkaalle ja merkitse "
        "{status} = Valmis.",
        "rectify": "Korjaa virheelliset tiedot rekisteriin (16 art.). {recipients}",
        "restrict": "Rajoita käsittelyä: säilytä tiedot, mutta älä käytä niitä muuten kuin "
        "oikeusvaateisiin, kunnes asia on ratkaistu (18 art.). {recipients}",
        "set-column": "Muuta {cell} ({column}) arvoon {value}.",
        "close-request": "{cell} ({column}) on jo {value}: merkitse pyyntö valmiiksi.",
        "objection-note": "Suoramarkkinoinnin vastustus on ehdoton (21 art. 3 k.).",
        "erasure-plan-full": "Poistosuunnitelma: {fields} tietoa poistetaan nyt ja "
        "asiakasnumero korvataan viitteellä; säilytetään: {kept}; ilmoita {recipients} "
        "vastaanottajalle (19 art.). Tarkista ja toteuta: {command}",
        "erasure-plan-partial": "Poistosuunnitelma: {fields} tietoa poistetaan nyt, loput kun "
        "säilytysperuste päättyy; säilytetään: {kept}; ilmoita {recipients} vastaanottajalle "
        "(19 art.). Tarkista ja toteuta: {command}",
        "erasure-refused": "Poistoa ei voi tehdä nyt ({codes}). Säilytetään: {kept}. Kerro "
        "asiakkaalle syy ja merkitse pyyntö.",
        "fix-row": "Korjaa pyynnön rivi ({cell}), jotta sitä voi käsitellä.",
        "recipients-none": "Tietoja ei ole luovutettu kenellekään.",
        "recipients-some": "Ilmoita vastaanottajille (19 art.): {where}.",
        "extension-notice": "Jatkosta on pitänyt kertoa asiakkaalle viimeistään {date}.",
        "request-overdue": "Pyyntö {request} on myöhässä {days} päivää (määräaika {due}).",
        "request-unverified": "Pyynnön {request} tekijän henkilöllisyyttä ei ole varmistettu; "
        "sitä ei käsitelty.",
        "request-no-received-date": "Pyynnöltä {request} puuttuu vastaanottopäivä tai se ei ole "
        "päivämäärä; määräaikaa ei voi laskea.",
        "request-unknown-type": "Pyynnön {request} tyyppi puuttuu tai on tuntematon.",
        "request-unknown-client": "Pyynnön {request} asiakasnumeroa ei löydy Asiakkaat-"
        "välilehdeltä.",
        "request-ambiguous-client": "Pyynnön {request} asiakasnumero on Asiakkaat-välilehdellä "
        "useammin kuin kerran; pyyntöä ei käsitelty.",
        "request-no-due-column": "Pyynnöt-välilehdellä ei ole Määräaika-saraketta; määräaikoja "
        "ei kirjoitettu. Lisää sarake otsikolla Määräaika.",
        "request-no-outcome-column": "Pyynnöt-välilehdellä ei ole Tulos-saraketta; otteita ei "
        "tehty, koska tulosta ei voisi kirjata. Lisää sarake otsikolla Tulos.",
        "outcome": "Ote {folder} tehty {date}",
        "request-extract-manual": "Pyyntö {request}: otetta ei tehty automaattisesti, koska "
        "rekisteri on salattu ja otteen salasana on annettava asiakkaalle. Tee se: sheetreg "
        "extract --client {client}",
    },
    "en": {
        "verify-identity": "Verify the person's identity first and set {verified} = Yes.",
        "make-extract": "Make the access extract: sheetreg requests --process.",
        "make-extract-portability": (
            "Make the extract (its JSON file is the portable copy): sheetreg requests --process."
        ),
        "make-extract-encrypted": "The register is encrypted: make the extract yourself with "
        "sheetreg extract --client {client}; it is encrypted and its password is shown once.",
        "deliver-extract": "The extract is made ({outcome}). Send it to the person and set "
        "{status} = Done.",
        "rectify": "Correct the inaccurate data in the register (Art. 16). {recipients}",
        "restrict": "Restrict processing: keep the data but use them only for legal claims "
        "until the matter is settled (Art. 18). {recipients}",
        "set-column": "Set {cell} ({column}) to {value}.",
        "close-request": "{cell} ({column}) already says {value}: mark the request Done.",
        "objection-note": "An objection to direct marketing is absolute (Art. 21(3)).",
        "erasure-plan-full": "Erasure plan: {fields} fields are erased now and the client ID "
        "becomes a pseudonymous reference; kept: {kept}; tell {recipients} recipients "
        "(Art. 19). Review and execute: {command}",
        "erasure-plan-partial": "Erasure plan: {fields} fields are erased now, the rest when "
        "the holds end; kept: {kept}; tell {recipients} recipients (Art. 19). Review and "
        "execute: {command}",
        "erasure-refused": "The erasure cannot be done now ({codes}). Kept: {kept}. Tell the "
        "person why and mark the request.",
        "fix-row": "Fix the request's row ({cell}) so that it can be handled.",
        "recipients-none": "The data were not disclosed to anyone.",
        "recipients-some": "Tell the recipients (Art. 19): {where}.",
        "extension-notice": "The person had to be told of the extension by {date}.",
        "request-overdue": "Request {request} is {days} days overdue (due {due}).",
        "request-unverified": "The identity behind request {request} is not verified; it was "
        "not processed.",
        "request-no-received-date": "Request {request} has no received date, or it is not a "
        "date; its deadline cannot be computed.",
        "request-unknown-type": "Request {request} has no type, or an unknown one.",
        "request-unknown-client": "Request {request}'s client ID is not on the Clients sheet.",
        "request-ambiguous-client": "Request {request}'s client ID is on the Clients sheet more "
        "than once; the request was not processed.",
        "request-no-due-column": "The Requests sheet has no Due column; no deadlines were "
        "written. Add a column headed Due.",
        "request-no-outcome-column": "The Requests sheet has no Outcome column; no extracts "
        "were made, as their outcome could not be recorded. Add a column headed Outcome.",
        "outcome": "Extract {folder} made {date}",
        "request-extract-manual": "Request {request}: no extract was made automatically, as "
        "the register is encrypted and the extract's password must be handed to the person. "
        "Make it: sheetreg extract --client {client}",
    },
}


def text(lang: str, key: str, **params: Any) -> str:
    """A message of this module in ``lang`` with ``params`` filled in."""
    return _TEXT[lang][key].format(**params)


def format_date(day: dt.date, lang: str) -> str:
    """A date as the reader expects it: 2.3.2026 in Finnish, 2026-03-02 in English."""
    return f"{day.day}.{day.month}.{day.year}" if lang == "fi" else day.isoformat()


@dataclass(frozen=True)
class Issue:
    """Something about a request the user must act on, with where it is."""

    code: str
    sheet: str
    cell: str
    request_id: str
    client_id: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "code": self.code,
            "sheet": self.sheet,
            "cell": self.cell,
            "request_id": self.request_id,
            "client_id": self.client_id,
            "message": self.message,
        }


@dataclass(frozen=True)
class RequestItem:
    """One request row as the rules see it, with its deadline and what it needs next."""

    index: int  # data row index in the Requests table
    row: int  # Excel row number
    request_id: str  # the Request ID, or "row N" when the cell is empty
    client_id: str | None
    type: Choice | None
    status: str  # "open", "done" or "refused" (empty or unreadable counts as open)
    received: dt.date | None
    verified: bool
    extended: bool
    deadline: Deadline | None
    outcome: str | None
    client_rows: tuple[int, ...]  # data row indices on the Clients sheet with this ID
    action: str  # one of ACTIONS
    todo: str  # the action as a sentence in the plan's language
    extension_notice_by: dt.date | None = None  # one-month deadline of an extended request

    @property
    def is_open(self) -> bool:
        """True while the request is neither Done nor Refused."""
        return self.status == "open"

    def days_left(self, today: dt.date) -> int | None:
        """Days until the due date (negative when overdue); None without a deadline."""
        return None if self.deadline is None else self.deadline.days_left(today)

    def to_dict(self, today: dt.date, lang: str) -> dict[str, Any]:
        """The JSON form: IDs, type, dates and the next step; never a name."""
        days = self.days_left(today)
        return {
            "request_id": self.request_id,
            "row": self.row,
            "client_id": self.client_id,
            "type": self.type.key if self.type else None,
            "type_label": self.type.label(lang) if self.type else None,
            "status": self.status,
            "received": self.received.isoformat() if self.received else None,
            "due": self.deadline.due.isoformat() if self.deadline else None,
            "nominal_due": self.deadline.nominal.isoformat() if self.deadline else None,
            "extended": self.extended,
            "extension_notice_by": (
                self.extension_notice_by.isoformat() if self.extension_notice_by else None
            ),
            "days_left": days,
            "overdue": days is not None and days < 0 and self.is_open,
            "identity_verified": self.verified,
            "outcome": self.outcome,
            "action": self.action,
            "todo": self.todo,
        }


@dataclass
class RequestsPlan:
    """What `sheetreg requests` will do and report for one register on one day."""

    workbook: str
    sheet: str | None  # the Requests tab's name, None when the workbook has none
    today: dt.date
    lang: str
    items: list[RequestItem] = field(default_factory=list)
    due_edits: list[CellEdit] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    outcome_column: bool = True
    encrypted: bool = False  # the register is password-protected: extracts are made by hand

    @property
    def open_items(self) -> list[RequestItem]:
        """Open requests by days left, overdue first; those without a deadline last."""
        far = 10**6
        return sorted(
            (item for item in self.items if item.is_open),
            key=lambda item: (
                d if (d := item.days_left(self.today)) is not None else far,
                item.row,
            ),
        )

    def record_outcome(self, index: int, outcome: str) -> None:
        """Note that request row ``index`` got its extract: it now waits to be delivered."""
        status = REQUESTS.column("status").label(self.lang)
        todo = text(self.lang, "deliver-extract", outcome=outcome, status=status)
        self.items = [
            dataclasses.replace(item, outcome=outcome, action="deliver-extract", todo=todo)
            if item.index == index
            else item
            for item in self.items
        ]

    @property
    def to_process(self) -> list[RequestItem]:
        """Requests that `--process` answers with an extract: open, verified, no outcome yet.

        None for an encrypted register: see :attr:`manual_extracts`.
        """
        if not self.outcome_column or self.encrypted:
            return []
        return [item for item in self.open_items if item.action == "make-extract"]

    @property
    def manual_extracts(self) -> list[RequestItem]:
        """An encrypted register's requests awaiting an extract: `sheetreg extract`, by hand."""
        if not self.encrypted:
            return []
        return [item for item in self.open_items if item.action == "make-extract"]

    @property
    def overdue(self) -> list[RequestItem]:
        """Open requests past their due date."""
        return [
            item
            for item in self.open_items
            if (d := item.days_left(self.today)) is not None and d < 0
        ]

    @property
    def unverified(self) -> list[RequestItem]:
        """Open requests whose identity is not verified (reported, not processed)."""
        return [item for item in self.open_items if item.action == "verify-identity"]


ErasureHandover = Callable[["Register", RequestItem, dt.date, str], tuple[str, str]]


def plan_requests(
    register: Register,
    today: dt.date,
    lang: str | None = None,
    *,
    erasure: ErasureHandover | None = None,
) -> RequestsPlan:
    """Plan the Requests sheet of ``register`` as of ``today``; messages in ``lang``.

    ``erasure`` turns an Erasure request into ``(action, todo)``; by default it is the
    summary of the erasure plan (retention.plan_erasure).
    """
    lang = lang or register.lang
    table = register.table("requests")
    plan = RequestsPlan(
        register.path.name,
        table.name if table else None,
        today,
        lang,
        outcome_column=True,
        encrypted=register.snapshot.encrypted,
    )
    if table is None:
        return plan
    from sheetreg.retention import rows_by_id
    from sheetreg.xlsxpatch import CellEdit

    client_index = rows_by_id(register.table("clients"))
    disclosure_rows = rows_by_id(register.table("disclosures"))
    handover = erasure or _retention_erasure
    has_due = table.has("due")
    plan.outcome_column = table.has("outcome")
    if not has_due:
        plan.issues.append(_issue(plan, "request-no-due-column", "", "", None))
    ctx = _Context(register, table, client_index, disclosure_rows, today, lang, handover)
    for i in table.nonblank_rows():
        item = _read_item(ctx, i)
        plan.items.append(item)
        if has_due and item.deadline is not None:
            current = table.date(i, "due")
            if current != item.deadline.due:
                plan.due_edits.append(CellEdit(table.name, table.ref(i, "due"), item.deadline.due))
        _collect_issues(plan, table, item)
    if not plan.outcome_column and any(
        item.is_open and item.action == "make-extract" for item in plan.items
    ):
        plan.issues.append(_issue(plan, "request-no-outcome-column", "", "", None))
    return plan


def _issue(
    plan: RequestsPlan, code: str, cell: str, request_id: str, client_id: str | None, **p: Any
) -> Issue:
    message = text(plan.lang, code, request=request_id, **p)
    return Issue(code, plan.sheet or "", cell, request_id, client_id, message)


def _collect_issues(plan: RequestsPlan, table: Table, item: RequestItem) -> None:
    if not item.is_open:
        return
    rid, cid = item.request_id, item.client_id
    if item.received is None:
        cell = table.ref(item.index, "received") if table.has("received") else ""
        plan.issues.append(_issue(plan, "request-no-received-date", cell, rid, cid))
    if item.type is None:
        cell = table.ref(item.index, "type") if table.has("type") else ""
        plan.issues.append(_issue(plan, "request-unknown-type", cell, rid, cid))
    if not item.client_rows:
        cell = table.ref(item.index, "client_id") if table.has("client_id") else ""
        plan.issues.append(_issue(plan, "request-unknown-client", cell, rid, cid))
    elif len(item.client_rows) > 1:
        cell = table.ref(item.index, "client_id")
        plan.issues.append(_issue(plan, "request-ambiguous-client", cell, rid, cid))
    if item.action == "verify-identity":
        cell = table.ref(item.index, "identity_verified") if table.has("identity_verified") else ""
        plan.issues.append(_issue(plan, "request-unverified", cell, rid, cid))
    days = item.days_left(plan.today)
    if days is not None and days < 0 and item.deadline is not None:
        cell = table.ref(item.index, "due") if table.has("due") else ""
        due = format_date(item.deadline.due, plan.lang)
        plan.issues.append(_issue(plan, "request-overdue", cell, rid, cid, days=-days, due=due))


def _status_key(raw: Any) -> str:
    try:
        found = values.as_choice(raw, REQUEST_STATUSES)
    except ValueError:
        return "open"  # an unreadable status stays visible until someone fixes it
    return found.key if found else "open"


def _type(raw: Any) -> Choice | None:
    try:
        return values.as_choice(raw, REQUEST_TYPES)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Context:
    """What reading one request row needs from the rest of the register."""

    register: Register
    table: Table
    client_index: RowIndex
    disclosure_rows: RowIndex
    today: dt.date
    lang: str
    handover: ErasureHandover


def _read_item(ctx: _Context, i: int) -> RequestItem:
    table, lang = ctx.table, ctx.lang
    request_id = table.text(i, "request_id") or (
        f"rivi {table.excel_row(i)}" if lang == "fi" else f"row {table.excel_row(i)}"
    )
    client_id = table.text(i, "client_id")
    received = table.date(i, "received")
    extended = table.yes(i, "extended")
    found = deadline(received, extended=extended) if received else None
    notice_by = deadline(received).due if received and extended else None
    item = RequestItem(
        index=i,
        row=table.excel_row(i),
        request_id=request_id,
        client_id=client_id,
        type=_type(table.get(i, "type")),
        status=_status_key(table.get(i, "status")),
        received=received,
        verified=table.yes(i, "identity_verified"),
        extended=extended,
        deadline=found,
        outcome=table.text(i, "outcome"),
        client_rows=ctx.client_index.get(client_id or ""),
        action="",
        todo="",
        extension_notice_by=notice_by,
    )
    action, todo = _next_step(ctx, item)
    if notice_by is not None and item.status == "open":
        todo = f"{text(lang, 'extension-notice', date=format_date(notice_by, lang))} {todo}"
    return dataclasses.replace(item, action=action, todo=todo)


def _next_step(ctx: _Context, item: RequestItem) -> tuple[str, str]:
    """The action code and its sentence for one request."""
    table, lang = ctx.table, ctx.lang
    if item.received is None or item.type is None or len(item.client_rows) != 1:
        key = "received" if item.received is None else "type" if item.type is None else "client_id"
        cell = f"{table.name}!{table.ref(item.index, key)}" if table.has(key) else table.name
        return "fix-row", text(lang, "fix-row", cell=cell)
    if not item.verified:
        label = table.spec.column("identity_verified").label(lang)
        return "verify-identity", text(lang, "verify-identity", verified=label)
    kind = item.type.key
    if kind in EXTRACT_TYPES:
        if item.outcome:
            status = table.spec.column("status").label(lang)
            return "deliver-extract", text(
                lang, "deliver-extract", outcome=item.outcome, status=status
            )
        if ctx.register.snapshot.encrypted:
            return "make-extract", text(lang, "make-extract-encrypted", client=item.client_id)
        key = "make-extract-portability" if kind == "portability" else "make-extract"
        return "make-extract", text(lang, key)
    if kind in {"rectification", "restriction"}:
        where = _recipients_where(ctx.register, item, ctx.disclosure_rows, lang)
        action = "rectify" if kind == "rectification" else "restrict"
        return action, text(lang, action, recipients=where)
    if kind in {"objection", "consent-withdrawal"}:
        return _column_change(ctx.register, item, lang)
    if kind == "erasure":
        return ctx.handover(ctx.register, item, ctx.today, lang)
    raise AssertionError(kind)  # every REQUEST_TYPES key is handled above


def _recipients_where(
    register: Register, item: RequestItem, disclosure_rows: RowIndex, lang: str
) -> str:
    """Where the recipients of this client's data are named: cells, never the names."""
    places: list[str] = []
    disclosures = register.table("disclosures")
    rows = disclosure_rows.get(item.client_id or "")
    if disclosures is not None and rows:
        numbers = ", ".join(str(disclosures.excel_row(i)) for i in rows)
        places.append(
            f"{disclosures.name} " + (f"rivit {numbers}" if lang == "fi" else f"rows {numbers}")
        )
    clients = register.table("clients")
    if clients is not None and clients.has("partner"):
        for i in item.client_rows:
            if clients.text(i, "partner"):
                places.append(f"{clients.name}!{clients.ref(i, 'partner')}")
    if not places:
        return text(lang, "recipients-none")
    return text(lang, "recipients-some", where="; ".join(places))


def _column_change(register: Register, item: RequestItem, lang: str) -> tuple[str, str]:
    """Objection -> Direct marketing objection = Yes; Consent withdrawal -> Survey consent = No."""
    clients = register.table("clients")
    assert clients is not None and item.type is not None
    if item.type.key == "objection":
        key, wanted = "marketing_objection", YES_NO[0]
    else:
        key, wanted = "survey_consent", YES_NO[1]
    column = CLIENTS.column(key).label(lang)
    value = wanted.label(lang)
    note = f" {text(lang, 'objection-note')}" if item.type.key == "objection" else ""
    if not clients.has(key):
        return "set-column", text(lang, "set-column", cell=clients.name, column=column, value=value)
    i = item.client_rows[0]
    cell = f"{clients.name}!{clients.ref(i, key)}"
    try:
        current = values.as_choice(clients.get(i, key), YES_NO)
    except ValueError:
        current = None
    if current == wanted:
        return "close-request", text(lang, "close-request", cell=cell, column=column, value=value)
    return "set-column", text(lang, "set-column", cell=cell, column=column, value=value) + note


_HOLD_WORDS = {
    "open-invoice": ("avoin lasku", "open invoice"),
    "debt-collection": ("perintä", "debt collection"),
    "manual-hold": ("säilytysmerkintä", "recorded hold"),
    "accounting-retention": ("kirjanpitolaki", "Accounting Act"),
}


def _retention_erasure(
    register: Register, item: RequestItem, today: dt.date, lang: str
) -> tuple[str, str]:
    """Hand an Erasure request over to the erasure plan (a summary).

    The summary names kinds of holds, dates, counts and the command to run, never a cell's
    text: a hold reason is free text and may name someone.
    """
    from sheetreg.retention import plan_erasure

    plan = plan_erasure(register, item.client_id or "", today, "request", lang=lang)
    command = f"sheetreg erase {register.path.name} --client {item.client_id} --reason request"
    kept = []
    for hold in plan.kept:
        label = _HOLD_WORDS.get(hold.kind, (hold.kind, hold.kind))[0 if lang == "fi" else 1]
        if hold.until is not None:
            day = format_date(hold.until, lang)
            label += f" {day} asti" if lang == "fi" else f" until {day}"
        if label not in kept:
            kept.append(label)
    if not plan.allowed:
        codes = ", ".join(sorted({r.code for r in plan.refusals})) or "-"
        return "erasure-plan", text(lang, "erasure-refused", codes=codes, kept="; ".join(kept))
    todo = text(
        lang,
        "erasure-plan-" + ("full" if plan.scope == "full" else "partial"),
        fields=len(plan.erased_fields),
        kept="; ".join(kept) or "-",
        recipients=len(plan.recipients),
        command=command,
    )
    return "erasure-plan", todo


def outcome_text(folder: str, made_on: dt.date, lang: str) -> str:
    """What the Outcome cell says once an extract is made: its folder name and date."""
    return text(lang, "outcome", folder=folder, date=format_date(made_on, lang))


def summary(plan: RequestsPlan) -> dict[str, int]:
    """Counts for the report: open, overdue, unverified, to process, due cells to write."""
    return {
        "requests": len(plan.items),
        "open": len(plan.open_items),
        "overdue": len(plan.overdue),
        "unverified": len(plan.unverified),
        "to_process": len(plan.to_process),
        "due_cells": len(plan.due_edits),
        "issues": len(plan.issues),
    }


def manual_extract_issues(plan: RequestsPlan, table: Table) -> list[Issue]:
    """For an encrypted register's run with processing: one issue per request awaiting an
    extract, telling to make it with ``sheetreg extract --client ID`` (``table``: Requests)."""
    return [
        _issue(
            plan,
            "request-extract-manual",
            table.ref(item.index, "client_id"),
            item.request_id,
            item.client_id,
            client=item.client_id,
        )
        for item in plan.manual_extracts
    ]


def group_by_client(items: Sequence[RequestItem]) -> dict[str, list[RequestItem]]:
    """Requests to process grouped by client ID: one extract answers them all on a day."""
    grouped: dict[str, list[RequestItem]] = {}
    for item in items:
        grouped.setdefault(item.client_id or "", []).append(item)
    return grouped
