"""Erasure on real workbooks: flag, erase, the log, the proof, backups, reapply, the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import stat
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.comments import Comment
from openpyxl.packaging.custom import CustomPropertyList, StringProperty

from sheetreg import erasure, values
from sheetreg.cli import cli
from sheetreg.erasure import (
    KEY_FILE_NAME,
    erase_due,
    flag_workbook,
    is_suppressed,
    journal_path,
    phone_forms,
    read_journal,
)
from sheetreg.errors import FidelityError
from sheetreg.schema import CLIENTS, DISCLOSURES, ERASURE_LOG, INVOICES, REQUESTS
from sheetreg.workbook import list_backups

from conftest import TODAY, build_register, client, soffice_convert

SHEETS = (CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG)
DAY = dt.timedelta(days=1)
ENDED = TODAY - dt.timedelta(days=30)
BERTTA = {
    "client_id": "A1002",
    "first_name": "Bertta",
    "last_name": "Kallioniemi",
    "phone": "050 765 4321",
    "email": "bertta.kallioniemi@example.fi",
    "street": "Pispalan valtatie 9 B",
    "postal_code": "33250",
    "city": "Tampere",
    "end": ENDED,
    "notes": "Soittaa iltapäivisin",
}
# Every value of Bertta's that must be gone, and forms of them nobody typed in a cell.
SECRETS = [
    "Bertta",
    "Kallioniemi",
    "765 4321",
    "7654321",
    "bertta.kallioniemi",
    "Pispalan valtatie",
    "iltapäivisin",
]


def make(tmp_path: Path, *, lang: str = "fi", invoices=(), requests=(), disclosures=(), **b):
    """A register with Aino (active) and Bertta (ended), the Erasure log sheet included."""
    return build_register(
        tmp_path / "rekisteri.xlsx",
        clients=[client(), client(**{**BERTTA, **b})],
        invoices=list(invoices),
        requests=list(requests),
        disclosures=list(disclosures),
        sheets=SHEETS,
        lang=lang,
    )


def invoke(*args: str, input: str | None = None):
    """Run the CLI in-process."""
    return CliRunner().invoke(cli, [*args, "--today", TODAY.isoformat()], input=input)


def package_text(path: Path) -> str:
    """Every member of an .xlsx package, decoded, joined: what an unzip would show."""
    with zipfile.ZipFile(path) as zf:
        return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())


def found(path: Path, needles=SECRETS) -> list[str]:
    """The needles still in a package, case-insensitively."""
    text = package_text(path).casefold()
    return [n for n in needles if n.casefold() in text]


def sha(path: Path) -> str:
    """The file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sheet_rows(path: Path, sheet: str) -> list[tuple]:
    """A sheet's non-empty rows read back with openpyxl (an independent reader)."""
    ws = openpyxl.load_workbook(path)[sheet]
    return [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]


# --- flag -----------------------------------------------------------------------------------


def test_flag_writes_statuses_once(tmp_path):
    """`flag` writes only changing status cells; a second run writes nothing."""
    path = make(tmp_path)
    result = invoke("flag", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["cells_changed"] == 2 and data["written"]
    assert data["counts"]["awaiting_approval"] == 1
    assert [c["client_id"] for c in data["changes"]] == ["A1001", "A1002"]
    rows = sheet_rows(path, "Asiakkaat")
    assert rows[2][-1] == "Päättynyt 26.10.2026 – poisto odottaa hyväksyntää"
    before = sha(path)
    again = invoke("flag", str(path))
    assert again.exit_code == 0 and "ajan tasalla" in again.output
    assert sha(path) == before


def test_flag_dry_run_writes_nothing(tmp_path):
    """`flag --dry-run` reports and leaves the file as it was."""
    path = make(tmp_path)
    before = sha(path)
    result = invoke("flag", str(path), "--dry-run")
    assert result.exit_code == 0 and "Muuttuisi 2 solua" in result.output
    assert sha(path) == before


def test_flag_adds_the_status_column_when_missing(tmp_path):
    """A Clients sheet without Privacy status gets the column after its last one."""
    path = tmp_path / "vanha.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Asiakkaat"
    ws.append(["Asiakasnumero", "Etunimi", "Sukunimi", "Asiakkuus päättyi"])
    ws.append(["A1001", "Aino", "Virtanen", None])
    wb.save(path)
    flag_workbook(path, TODAY)
    assert sheet_rows(path, "Asiakkaat")[:2] == [
        ("Asiakasnumero", "Etunimi", "Sukunimi", "Asiakkuus päättyi", "Tietosuojatila"),
        ("A1001", "Aino", "Virtanen", None, "Aktiivinen"),
    ]
    assert not flag_workbook(path, TODAY).changes


# --- erase: refusals and the plan -----------------------------------------------------------


def test_open_invoice_refuses_with_exit_1(tmp_path):
    """An ended client with an open invoice is not erased: exit 1, the plan says why."""
    path = make(
        tmp_path,
        invoices=[
            {"invoice_number": "7001", "client_id": "A1002", "invoice_date": ENDED, "amount": 80}
        ],
    )
    before = sha(path)
    result = invoke("erase", str(path), "--client", "A1002", "--yes", "--format", "json")
    assert result.exit_code == 1
    plan = json.loads(result.output)["plan"]
    assert plan["allowed"] is False
    assert plan["refusals"][0]["code"] == "open-invoice"
    assert "7001" in plan["refusals"][0]["message"]
    assert sha(path) == before
    assert not found(path, []) and not journal_path(path).exists()


def test_erase_asks_before_writing(tmp_path):
    """Without --yes the command asks; anything but yes writes nothing (exit 1)."""
    path = make(tmp_path)
    before = sha(path)
    result = invoke("erase", str(path), "--client", "A1002", input="e\n")
    assert result.exit_code == 1 and "Mitään ei kirjoitettu" in result.output
    assert sha(path) == before
    yes = invoke("erase", str(path), "--client", "A1002", input="k\n")
    assert yes.exit_code == 0, yes.output
    assert sha(path) != before


def test_unknown_client_is_exit_2_and_dry_run_writes_nothing(tmp_path):
    """An unknown client ID is unusable input; --dry-run shows the plan only."""
    path = make(tmp_path)
    before = sha(path)
    assert invoke("erase", str(path), "--client", "A9999").exit_code == 2
    dry = invoke("erase", str(path), "--client", "A1002", "--dry-run", "--format", "json")
    assert dry.exit_code == 0 and json.loads(dry.output)["plan"]["scope"] == "full"
    assert sha(path) == before
    assert invoke("erase", str(path)).exit_code == 2  # neither --client, --approved nor --reapply


def test_missing_log_sheet_is_refused(tmp_path):
    """Without a Poistoloki sheet there is nowhere to log: refused, nothing written."""
    path = build_register(tmp_path / "r.xlsx", clients=[client(end=ENDED)])
    before = sha(path)
    result = invoke("erase", str(path), "--client", "A1001", "--yes")
    assert result.exit_code == 1 and "Poistoloki" in result.output
    assert sha(path) == before


# --- erase: full, partial, log, journal -----------------------------------------------------


def test_an_erased_value_in_the_log_row_itself_refuses_the_erasure(tmp_path):
    """The log row is searched too: an operator named like the client (in one cell of the
    row, in another case) keeps the erasure from being written, and says where."""
    from sheetreg.erasure import execute_erasures
    from sheetreg.retention import plan_erasure
    from sheetreg.workbook import read_register

    path = make(tmp_path)
    before = sha(path)
    register = read_register(path)
    plan = plan_erasure(register, "A1002", TODAY, "request")
    result = execute_erasures(path, [plan], register=register, operator="KALLIONIEMI, B.")
    assert not result.written and sha(path) == before
    (refused,) = result.refused
    assert refused.client_id == "A1002" and refused.scope == "none"
    assert [(r.code, r.source) for r in refused.refusals] == [("leftover", "Poistoloki")]


def test_what_remains_is_told_exactly_whether_primed_or_not(tmp_path):
    """Whether a value remains in some cell exactly (its case and spacing aside, a line of
    a cell of several lines counting), as the set of every remaining line would tell, both
    for the values looked up in one pass beforehand and for those that were not."""
    from sheetreg.erasure import _Retained
    from sheetreg.workbook import read_register

    path = make(tmp_path, notes="Soittaa\niltapäivisin ARKISIN\nEi viestejä", street="Ässä 1")
    register = read_register(path)
    changed = {("Asiakkaat", "B3")}  # Bertta's first name is erased
    texts = [
        "Bertta",  # only in the erased cell
        "Kallioniemi",
        " Iltapäivisin  arkisin",  # a line of the notes, spaced and cased otherwise
        "iltapäivisin",  # part of a line only
        "soittaa",
        "Soittaa iltapäivisin",  # two lines are not one
        "ässä 1",
        "Ässä",
        " ",
        "Tampere",
        "\nTampere\n",  # as a text contained, the same word as the line of "Tampere"
    ]
    reference = _Retained(register, changed)
    lines = set(reference.blob.split("\n")) - {""}
    want = [" ".join(t.split()).casefold() in lines for t in texts]
    assert want == [False, True, True, False, True, False, True, False, False, True, True]
    within = [t.casefold() in reference.blob for t in texts]
    primed = _Retained(register, changed)
    primed.prime(texts)
    assert [primed.exact(t) for t in texts] == want
    assert [primed.contains(t) for t in texts] == within
    assert [_Retained(register, changed).exact(t) for t in texts] == want


def test_full_erasure_leaves_a_tombstone_and_a_clean_log(tmp_path):
    """A full erasure: nothing of Bertta remains; the reference links invoices; the log row
    names columns, grounds and recipients, never her data."""
    path = make(
        tmp_path,
        invoices=[
            {
                "invoice_number": "7001",
                "client_id": "A1002",
                "invoice_date": dt.date(2025, 3, 1),
                "amount": 80,
                "paid_on": dt.date(2025, 3, 10),
            }
        ],
        requests=[{"request_id": "R1", "received": TODAY, "client_id": "A1002", "type": "Poisto"}],
        disclosures=[
            {
                "date": ENDED,
                "client_id": "A1002",
                "recipient": "Fysio Oy",
                "basis": "Yhteistyöpalvelu",
            }
        ],
    )
    result = invoke("erase", str(path), "--client", "A1002", "--yes", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert not [s for s in SECRETS if s in result.output]
    erasure = out["erasures"][0]
    ref = erasure["reference"]
    assert erasure["verification"]["ok"] and erasure["verification"]["leftovers"] == []
    assert found(path) == [] and "A1002" not in package_text(path)
    clients = sheet_rows(path, "Asiakkaat")
    assert clients[2] == (
        ref,
        *[None] * 17,
        "Poistettu 25.11.2026 (loki E-1) – laskutiedot "
        "säilytetään 31.12.2031 asti (kirjanpitolaki)",
    )
    assert sheet_rows(path, "Laskut")[1][:2] == ("7001", ref)
    assert sheet_rows(path, "Pyynnöt")[1][2] == ref
    assert sheet_rows(path, "Luovutukset")[1][1:3] == (ref, "Fysio Oy")
    header, row = sheet_rows(path, "Poistoloki")
    assert header[0] == "Lokitunnus" and row[0] == "E-1" and row[2] == ref
    assert row[3] == "asiakkuus päättynyt"
    assert "Etunimi" in row[4] and "Asiakasnumero korvattu viitteellä" in row[4]
    assert "31.12.2031" in row[5] and "KPL 1336/1997 2:10" in row[5]
    assert row[6] == "Fysio Oy (yhteistyöpalvelu)"
    assert row[10].startswith("OK:")
    assert not [s for s in SECRETS if any(s.casefold() in str(v).casefold() for v in row)]
    entry = read_journal(path)[0]
    assert entry["reference"] == ref and entry["scope"] == "full"
    assert entry["sha_written"] == sha(path)
    assert not [s for s in SECRETS if s in journal_path(path).read_text(encoding="utf-8")]
    assert stat.S_IMODE((path.parent / KEY_FILE_NAME).stat().st_mode) == 0o600
    # flag afterwards computes the same tombstone text: only Aino's (never flagged) changes
    assert [c.client_id for c in flag_workbook(path, TODAY).changes] == ["A1001"]


def test_partial_erasure_on_request(tmp_path):
    """On request with an open invoice: the phone, address and notes go; the name and
    e-mail stay for billing; the row is marked approved for the rest."""
    path = make(
        tmp_path,
        invoices=[
            {"invoice_number": "7001", "client_id": "A1002", "invoice_date": ENDED, "amount": 80}
        ],
    )
    result = invoke("erase", str(path), "--client", "A1002", "--reason", "request", "--yes")
    assert result.exit_code == 0, result.output
    assert "Osittain poistettu: A1002" in result.output
    row = sheet_rows(path, "Asiakkaat")[2]
    assert row[:5] == ("A1002", "Bertta", "Kallioniemi", None, "bertta.kallioniemi@example.fi")
    assert row[5:8] == (None, None, None) and row[17] is None  # address, notes
    assert row[16] == "Kyllä"
    assert row[18] == "Päättynyt 26.10.2026 – poisto estetty: avoin lasku 7001"
    assert found(path, ["765 4321", "Pispalan", "iltapäivisin"]) == []
    log = sheet_rows(path, "Poistoloki")[1]
    assert log[3] == "pyyntö, osittainen" and "kunnes lasku 7001 on maksettu" in log[5]
    # a second request erases nothing new: exit 1 with the holds named
    again = invoke("erase", str(path), "--client", "A1002", "--reason", "request", "--yes")
    assert again.exit_code == 1 and "Mitään ei voi poistaa nyt" in again.output


def test_suppression_entry_outlives_the_erasure(tmp_path):
    """A direct-marketing objection leaves keyed hashes, never the values, and a returning
    person is flagged by them."""
    path = make(tmp_path, marketing_objection="Kyllä")
    assert invoke("erase", str(path), "--client", "A1002", "--yes").exit_code == 0
    row = sheet_rows(path, "Asiakkaat")[2]
    assert row[12] == "Kyllä"  # the objection stays on the tombstone
    log = sheet_rows(path, "Poistoloki")[1]
    assert "Suoramarkkinointikielto: S-p:" in log[5] and "GDPR 21(3)" in log[5]
    assert found(path) == []
    assert is_suppressed(path, phone="+358 50 7654321")
    assert is_suppressed(path, email="Bertta.Kallioniemi@example.fi")
    assert not is_suppressed(path, phone="040 123 4567")
    # She comes back as a new client, without an objection this time.
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"].append(["A1005", "B", "K", "0507654321", None])
    wb.save(path)
    text = [c.text for c in flag_workbook(path, TODAY).changes if c.client_id == "A1005"]
    assert text == ["Aktiivinen – suoramarkkinointikielto voimassa (aiempi pyyntö)"]


def test_english_workbook_gets_an_english_log(tmp_path):
    """The log row is written in the workbook's language."""
    path = make(tmp_path, lang="en")
    result = invoke("erase", str(path), "--client", "A1002", "--yes")
    assert result.exit_code == 0 and result.output.startswith("Erased: A1002 → P-")
    header, row = sheet_rows(path, "Erasure log")
    assert header[0] == "Log ID" and row[3] == "relationship ended"
    assert row[4].startswith("Clients: First name, Last name") and row[10].startswith("OK:")


# --- the proof ------------------------------------------------------------------------------


@pytest.mark.parametrize("search", ["one-process", "two-processes", "prepared-here"])
def test_values_in_a_comment_and_document_properties_are_refused_then_erased(
    tmp_path, monkeypatch, search
):
    """Name, phone, e-mail and address in a comment and document properties: the erasure is
    refused naming those parts; once removed, the workbook and every backup are clean. The
    search of a big package is split between two processes: here forced on a small one.
    What to search for is prepared in a child; if the child fails, here instead."""
    if search == "two-processes":
        monkeypatch.setattr(erasure, "_SPLIT_SCAN_BYTES", 0)
    if search == "prepared-here":
        real_start = erasure.forking.start

        def start(fn, *args, **kwargs):
            if fn is erasure._prepare:
                return erasure.forking.Collector(lambda: erasure.forking.FAILED, lazy=True)
            return real_start(fn, *args, **kwargs)

        monkeypatch.setattr(erasure.forking, "start", start)
    path = make(tmp_path)
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["R2"].comment = Comment(
        "Bertta Kallioniemi soitti numerosta +358 50 7654321, "
        "bertta.kallioniemi@example.fi, Pispalan valtatie 9 B",
        "Terapeutti",
    )
    wb.properties.subject = "Kallioniemi Bertta 0507654321"
    wb.custom_doc_props.append(StringProperty(name="Yhteys", value="Pispalan valtatie 9 B"))
    wb.save(path)
    assert invoke("flag", str(path)).exit_code == 0  # makes a backup holding all of it
    assert len(list_backups(path, path.parent / "backups")) == 1
    before = sha(path)

    refused = invoke("erase", str(path), "--client", "A1002", "--yes")
    assert refused.exit_code == 1
    assert "docProps/core.xml (ominaisuus / property subject)" in refused.output
    assert "docProps/custom.xml (ominaisuus / property Yhteys)" in refused.output
    assert "(kommentti / comment Asiakkaat!R2)" in refused.output
    assert "Mitään ei kirjoitettu" in refused.output
    assert not [s for s in SECRETS if s in refused.output]
    assert sha(path) == before

    # The therapist deletes the comment and the properties in Excel, then runs it again.
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["R2"].comment = None
    wb.properties.subject = None
    wb.custom_doc_props = CustomPropertyList()
    wb.save(path)
    done = invoke("erase", str(path), "--client", "A1002", "--yes", "--format", "json")
    assert done.exit_code == 0, done.output
    copies = list_backups(path, path.parent / "backups")
    for package in [path, *copies]:
        assert found(package) == [], package.name
    removed = json.loads(done.output)["backups"]["removed"]
    assert len(removed) == 2  # the copy with the comment, and the one this write made
    log_row = sheet_rows(path, "Poistoloki")[1]
    assert not [s for s in SECRETS if any(s.casefold() in str(v).casefold() for v in log_row)]
    assert "2 poistettu kokonaan" in log_row[10]


def test_backups_are_erased_in_place(tmp_path):
    """A backup holding the client gets the same erasure rather than being removed."""
    path = make(tmp_path)
    flag_workbook(path, TODAY)
    [copy] = list_backups(path, path.parent / "backups")
    assert found(copy) != []
    result = invoke("erase", str(path), "--client", "A1002", "--yes", "--format", "json")
    backups = json.loads(result.output)["backups"]
    assert backups["erased"] == [copy.name]
    assert found(copy) == []
    assert sheet_rows(copy, "Asiakkaat")[1][1] == "Aino"  # the rest of the copy is intact


def test_a_value_left_in_another_row_is_refused(tmp_path):
    """Bertta's phone in another client's notes: refused, naming the cell, not the value."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=[client(notes="Sisar, puh. 050-765 43 21"), client(**BERTTA)],
        sheets=SHEETS,
    )
    result = invoke("erase", str(path), "--client", "A1002", "--yes")
    assert result.exit_code == 1
    assert "Asiakkaat!R2" in result.output and "Puhelin" in result.output
    assert "765" not in result.output


def test_a_neighbours_address_is_not_a_leftover(tmp_path):
    """Bertta's street inside a neighbour's address (same column) is the neighbour's value:
    the erasure goes ahead and the log counts it as shared."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=[client(street="Pispalan valtatie 9 B 12"), client(**BERTTA)],
        sheets=SHEETS,
    )
    result = invoke("erase", str(path), "--client", "A1002", "--yes", "--format", "json")
    assert result.exit_code == 0, result.output
    verification = json.loads(result.output)["erasures"][0]["verification"]
    assert verification["ok"] and verification["shared"] >= 1
    assert found(path, ["Bertta", "765 4321", "bertta.kallioniemi"]) == []


def test_phone_forms_cover_the_usual_ways():
    """The phone forms include the national, compact and international ways of writing."""
    forms = phone_forms("040 123 4567")
    assert {"040 123 4567", "0401234567", "+358 40 1234567", "+358401234567"} <= set(forms)
    assert "03 123 4567" in phone_forms("+358 3 1234567")


# --- reapply --------------------------------------------------------------------------------


def test_reapply_after_restoring_an_old_copy(tmp_path):
    """A copy from before the erasure is restored; --reapply finds Bertta by her keyed
    reference in the journal and erases her again."""
    path = make(tmp_path)
    old = tmp_path / "usb-stick-copy.xlsx"
    shutil.copyfile(path, old)
    assert invoke("erase", str(path), "--client", "A1002", "--yes").exit_code == 0
    shutil.copyfile(old, path)  # the restore
    assert found(path) != []
    dry = invoke("erase", str(path), "--reapply", "--dry-run")
    assert dry.exit_code == 0 and "A1002" in dry.output
    result = invoke("erase", str(path), "--reapply", "--yes", "--format", "json")
    assert result.exit_code == 0, result.output
    assert found(path) == []
    log = sheet_rows(path, "Poistoloki")[1]
    assert log[3] == "uudelleen E-1: asiakkuus päättynyt" and log[0] == "E-2"
    for copy in list_backups(path, path.parent / "backups"):
        assert found(copy) == []
    again = invoke("erase", str(path), "--reapply", "--yes")
    assert again.exit_code == 0 and "voimassa" in again.output


def test_reapply_repeats_a_partial_erasure(tmp_path):
    """A restored copy gets exactly the logged partial erasure: the held name stays."""
    path = make(
        tmp_path,
        invoices=[
            {"invoice_number": "7001", "client_id": "A1002", "invoice_date": ENDED, "amount": 80}
        ],
    )
    old = tmp_path / "old.xlsx"
    shutil.copyfile(path, old)
    args = ("erase", str(path), "--client", "A1002", "--reason", "request", "--yes")
    assert invoke(*args).exit_code == 0
    shutil.copyfile(old, path)
    result = invoke("erase", str(path), "--reapply", "--yes")
    assert result.exit_code == 0, result.output
    row = sheet_rows(path, "Asiakkaat")[2]
    assert row[:4] == ("A1002", "Bertta", "Kallioniemi", None)
    assert found(path, ["765 4321", "Pispalan", "iltapäivisin"]) == []
    assert sheet_rows(path, "Poistoloki")[1][3] == "uudelleen E-1: pyyntö, osittainen"


def test_reapply_needs_the_key(tmp_path):
    """Without the key nothing can be recognised: a clear error, exit 2."""
    path = make(tmp_path)
    result = invoke("erase", str(path), "--reapply", "--yes")
    assert result.exit_code == 2 and KEY_FILE_NAME in result.output


# --- the weekly job and the demo ------------------------------------------------------------


def test_erase_due_does_flags_and_approved_erasures_in_one_write(tmp_path):
    """The weekly step: approved rows erased and every status flagged in one write; a second
    run on the same day writes nothing."""
    path = make(tmp_path, approve_erasure="Kyllä")
    result, plans = erase_due(path, TODAY)
    assert [p.client_id for p in plans] == ["A1002"] and result.written
    assert result.flag_cells == 2  # Aino's status, and Bertta's (replaced by the tombstone)
    rows = sheet_rows(path, "Asiakkaat")
    assert rows[1][-1] == "Aktiivinen" and rows[2][-1].startswith("Poistettu 25.11.2026")
    before = sha(path)
    again, plans = erase_due(path, TODAY)
    assert plans == [] and not again.written and sha(path) == before


def test_invoice_rows_go_when_accounting_retention_ends(tmp_path):
    """After the erasure, the weekly step empties the pseudonymous invoice rows on 1.1 of the
    seventh year, logs it, and updates the tombstone's status; then nothing more."""
    invoice = {
        "invoice_number": "7001",
        "client_id": "A1002",
        "invoice_date": dt.date(2025, 3, 1),
        "amount": 80,
        "paid_on": dt.date(2025, 3, 10),
    }
    path = make(tmp_path, invoices=[invoice])
    assert invoke("erase", str(path), "--client", "A1002", "--yes").exit_code == 0
    ref = sheet_rows(path, "Asiakkaat")[2][0]
    _, plans = erase_due(path, dt.date(2031, 12, 31))
    assert plans == []
    _, plans = erase_due(path, dt.date(2032, 1, 1))
    assert [(p.client_id, p.scope) for p in plans] == [(ref, "retention-ended")]
    assert len(sheet_rows(path, "Laskut")) == 1  # only the header is left
    tombstone = sheet_rows(path, "Asiakkaat")[2]
    assert tombstone[0] == ref and tombstone[-1] == "Poistettu 25.11.2026 (loki E-1)"
    log = sheet_rows(path, "Poistoloki")[2]
    assert (log[0], log[2], log[3]) == ("E-2", ref, "kirjanpidon säilytysaika päättyi")
    before = sha(path)
    _, plans = erase_due(path, dt.date(2032, 1, 1))
    assert plans == [] and sha(path) == before


def test_approved_cli(tmp_path):
    """`erase --approved` erases the approved rows and reports refusals with exit 1."""
    path = make(
        tmp_path,
        approve_erasure="Kyllä",
        invoices=[
            {"invoice_number": "7001", "client_id": "A1001", "invoice_date": ENDED, "amount": 80}
        ],
    )
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["K2"] = ENDED  # Aino ended too, approved, with an open invoice
    wb["Asiakkaat"]["Q2"] = "Kyllä"
    wb.save(path)
    result = invoke("erase", str(path), "--approved", "--yes")
    assert result.exit_code == 1
    assert "Poistettu: A1002" in result.output and "A1001: Poisto estetty" in result.output


# --- LibreOffice ------------------------------------------------------------------------------


@pytest.mark.libreoffice
def test_libreoffice_opens_flagged_and_erased_workbooks(tmp_path):
    """LibreOffice opens the flagged and the erased workbook and reads our cells back."""
    path = make(tmp_path, marketing_objection="Kyllä")
    flag_workbook(path, TODAY)
    flagged = soffice_convert(path, "xlsx", tmp_path / "lo-flagged")
    assert sheet_rows(flagged, "Asiakkaat")[2][-1].startswith("Päättynyt 26.10.2026")
    assert invoke("erase", str(path), "--client", "A1002", "--yes").exit_code == 0
    erased = soffice_convert(path, "xlsx", tmp_path / "lo-erased")
    rows = sheet_rows(erased, "Asiakkaat")
    assert rows[2][0].startswith("P-") and rows[2][-1].startswith("Poistettu")
    assert sheet_rows(erased, "Poistoloki")[1][0] == "E-1"


def test_many_ids_and_numbers_are_found_in_one_pass_as_one_by_one():
    """Past eight needles the leftover search reads the text once; it finds the same."""
    text = "a1002 soitti 0401234567; a1005 ja 358501112222, ei a1009x eikä 04012"
    needles = ["a1002", "a1005", "a1009", "401234567", "501112222", "a1010", "4012", "x", "z"]
    assert erasure._present(text, needles) == {n for n in needles if n in text}
    assert erasure._present(text, needles[:3]) == {"a1002", "a1005", "a1009"}


@pytest.mark.parametrize("step", ["searched-package", "log-cells"])
def test_a_patch_that_changes_more_than_planned_is_never_written(tmp_path, monkeypatch, step):
    """The erasure's patch is proven while the package is searched, and its last step (the
    log's hash and verification cells) on its own: a patch that also changed another cell at
    either step is refused, and the workbook, its backups and the journal stay as they were."""
    import sheetreg.xlsxpatch as xp

    path = make(tmp_path)
    before = sha(path)
    real = xp.patch_workbook
    counter = tmp_path / "calls"  # the first patch may be made by a spare: counted on disk

    def sloppy(data, edits, **options):
        with counter.open("a") as fh:
            fh.write(".")
        calls = counter.read_text()
        result = real(data, edits, **options)
        if len(calls) == (1 if step == "searched-package" else 2):
            tampered = real(result.data, [xp.CellEdit("Asiakkaat", "B2", "Muutettu")])
            result.data = tampered.data
        return result

    monkeypatch.setattr(xp, "patch_workbook", sloppy)
    refused = invoke("erase", str(path), "--client", "A1002", "--yes")
    assert refused.exit_code == 1
    assert counter.read_text() == ".."  # the searched package, then the log cells
    assert "fidelity check: xl/worksheets/sheet1.xml" in refused.output
    assert sha(path) == before
    assert list_backups(path, path.parent / "backups") == []
    assert read_journal(path) == []


@pytest.mark.parametrize("fault", ["early-read-back", "written-file"])
def test_an_erasure_whose_read_back_fails_is_never_written(tmp_path, monkeypatch, fault):
    """The erasure's patch is read back by python-calamine while the package is searched,
    and the written file must hold exactly the bytes checked: a failure of either refuses
    the write, and the workbook, its backups and the journal stay as they were."""
    import sheetreg.workbook as wbmod

    path = make(tmp_path)
    before = sha(path)
    if fault == "early-read-back":
        real_check = wbmod._reopen_check_plain

        def wrong(plain, edits, *placed):  # the patch's cells fail; the log's would pass
            if any(e.sheet == "Asiakkaat" for e in edits):
                raise FidelityError("reopen check: Asiakkaat!B3 does not read back as written")
            real_check(plain, edits, *placed)

        monkeypatch.setattr(wbmod, "_reopen_check_plain", wrong)
    else:
        real = wbmod._write_new_file

        def flipped(folder, prefix, suffix, data):
            written = real(folder, prefix, suffix, data)
            if suffix == ".tmp" and prefix.startswith(f".{path.name}"):
                raw = bytearray(written.read_bytes())
                raw[len(raw) // 2] ^= 0xFF
                written.write_bytes(bytes(raw))
            return written

        monkeypatch.setattr(wbmod, "_write_new_file", flipped)
    refused = invoke("erase", str(path), "--client", "A1002", "--yes")
    assert refused.exit_code == 1
    expected = "does not read back" if fault == "early-read-back" else "differs from the checked"
    assert expected in refused.output
    assert sha(path) == before
    assert list_backups(path, path.parent / "backups") == []
    assert read_journal(path) == []


def test_the_written_file_is_read_back_for_the_log_cells_only(tmp_path, monkeypatch):
    """Every other edited cell is read back from the patch before it is written; the file
    itself is read back for the log's hash and verification cells."""
    import sheetreg.workbook as wbmod

    path = make(tmp_path)
    early: list[set[str]] = []
    late: list[set[str]] = []
    real_plain, real_file = wbmod._reopen_check_plain, wbmod._reopen_check

    def on_patch(plain, edits, *placed):
        early.append({f"{e.sheet}!{e.cell}" for e in edits})
        return real_plain(plain, edits, *placed)

    def on_file(tmp, edits, password=None):
        late.append({f"{e.sheet}!{e.cell}" for e in edits})
        return real_file(tmp, edits, password)

    monkeypatch.setattr(wbmod.forking, "CAN_FORK", False)  # in-process: the lists fill
    monkeypatch.setattr(wbmod, "_reopen_check_plain", on_patch)
    monkeypatch.setattr(wbmod, "_reopen_check", on_file)
    done = invoke("erase", str(path), "--client", "A1002", "--yes")
    assert done.exit_code == 0, done.output
    # The file's check reads its cells through the same reader as the patch's check.
    assert len(late) == 1 and len(early) == 2 and late[0] in early
    log_cells = late[0]
    assert log_cells and all(cell.startswith("Poistoloki!") for cell in log_cells)
    (patch_cells,) = [cells for cells in early if cells != log_cells]
    assert "Asiakkaat!B3" in patch_cells and not log_cells & patch_cells
    assert sheet_rows(path, "Poistoloki")[1][0] == "E-1"


def test_suppressed_rows_match_every_form_of_a_contact(tmp_path):
    """The rows whose phone or e-mail matches an entry, whatever form either is written in;
    an erasure's own entries are matched as text: the rows the tokens would find."""
    from sheetreg.erasure import ErasureKey, suppressed_rows
    from sheetreg.workbook import read_register

    path = build_register(
        tmp_path / "r.xlsx",
        clients=[
            client(phone="044 555 6666", email="a@example.fi"),
            client(client_id="A1002", phone="040 123 4567", email="x@example.fi"),
            client(client_id="A1003", phone="+358401234567", email="y@example.fi"),
            client(client_id="A1004", phone="", email="Y@Example.fi"),
            client(client_id="A1005", phone="050 999 8888", email=""),
        ],
    )
    register = read_register(path)
    key = ErasureKey(b"s" * 32, "file")
    tokens = set(key.suppression_tokens("0401234567", "y@example.fi"))
    assert suppressed_rows(register, key, tokens) == {1, 2, 3}
    assert suppressed_rows(register, key, set(key.suppression_tokens("0509998888", "-"))) == {4}
    assert suppressed_rows(register, None, tokens) == set()
    # An erasure's own entries are matched as text: the rows the tokens would find.
    from sheetreg.erasure import contact_rows

    for contacts in [
        [("0401234567", None)],
        [(None, " Y@EXAMPLE.FI ")],
        [("+358 50 999 8888", "-"), ("044-555 6666", None)],
        [(None, None), ("", "")],
    ]:
        tokens = {t for phone, email in contacts for t in key.suppression_tokens(phone, email)}
        assert contact_rows(register, contacts) == suppressed_rows(register, key, tokens)


_PHONE_TEXT = st.one_of(
    st.sampled_from(["", " ", "040 123 4567", "+358 40 1234567", "00358401234567", "(09) 87"]),
    st.text(alphabet="0123456789 +-()./\u00a0\0x", max_size=16),
    st.integers(0, 10**10),
)
_EMAIL_TEXT = st.one_of(
    st.sampled_from(["", " Y@Example.fi ", "y@example.fi", "STRASSE@x.fi", "straße@x.fi"]),
    st.text(alphabet="aAyYß@.x \0", max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    phones=st.lists(_PHONE_TEXT, max_size=12),
    emails=st.lists(_EMAIL_TEXT, max_size=12),
    contacts=st.lists(st.tuples(_PHONE_TEXT, _EMAIL_TEXT), max_size=3),
)
def test_contact_rows_found_in_one_search_are_the_rows_compared_one_by_one(
    phones: list[object], emails: list[str], contacts: list[tuple[object, str]]
) -> None:
    """The rows a joined search of the columns finds are exactly those whose phone or
    e-mail has one of the contacts' forms: numbers written any way (+358, 00358, 0, junk),
    e-mails in any case, cells that are numbers, empty, or hold a NUL (the slow path)."""
    n = max(len(phones), len(emails))
    phone_values = [*phones, *[""] * (n - len(phones))]
    email_values = [*emails, *[""] * (n - len(emails))]
    forms = [erasure._contact_forms(values.as_text(p), values.as_text(e)) for p, e in contacts]
    want_phones = {p for p, _e in forms if p is not None}
    want_emails = {e for _p, e in forms if e is not None}
    rows = list(range(n))
    got = erasure._contact_matches(phone_values, email_values, rows, want_phones, want_emails)
    slowly = erasure._contact_matches_slowly(
        phone_values, email_values, rows, want_phones, want_emails
    )
    assert got == slowly


def test_long_text_is_searched_in_overlapping_pieces(monkeypatch):
    """The automaton searches a long text a piece at a time: a word across any seam between
    two pieces, at either end of the text, or in the last short piece is still found; a word
    that is not there is not."""
    import ahocorasick

    monkeypatch.setattr(erasure, "_AC_PIECE", 64)
    words = ["hämeenkatu", "\naino virtanen\n", "040–123"]
    automaton = ahocorasick.Automaton()
    for word in [*words, "missing"]:
        automaton.add_word(word, word)
    automaton.make_automaton()
    longest = max(map(len, words))
    for word in words:
        for shift in range(len(word) + 1):
            at = 64 - shift  # the word starts `shift` characters before a seam
            text = "x" * at + word + "y" * (300 - at - len(word)) + words[0]
            assert set(erasure._found_in(automaton, text, longest)) == {word, words[0]}
    assert erasure._present("z" * 200 + "040–123", ["040–123", *"abcdefgh"]) == {"040–123"}


def test_separators_are_dropped_piece_by_piece(monkeypatch):
    """Without phone separators, a long text made a piece at a time is what one pass over
    the whole would give: a number split across pieces, no-break spaces and non-ASCII text."""
    monkeypatch.setattr(erasure, "_DIGITS_PIECE", 5)
    text = "puh. 040\u00a0123 45-67 / (09) 876.543 – Hämeenkatu 1 A\n+358 40 1234567"
    whole = text.encode().translate(None, b" -./()").replace("\u00a0".encode(), b"")
    assert erasure._without_separators(text) == whole
    assert b"0401234567" in whole and b"09876543" in whole
    assert erasure._without_separators("") == b""
