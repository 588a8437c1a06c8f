"""Retention decisions: statuses, typed holds at their boundaries, texts, the erasure plan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sheetreg.retention import (
    Policy,
    accounting_retention_until,
    client_statuses,
    due_erasures,
    flag_edits,
    is_pseudonym,
    plan_erasure,
    policy_from_settings,
    status_text,
)
from sheetreg.schema import CLIENTS, DISCLOSURES, ERASURE_LOG, INVOICES, REQUESTS
from sheetreg.workbook import read_register, write_cells

from conftest import TODAY, build_register, client

SHEETS = (CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG)
DAY = dt.timedelta(days=1)
PERSONAL = ("Aino", "Virtanen", "040 123 4567", "aino.virtanen@example.fi", "Hämeenkatu 1 A 2")


def invoice(number: str = "1234", client_id: str = "A1001", **changes) -> dict:
    """A paid invoice row, with ``changes`` applied."""
    row = {
        "invoice_number": number,
        "client_id": client_id,
        "invoice_date": dt.date(2026, 9, 1),
        "due_date": dt.date(2026, 9, 15),
        "amount": 80,
        "paid_on": dt.date(2026, 9, 10),
        "debt_collection": "Ei",
    }
    row.update(changes)
    return row


def register(tmp_path: Path, *, lang: str = "fi", **kwargs):
    """Write a register with the Erasure log sheet and read it back."""
    path = build_register(tmp_path / f"r-{lang}.xlsx", sheets=SHEETS, lang=lang, **kwargs)
    return read_register(path)


def status_of(reg, client_id: str = "A1001", today: dt.date = TODAY):
    """The status of one client."""
    return client_statuses(reg, today)[client_id]


# --- policy and the Accounting Act ----------------------------------------------------------


def test_policy_defaults_to_approval_and_calendar_year():
    """An empty or unreadable Settings sheet gives the safe policy: approval, FY ends 31.12."""
    assert policy_from_settings({}) == Policy(False, 30, (31, 12), 10)
    odd = {"erasure_policy": "kyllä kai", "erasure_after_days": "x", "financial_year_end": "?"}
    assert policy_from_settings(odd) == Policy(False, 30, (31, 12), 10)


def test_policy_reads_automatic_days_and_financial_year():
    """ "automaattinen", a day count and a 30.6. financial year are read from Settings."""
    policy = policy_from_settings(
        {
            "erasure_policy": "Automaattinen",
            "erasure_after_days": "14",
            "financial_year_end": "30.6.",
        }
    )
    assert policy == Policy(True, 14, (30, 6), 10)


@pytest.mark.parametrize(
    ("invoice_date", "fy_end", "until"),
    [
        (dt.date(2020, 3, 15), (31, 12), dt.date(2026, 12, 31)),
        (dt.date(2020, 12, 31), (31, 12), dt.date(2026, 12, 31)),
        (dt.date(2021, 1, 1), (31, 12), dt.date(2027, 12, 31)),
        (dt.date(2020, 6, 30), (30, 6), dt.date(2026, 12, 31)),
        (dt.date(2020, 8, 15), (30, 6), dt.date(2027, 12, 31)),
        (dt.date(2023, 2, 10), (29, 2), dt.date(2029, 12, 31)),
    ],
)
def test_accounting_retention_is_six_years_from_the_financial_years_calendar_year(
    invoice_date, fy_end, until
):
    """KPL 2:10: 31.12 of the sixth year after the year in which the financial year ends."""
    assert accounting_retention_until(invoice_date, fy_end) == until


# --- states ---------------------------------------------------------------------------------


def test_no_end_date_is_active(tmp_path):
    """A client without an end date is active, with nothing due."""
    s = status_of(register(tmp_path, clients=[client()]))
    assert (s.state, s.erasure_due, s.awaiting_approval, s.holds) == ("active", None, False, ())
    assert status_text(s, "fi") == "Aktiivinen" and status_text(s, "en") == "Active"


def test_end_date_today_is_still_ending(tmp_path):
    """The end date is the relationship's last day: on that day it is ending, not ended."""
    s = status_of(register(tmp_path, clients=[client(end=TODAY)]))
    assert s.state == "ending" and s.erasure_due is None
    assert status_text(s, "fi") == "Päättyy 25.11.2026"
    assert status_text(s, "en") == "Ends 25.11.2026"


def test_end_date_yesterday_is_ended_and_awaits_approval(tmp_path):
    """The day after the end date the relationship has ended; erasure awaits approval."""
    s = status_of(register(tmp_path, clients=[client(end=TODAY - DAY)]))
    assert s.state == "ended" and s.erasure_due == TODAY and s.awaiting_approval
    assert status_text(s, "fi") == "Päättynyt 24.11.2026 – poisto odottaa hyväksyntää"
    assert status_text(s, "en") == "Ended 24.11.2026 – erasure awaits approval"


def test_approved_row_is_not_awaiting(tmp_path):
    """Approve erasure = Kyllä: the erasure is done at the next run."""
    s = status_of(register(tmp_path, clients=[client(end=TODAY - DAY, approve_erasure="Kyllä")]))
    assert s.approved and not s.awaiting_approval
    assert status_text(s, "fi").endswith("poisto hyväksytty, tehdään seuraavalla ajolla")
    assert status_text(s, "en").endswith("erasure approved, done at the next run")


def test_automatic_policy_sets_the_date_n_days_after_the_end(tmp_path):
    """Under the automatic policy erasure is due N days after the end, then at the next run."""
    reg = register(tmp_path, clients=[client(end=dt.date(2026, 11, 1))])
    reg.settings.update(erasure_policy="automaattinen", erasure_after_days="30")
    s = status_of(reg)
    assert s.erasure_due == dt.date(2026, 12, 1) and not s.awaiting_approval
    assert status_text(s, "fi") == "Päättynyt 1.11.2026 – poistetaan 1.12.2026"
    assert status_text(s, "en") == "Ended 1.11.2026 – to be erased on 1.12.2026"
    due = status_of(reg, today=dt.date(2026, 12, 1))
    assert status_text(due, "en") == "Ended 1.11.2026 – to be erased at the next run"
    assert [p.client_id for p in due_erasures(reg, dt.date(2026, 12, 1))] == ["A1001"]
    assert due_erasures(reg, dt.date(2026, 11, 30)) == []


# --- holds ----------------------------------------------------------------------------------


def test_open_invoice_blocks_and_keeps_the_billing_contact(tmp_path):
    """An unpaid invoice keeps the name and the contact its billing method needs."""
    reg = register(
        tmp_path,
        clients=[client(end=TODAY - DAY)],
        invoices=[invoice(paid_on=None)],
    )
    s = status_of(reg)
    hold = s.holds[0]
    assert (hold.kind, hold.until, hold.reason, hold.source) == (
        "open-invoice",
        None,
        "1234",
        "Laskut!A2",
    )
    assert "clients.email" in hold.fields and "clients.phone" not in hold.fields
    assert s.blocked and s.erasure_due is None and not s.awaiting_approval
    assert status_text(s, "fi") == "Päättynyt 24.11.2026 – poisto estetty: avoin lasku 1234"
    assert status_text(s, "en") == "Ended 24.11.2026 – erasure blocked: open invoice 1234"


def test_paper_billing_keeps_the_address(tmp_path):
    """Paper billing: the open invoice keeps the postal address rather than the e-mail."""
    reg = register(
        tmp_path,
        clients=[client(billing_method="Paperilasku")],
        invoices=[invoice(paid_on=None)],
    )
    fields = status_of(reg).holds[0].fields
    assert {"clients.street", "clients.postal_code", "clients.city"} <= set(fields)
    assert "clients.email" not in fields


def test_invoice_paid_today_releases_the_hold(tmp_path):
    """An invoice paid today is no longer open: only accounting retention remains."""
    reg = register(tmp_path, clients=[client(end=TODAY - DAY)], invoices=[invoice(paid_on=TODAY)])
    s = status_of(reg)
    assert [h.kind for h in s.holds] == ["accounting-retention"]
    assert not s.blocked and s.awaiting_approval


def test_debt_collection_hold(tmp_path):
    """An unpaid invoice in debt collection keeps every contact field (GDPR 17(3)(e))."""
    reg = register(
        tmp_path,
        clients=[client(end=TODAY - DAY)],
        invoices=[invoice(paid_on=None, debt_collection="Kyllä")],
    )
    hold = status_of(reg).holds[0]
    assert hold.kind == "debt-collection" and hold.ground == "GDPR 17(3)(e)"
    assert {"clients.phone", "clients.email", "clients.street"} <= set(hold.fields)
    assert status_text(status_of(reg), "en").endswith("invoice 1234 in debt collection")


def test_manual_hold_ending_today_still_holds(tmp_path):
    """A manual hold applies through its date and is released the day after."""
    reg = register(
        tmp_path,
        clients=[client(end=dt.date(2026, 1, 31), hold_until=TODAY, hold_reason="Reklamaatio")],
    )
    s = status_of(reg)
    assert s.holds[0].kind == "manual-hold" and s.holds[0].until == TODAY and s.blocked
    assert s.erasure_due == TODAY + DAY
    assert status_text(s, "fi").endswith("poisto estetty: säilytys 25.11.2026 asti (Reklamaatio)")
    assert status_text(s, "en").endswith("erasure blocked: held until 25.11.2026 (Reklamaatio)")
    released = status_of(reg, today=TODAY + DAY)
    assert released.holds == () and released.awaiting_approval


def test_manual_hold_reason_stays_out_of_json(tmp_path):
    """A manual hold's free-text reason never reaches JSON output; its cell does."""
    reg = register(tmp_path, clients=[client(hold_until=TODAY, hold_reason="Aino soitti")])
    out = status_of(reg).holds[0].to_dict()
    assert "reason" not in out and out["source"] == "Asiakkaat!O2"


def test_accounting_retention_last_day(tmp_path):
    """Invoice rows are held through 31.12 of the sixth year and released on 1.1."""
    reg = register(
        tmp_path, clients=[client()], invoices=[invoice(invoice_date=dt.date(2020, 5, 5))]
    )
    last = status_of(reg, today=dt.date(2026, 12, 31)).holds
    assert [(h.kind, h.until) for h in last] == [("accounting-retention", dt.date(2026, 12, 31))]
    assert status_of(reg, today=dt.date(2027, 1, 1)).holds == ()


# --- flagging -------------------------------------------------------------------------------


def test_flag_edits_are_idempotent(tmp_path):
    """Writing the flag's edits and flagging again gives no edits at all."""
    reg = register(
        tmp_path,
        clients=[client(), client(client_id="A1002", end=TODAY - DAY, email="b@example.fi")],
    )
    edits = flag_edits(reg, TODAY)
    assert [(e.cell, e.value) for e in edits] == [
        ("S2", "Aktiivinen"),
        ("S3", "Päättynyt 24.11.2026 – poisto odottaa hyväksyntää"),
    ]
    write_cells(reg.path, edits, expected=reg.snapshot)
    assert flag_edits(read_register(reg.path), TODAY) == []


def test_flag_writes_english_in_an_english_workbook(tmp_path):
    """The status is written in the workbook's language."""
    reg = register(tmp_path, lang="en", clients=[client(end=TODAY - DAY)])
    assert [e.value for e in flag_edits(reg, TODAY)] == [
        "Ended 24.11.2026 – erasure awaits approval"
    ]


# --- the plan -------------------------------------------------------------------------------


def test_open_invoice_refuses_an_ended_erasure(tmp_path):
    """Reason ended with an open invoice: nothing planned, the plan says why."""
    reg = register(tmp_path, clients=[client(end=TODAY - DAY)], invoices=[invoice(paid_on=None)])
    plan = plan_erasure(reg, "A1001", TODAY, "ended")
    assert not plan.allowed and plan.scope == "none" and plan.changes == []
    assert [r.code for r in plan.refusals] == ["open-invoice"]
    assert "1234" in plan.refusals[0].message and "17(3)(e)" in plan.refusals[0].message


def test_partial_erasure_on_request(tmp_path):
    """On request, what no hold covers goes now; the held fields stay; the rest is scheduled."""
    reg = register(
        tmp_path,
        clients=[client(notes="Iltapäivät", partner="Fysio Oy")],
        invoices=[invoice(paid_on=None)],
    )
    plan = plan_erasure(reg, "A1001", TODAY, "request")
    assert plan.scope == "partial" and plan.allowed
    erased = {c.field for c in plan.changes if c.action == "empty"}
    assert erased == {
        "clients.phone",
        "clients.street",
        "clients.postal_code",
        "clients.city",
        "clients.survey_consent",
        "clients.notes",
    }
    sets = {c.field: c.value for c in plan.changes if c.action == "set"}
    assert sets["clients.approve_erasure"] == "Kyllä"
    assert plan.scheduled == "Loput poistetaan, kun nämä päättyvät: avoin lasku 1234."
    assert [h.kind for h in plan.kept] == ["open-invoice", "accounting-retention"]


def test_full_plan_pseudonymises_and_keeps_invoices(tmp_path):
    """A full erasure: the row becomes a tombstone, kept invoices and other sheets get the
    reference, an invoice past retention is emptied, recipients are listed."""
    reg = register(
        tmp_path,
        clients=[client(end=TODAY - DAY, partner="Fysio Oy")],
        invoices=[invoice(), invoice("1001", invoice_date=dt.date(2019, 2, 1))],
        requests=[{"request_id": "R1", "received": TODAY, "client_id": "A1001", "type": "Poisto"}],
        disclosures=[
            {"date": TODAY, "client_id": "A1001", "recipient": "Perintä Oy", "basis": "Perintä"}
        ],
    )
    plan = plan_erasure(reg, "A1001", TODAY)
    assert plan.reason == "ended" and plan.scope == "full"
    pseudo = sorted(c.ref for c in plan.changes if c.action == "pseudonymise")
    assert pseudo == ["Asiakkaat!A2", "Laskut!B2", "Luovutukset!B2", "Pyynnöt!C2"]
    emptied = {c.ref for c in plan.changes if c.action == "empty"}
    assert {"Laskut!A3", "Laskut!B3", "Laskut!E3"} <= emptied  # past retention
    assert not any(ref.startswith("Laskut!") and ref.endswith("2") for ref in emptied)
    assert plan.pseudonymised == {"clients": 1, "invoices": 1, "requests": 1, "disclosures": 1}
    assert [(r.name, r.basis) for r in plan.recipients] == [
        ("Fysio Oy", "partner"),
        ("Perintä Oy", "debt-collection"),
    ]
    assert [h.kind for h in plan.kept] == ["accounting-retention"]


def test_plan_json_holds_no_personal_values(tmp_path):
    """The plan's JSON names cells and fields, never a name, phone, e-mail or address."""
    reg = register(tmp_path, clients=[client(end=TODAY - DAY)], invoices=[invoice()])
    data = plan_erasure(reg, "A1001", TODAY).to_dict()
    text = json.dumps(data, ensure_ascii=False)
    assert not [v for v in PERSONAL if v in text]
    assert set(data) == {
        "client_id",
        "reason",
        "today",
        "scope",
        "allowed",
        "refusals",
        "status",
        "erase",
        "pseudonymise",
        "set",
        "fields_erased",
        "keep",
        "recipients",
        "suppression_entry",
        "scheduled",
    }
    assert data["erase"][0] == {
        "cell": "Asiakkaat!B2",
        "field": "clients.first_name",
        "action": "empty",
    }
    assert data["keep"][0]["until"] == "2032-12-31"


def test_objection_marks_a_suppression_entry(tmp_path):
    """A direct-marketing objection is kept on the tombstone and asks for a suppression entry."""
    reg = register(tmp_path, clients=[client(end=TODAY - DAY, marketing_objection="Kyllä")])
    plan = plan_erasure(reg, "A1001", TODAY)
    assert plan.suppression
    assert "clients.marketing_objection" not in {c.field for c in plan.changes}


@pytest.mark.parametrize(
    ("changes", "reason", "code"),
    [
        ({"client_id": "A9999"}, "request", "not-found"),
        ({}, "ended", "not-ended"),
        ({"hold_until": TODAY + DAY}, "request", "nothing-to-erase"),
    ],
)
def test_plan_refusals(tmp_path, changes, reason, code):
    """Unknown IDs, an active relationship with reason ended, everything held: refused."""
    reg = register(tmp_path, clients=[client(**changes)])
    plan = plan_erasure(reg, "A1001", TODAY, reason)
    assert not plan.allowed and code in [r.code for r in plan.refusals]


def test_duplicate_client_id_is_refused(tmp_path):
    """A client ID on two rows is not erased: which row would it be?"""
    reg = register(tmp_path, clients=[client(), client(email="x@example.fi")])
    assert plan_erasure(reg, "A1001", TODAY).refusals[0].code == "duplicate-client-id"


def test_refusal_messages_in_english(tmp_path):
    """The plan's messages follow the workbook's language."""
    reg = register(
        tmp_path, lang="en", clients=[client(end=TODAY - DAY)], invoices=[invoice(paid_on=None)]
    )
    plan = plan_erasure(reg, "A1001", TODAY, "ended")
    assert plan.refusals[0].message.startswith("Erasure blocked: open invoice 1234")


def test_due_erasures_takes_approved_rows(tmp_path):
    """The weekly job's plans: approved rows (reason by state); others wait."""
    reg = register(
        tmp_path,
        clients=[
            client(end=TODAY - DAY, approve_erasure="Kyllä"),
            client(client_id="A1002", end=TODAY - DAY, email="b@example.fi"),
            client(client_id="A1003", approve_erasure="Kyllä", email="c@example.fi"),
        ],
    )
    plans = {p.client_id: p for p in due_erasures(reg, TODAY)}
    assert set(plans) == {"A1001", "A1003"}
    assert (plans["A1001"].reason, plans["A1003"].reason) == ("ended", "request")


def test_rows_by_id_keeps_every_row_of_an_id(tmp_path: Path):
    """The row index (a lone row kept as its int, a repeated ID as a list) answers the rows
    of each ID in row order, nothing for an unknown or empty ID, and is built once."""
    from sheetreg.retention import rows_by_id

    invoices = [
        invoice("1", "A1001"),
        invoice("2", "A1002"),
        invoice("3", "A1001"),
        invoice("4", ""),
        invoice("5", "A1001"),
    ]
    reg = register(tmp_path, clients=[client()], invoices=invoices)
    index = rows_by_id(reg.table("invoices"))
    assert index.get("A1001") == (0, 2, 4) and index.get("A1002") == (1,)
    assert index.get("A9999") == () and index.get("") == () and "" not in index
    assert len(index) == 2 and "A1002" in index
    assert rows_by_id(reg.table("invoices")) is index


def test_pseudonym_shape():
    """Pseudonymous references are recognisable and cannot be client IDs."""
    assert is_pseudonym("P-0123456789abcdef") and not is_pseudonym("A1001")


def test_quick_init_keeps_the_dataclass_contract():
    """Hold and ClientStatus get a faster __init__ (register.quick_init): the parameters,
    defaults and frozenness are the dataclass's; replace, pickling and equality still work,
    with slots or without; a class it cannot serve is refused rather than given a wrong
    __init__."""
    import dataclasses
    import inspect
    import pickle

    from sheetreg.register import quick_init
    from sheetreg.retention import ClientStatus, Hold

    for cls in (Hold, ClientStatus):
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        fields = dataclasses.fields(cls)
        assert [p.name for p in params] == [f.name for f in fields]
        assert [p.default for p in params] == [
            inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
            for f in fields
        ]
    hold = Hold("manual-hold", ("clients.*",), dt.date(2027, 1, 1), "x", "Asiakkaat!T2")
    status = ClientStatus("A1", 2, "ended", None, None, (hold,), True, index=0, approved=True)
    assert (status.automatic, status.erased, status.as_of, status.approved) == (
        False,
        False,
        None,
        True,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.row = 3  # type: ignore[misc]
    assert dataclasses.replace(status, row=3).row == 3
    assert pickle.loads(pickle.dumps(status)) == status
    assert hold == Hold(
        kind="manual-hold",
        fields=("clients.*",),
        until=dt.date(2027, 1, 1),
        reason="x",
        source="Asiakkaat!T2",
    )

    # Slotted (a status per client, a hold per invoice): no per-instance dictionary.
    assert not hasattr(status, "__dict__") and not hasattr(hold, "__dict__")

    @quick_init
    @dataclasses.dataclass(frozen=True)
    class Plain:  # a class with a __dict__ is served too
        a: int
        b: str = "b"

    plain = Plain(1)
    assert (plain.a, plain.b, plain) == (1, "b", Plain(a=1, b="b"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.a = 2  # type: ignore[misc]

    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError):
        quick_init(WithFactory)


def test_memoised_parsers_tell_a_boolean_from_a_number():
    """TRUE and 1 are equal keys to a dict, but not the same cell: whichever comes first, each
    gets the answer its own parse gives (a TRUE in Debt collection is a yes, a 1 is not)."""
    from sheetreg import values
    from sheetreg.retention import _Memo

    cells = [True, 1.0, 1, False, 0.0, "Kyllä", dt.date(2026, 1, 1)]

    def date(raw: object) -> dt.date | None:
        try:
            return values.as_date(raw)
        except ValueError:
            return None

    for order in (cells, cells[::-1]):
        memo = _Memo()
        for _ in range(2):  # the second time from the memo
            assert [memo.is_yes(v) for v in order] == [values.as_yes(v) for v in order]
            assert [memo.date(v) for v in order] == [date(v) for v in order]
            assert [type(memo.billing_key(v)) for v in order] == [type(None)] * len(order)
    memo = _Memo()
    assert memo.is_yes(True) and not memo.is_yes(1.0)


def test_every_status_at_once_is_each_rows_own(tmp_path: Path):
    """The statuses of a whole register (each column read once per distinct value) are the
    ones each row gets on its own, odd cells included: a hold cell of spaces or 0, TRUE and
    1 in Approve erasure, dates as text and serials, an erased row, open and collected
    invoices; and a status awaits approval exactly when no hold blocks it."""
    from sheetreg.retention import _status_rows, _status_rows_unpaused

    ended = dt.date(2026, 1, 31)
    clients = [
        client(client_id="A1", end=ended),
        client(client_id="A2", end=ended, hold_until="   ", hold_reason=" "),
        client(client_id="A3", end=ended, hold_until=0),
        client(client_id="A4", end="31.1.2026", approve_erasure=True),
        client(client_id="A5", end=46000, approve_erasure=1),
        client(client_id="A6", end=ended, hold_reason="Reklamaatio"),
        client(client_id="A7", end=TODAY + DAY, approve_erasure="Kyllä"),
        client(client_id="P-0123456789abcdef", end=ended),
        client(client_id="A8", end=ended, hold_until=TODAY - DAY, hold_reason="Vanha"),
        client(client_id=" A9 ", billing_method="Paperilasku", end=ended),
    ]
    invoices = [
        invoice("1", "A1"),
        invoice("2", "A2", paid_on=None),
        invoice("3", "A5", paid_on=None, debt_collection="Kyllä"),
        invoice("4", "A5", paid_on=None),
        invoice("5", "P-0123456789abcdef", invoice_date=dt.date(2015, 3, 1)),
        invoice("", "A9", paid_on=None),
    ]
    reg = register(tmp_path, clients=clients, invoices=invoices)
    every = _status_rows(reg, TODAY)
    assert len(every) == len(clients)
    for status in every:
        alone = _status_rows_unpaused(reg, TODAY, None, (status.index, status.client_id))
        assert alone == [status]
        blocked = any(h.blocks for h in status.holds)
        assert status.awaiting_approval == (
            status.state == "ended" and not status.approved and not status.erased and not blocked
        )
    by_id = {s.client_id: s for s in every}
    assert by_id["A2"].holds and not any(h.kind == "manual-hold" for h in by_id["A2"].holds)
    assert [h.kind for h in by_id["A3"].holds] == ["manual-hold"]
    assert [h.kind for h in by_id["A5"].holds[:2]] == ["debt-collection", "open-invoice"]
    assert by_id["A4"].approved and by_id["A5"].approved is False
    assert by_id["P-0123456789abcdef"].erased and by_id["A9"].client_id == "A9"
