"""The Requests sheet: Due cells, the open list, --process, and what each request type needs."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetreg.cli import cli
from sheetreg.requests import plan_requests
from sheetreg.workbook import list_backups, read_register

from conftest import TODAY, build_register, client

ROOT = Path(__file__).resolve().parents[1]
D = dt.date

CLIENTS = [
    client(),  # A1001 Aino Virtanen
    client(
        client_id="A1002",
        first_name="Eero",
        last_name="Korhonen",
        email="eero.korhonen@example.fi",
        phone="050 765 4321",
        survey_consent="Kyllä",
        marketing_objection="Kyllä",
        partner="Fysioterapia Esimerkki Oy",
    ),
    client(
        client_id="A1003",
        first_name="Helmi",
        last_name="Nieminen",
        email="helmi.n@example.fi",
        survey_consent="Ei",
        marketing_objection="Ei",
    ),
]


def req(request_id: str, received: dt.date | None, client_id: str, kind: str, **more):
    """A request row: verified, not extended, open, unless ``more`` says otherwise."""
    row = {
        "request_id": request_id,
        "received": received,
        "client_id": client_id,
        "type": kind,
        "channel": "Sähköposti",
        "identity_verified": "Kyllä",
        "extended": "Ei",
        "status": "Avoin",
    }
    row.update(more)
    return row


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def requests_sheet(path: Path) -> dict[str, dict[str, object]]:
    """The Requests sheet reread, as {request_id: {column key: raw value}}."""
    table = read_register(path).table("requests")
    assert table is not None
    return {
        table.text(i, "request_id"): {key: table.get(i, key) for key in table.columns}
        for i in table.nonblank_rows()
    }


@pytest.fixture
def register(tmp_path: Path) -> Path:
    """A register with one request of each kind the tests need."""
    return build_register(
        tmp_path / "rekisteri.xlsx",
        clients=CLIENTS,
        invoices=[
            {
                "invoice_number": "5001",
                "client_id": "A1001",
                "invoice_date": D(2026, 9, 1),
                "amount": 90.0,
            }
        ],
        disclosures=[
            {
                "date": D(2026, 5, 4),
                "client_id": "A1002",
                "recipient": "Perintäpalvelu Esimerkki Oy",
                "basis": "Perintä",
                "data_categories": "Nimi, osoite",
            }
        ],
        requests=[
            req("P1", D(2026, 11, 20), "A1001", "Tarkastus"),
            req("P2", D(2026, 10, 1), "A1003", "Oikaisu"),  # due 2.11.: overdue
            req("P3", D(2026, 11, 10), "A1002", "Siirto", identity_verified="Ei"),
            req("P4", D(2026, 4, 15), "A1001", "Tarkastus", status="Valmis"),
            req("P5", D(2026, 11, 1), "A1002", "Rajoitus", extended="Kyllä"),
        ],
    )


def test_plan_computes_due_dates_and_orders_open_requests(register):
    """Open requests come by days left, overdue first; closed ones are not listed."""
    plan = plan_requests(read_register(register), TODAY)
    assert [i.request_id for i in plan.open_items] == ["P2", "P3", "P1", "P5"]
    days = {i.request_id: i.days_left(TODAY) for i in plan.open_items}
    assert days == {"P2": -23, "P3": 15, "P1": 26, "P5": 68}
    due = {i.request_id: i.deadline.due for i in plan.items}
    assert due == {
        "P1": D(2026, 12, 21),  # 20.12.2026 is a Sunday
        "P2": D(2026, 11, 2),  # 1.11.2026 is a Sunday
        "P3": D(2026, 12, 10),
        "P4": D(2026, 5, 15),  # the PRODUCT.md example
        "P5": D(2027, 2, 1),  # extended: 1.2.2027, a Monday
    }
    p5 = next(i for i in plan.items if i.request_id == "P5")
    assert p5.extension_notice_by == D(2026, 12, 1)
    assert [(i.code, i.cell) for i in plan.issues] == [
        ("request-overdue", "H3"),
        ("request-unverified", "F4"),
    ]


def test_requests_writes_only_changed_due_cells_and_is_idempotent(register, tmp_path):
    """The first run writes every Due cell; the second writes nothing and makes no backup."""
    first = invoke("requests", str(register), "--today", "2026-11-25", "--format", "json")
    data = json.loads(first.stdout)
    assert data["cells_written"] == 5 and data["due_cells"] == 5
    assert requests_sheet(register)["P4"]["due"] in (D(2026, 5, 15), dt.datetime(2026, 5, 15))
    before = register.read_bytes()
    backups = list_backups(register, tmp_path / "backups")
    second = invoke("requests", str(register), "--today", "2026-11-25", "--format", "json")
    again = json.loads(second.stdout)
    assert again["cells_written"] == 0 and again["written"] is False
    assert register.read_bytes() == before
    assert list_backups(register, tmp_path / "backups") == backups


def test_only_a_wrong_due_cell_is_rewritten(tmp_path):
    """A Due cell already right (as a date or as text) is left alone; a wrong one is fixed."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=CLIENTS,
        requests=[
            req("P1", D(2026, 4, 15), "A1001", "Tarkastus", due=D(2026, 5, 15)),
            req("P2", D(2026, 4, 15), "A1001", "Tarkastus", due="15.5.2026"),
            req("P3", D(2026, 1, 31), "A1001", "Tarkastus", due=D(2026, 2, 28)),
        ],
    )
    plan = plan_requests(read_register(path), TODAY)
    assert [(e.cell, e.value) for e in plan.due_edits] == [("H4", D(2026, 3, 2))]


def test_stdout_names_no_one(register):
    """The report shows request IDs, types, client IDs and dates, never names or contacts."""
    for fmt in ("text", "json"):
        result = invoke("requests", str(register), "--today", "2026-11-25", "--format", fmt)
        for person in CLIENTS:
            for key in ("first_name", "last_name", "email", "phone", "street", "partner"):
                if person.get(key):
                    assert str(person[key]) not in result.output, (fmt, key)
        assert "Perintäpalvelu" not in result.output
        assert "P2" in result.output and "A1003" in result.output


def test_exit_code_one_for_overdue_or_unverified(register, tmp_path):
    """Overdue or unverified open requests make the command exit 1; a clean sheet exits 0."""
    assert invoke("requests", str(register), "--today", "2026-11-25").exit_code == 1
    clean = build_register(
        tmp_path / "clean.xlsx",
        clients=CLIENTS,
        requests=[req("P1", D(2026, 11, 20), "A1001", "Tarkastus")],
    )
    result = invoke("requests", str(clean), "--today", "2026-11-25")
    assert result.exit_code == 0, result.output
    assert "sheetreg requests" in result.output and "--process" in result.output


def test_process_makes_extracts_records_outcome_and_skips_unverified(register, tmp_path):
    """--process answers the verified Access request, reports the unverified Portability one."""
    result = invoke(
        "requests", str(register), "--today", "2026-11-25", "--process", "--format", "json"
    )
    assert result.exit_code == 1  # P2 is overdue and P3 unverified
    data = json.loads(result.stdout)
    assert [(p["client_id"], p["requests"]) for p in data["processed"]] == [("A1001", ["P1"])]
    folder = tmp_path / "extracts" / "A1001-2026-11-25"
    assert Path(data["processed"][0]["folder"]) == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "A1001-2026-11-25.html",
        "A1001-2026-11-25.json",
        "A1001-2026-11-25.xlsx",
    ]
    rows = requests_sheet(register)
    assert rows["P1"]["outcome"] == "Ote A1001-2026-11-25 tehty 25.11.2026"
    assert rows["P3"]["outcome"] in ("", None)
    assert {i["code"] for i in data["issues"]} >= {"request-unverified", "request-overdue"}
    p1 = next(item for item in data["open"] if item["request_id"] == "P1")
    assert p1["action"] == "deliver-extract"
    assert not (tmp_path / "extracts" / "A1002-2026-11-25").exists()


def test_second_process_writes_nothing(register, tmp_path):
    """A second --process run finds nothing to do: no write, no new extract."""
    invoke("requests", str(register), "--today", "2026-11-25", "--process")
    before = register.read_bytes()
    folder = tmp_path / "extracts" / "A1001-2026-11-25"
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    result = invoke(
        "requests", str(register), "--today", "2026-11-25", "--process", "--format", "json"
    )
    data = json.loads(result.stdout)
    assert data["processed"] == [] and data["written"] is False
    assert register.read_bytes() == before
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps


def test_process_portability_and_out_folder(tmp_path):
    """A verified Portability request gets the same extract, under --out when given."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=CLIENTS,
        requests=[
            req("P1", D(2026, 11, 20), "A1002", "Siirto"),
            req("P2", D(2026, 11, 21), "A1002", "Tarkastus"),
        ],
    )
    out = tmp_path / "elsewhere"
    result = invoke("requests", str(path), "--today", "2026-11-25", "--process", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "A1002-2026-11-25" / "A1002-2026-11-25.json").exists()
    payload = json.loads((out / "A1002-2026-11-25" / "A1002-2026-11-25.json").read_text())
    assert payload["requests"] == ["P1", "P2"]  # one extract answers both
    rows = requests_sheet(path)
    assert rows["P1"]["outcome"] == rows["P2"]["outcome"] == "Ote A1002-2026-11-25 tehty 25.11.2026"


def test_process_refuses_while_the_workbook_is_open(register, tmp_path):
    """With Excel's lock file present no extract is made and nothing is written (exit 1)."""
    lock = register.with_name("~$" + register.name)
    lock.write_bytes(b"x")
    before = register.read_bytes()
    result = invoke("requests", str(register), "--today", "2026-11-25", "--process")
    assert result.exit_code == 1
    assert "Excel" in result.output
    assert register.read_bytes() == before
    assert not (tmp_path / "extracts").exists()


def _item(path: Path, request_id: str, today: dt.date = TODAY, **kwargs):
    plan = plan_requests(read_register(path), today, **kwargs)
    return next(i for i in plan.items if i.request_id == request_id)


def test_other_types_get_tasks_and_column_changes(tmp_path):
    """Rectification/Restriction are tasks naming recipients' cells; Objection and Consent
    withdrawal name the cell to change, or say it already says so."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=CLIENTS,
        disclosures=[
            {
                "date": D(2026, 5, 4),
                "client_id": "A1002",
                "recipient": "Perintäpalvelu Esimerkki Oy",
                "basis": "Perintä",
            }
        ],
        requests=[
            req("R1", D(2026, 11, 20), "A1002", "Oikaisu"),
            req("R2", D(2026, 11, 20), "A1003", "Rajoitus"),
            req("O1", D(2026, 11, 20), "A1001", "Vastustus"),
            req("O2", D(2026, 11, 20), "A1002", "Vastustus"),
            req("C1", D(2026, 11, 20), "A1001", "Suostumuksen peruutus"),
            req("C2", D(2026, 11, 20), "A1003", "Suostumuksen peruutus"),
        ],
    )
    r1 = _item(path, "R1")
    assert r1.action == "rectify"
    assert "Luovutukset rivit 2" in r1.todo and "Asiakkaat!N3" in r1.todo
    assert "Perintäpalvelu" not in r1.todo and "Fysioterapia" not in r1.todo
    r2 = _item(path, "R2", lang="en")
    assert r2.action == "restrict" and "not disclosed" in r2.todo
    o1 = _item(path, "O1")
    assert o1.action == "set-column" and "Asiakkaat!M2" in o1.todo and "Kyllä" in o1.todo
    assert _item(path, "O2").action == "close-request"
    c1 = _item(path, "C1", lang="en")
    assert c1.action == "set-column" and "Asiakkaat!L2" in c1.todo and "No" in c1.todo
    assert _item(path, "C2").action == "close-request"


def test_erasure_hands_over_or_waits(tmp_path):
    """An Erasure request goes to the erasure plan when given one, else is listed as pending."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=CLIENTS,
        requests=[req("E1", D(2026, 11, 20), "A1003", "Poisto")],
    )
    seen = []

    def handover(register, item, today, lang):
        seen.append((item.client_id, today, lang))
        return "erasure-plan", "planned"

    item = _item(path, "E1", erasure=handover)
    assert (item.action, item.todo) == ("erasure-plan", "planned")
    assert seen == [("A1003", TODAY, "fi")]
    default = _item(path, "E1")
    assert default.action == "erasure-plan"
    assert "sheetreg erase r.xlsx --client A1003 --reason request" in default.todo
    assert "Helmi" not in default.todo and "Nieminen" not in default.todo


def test_rows_that_cannot_be_handled_are_reported(tmp_path):
    """No received date, an unknown type or an unknown client: fix-row with the cell named."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=CLIENTS,
        requests=[
            req("X1", None, "A1001", "Tarkastus"),
            req("X2", D(2026, 11, 20), "A1001", "Kirje"),
            req("X3", D(2026, 11, 20), "A9999", "Tarkastus"),
        ],
    )
    plan = plan_requests(read_register(path), TODAY)
    assert {i.request_id: i.action for i in plan.items} == dict.fromkeys(
        ("X1", "X2", "X3"), "fix-row"
    )
    assert [(i.code, i.cell) for i in plan.issues] == [
        ("request-no-received-date", "B2"),
        ("request-unknown-type", "D3"),
        ("request-unknown-client", "C4"),
    ]
    assert plan.to_process == []


def test_english_workbook_english_outcome(tmp_path):
    """An English register gets English messages and an English Outcome text."""
    path = build_register(
        tmp_path / "r.xlsx",
        lang="en",
        clients=CLIENTS,
        requests=[req("P1", D(2026, 11, 20), "A1001", "Access", status="Open", channel="Email")],
    )
    result = invoke("requests", str(path), "--today", "2026-11-25", "--process")
    assert result.exit_code == 0, result.output
    assert "Open requests (1)" in result.output
    assert requests_sheet(path)["P1"]["outcome"] == "Extract A1001-2026-11-25 made 2026-11-25"


def test_unusable_file_exits_two(tmp_path):
    """A file that is not a workbook: one line, exit 2."""
    path = tmp_path / "r.xlsx"
    path.write_text("not a workbook")
    result = CliRunner().invoke(cli, ["requests", str(path)])
    assert result.exit_code == 2


def test_posix_launcher_processes_the_configured_workbook(tmp_path):
    """workflows/process-requests.sh runs --process on SHEETREG_WORKBOOK, no display needed."""
    today = dt.date.today()
    path = build_register(
        tmp_path / "rekisteri.xlsx",
        clients=CLIENTS,
        requests=[req("P1", today - dt.timedelta(days=2), "A1001", "Tarkastus")],
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DISPLAY", "WAYLAND_DISPLAY", "SHEETREG_WORKBOOK"}
    }
    env.update(
        SHEETREG_WORKBOOK=str(path),
        SHEETREG=str(Path(sys.executable).with_name("sheetreg")),
        CI="1",
    )
    proc = subprocess.run(
        ["sh", str(ROOT / "workflows" / "process-requests.sh")],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = tmp_path / "extracts" / f"A1001-{today.isoformat()}"
    assert (folder / f"{folder.name}.xlsx").exists()
    assert str(tmp_path / "extracts") in proc.stdout
    assert "Aino" not in proc.stdout + proc.stderr
    assert requests_sheet(path)["P1"]["outcome"].startswith(f"Ote {folder.name}")


def test_posix_launcher_reads_the_config_file_and_passes_arguments(tmp_path):
    """Without SHEETREG_WORKBOOK the launcher reads workflows/workbook.txt; args pass through."""
    path = build_register(
        tmp_path / "rekisteri.xlsx",
        clients=CLIENTS,
        requests=[req("P1", D(2026, 11, 20), "A1001", "Tarkastus")],
    )
    workflows = tmp_path / "checkout" / "workflows"
    workflows.mkdir(parents=True)
    launcher = workflows / "process-requests.sh"
    shutil.copy(ROOT / "workflows" / "process-requests.sh", launcher)
    (workflows / "workbook.txt").write_text(f"# the register\n{path}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "SHEETREG_WORKBOOK"}}
    env.update(SHEETREG=str(Path(sys.executable).with_name("sheetreg")), CI="1")
    proc = subprocess.run(
        ["sh", str(launcher), "--today", "2026-11-25", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "extracts" / "A1001-2026-11-25").is_dir()
    (workflows / "workbook.txt").unlink()
    proc = subprocess.run(
        ["sh", str(launcher)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2 and "workbook.txt" in proc.stderr


def test_windows_launcher_matches_the_posix_one():
    """The .cmd launcher has CRLF line ends and uses the same configuration and command."""
    data = (ROOT / "workflows" / "process-requests.cmd").read_bytes()
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    text = data.decode("ascii")
    for needle in ("SHEETREG_WORKBOOK", "workbook.txt", "requests", "--process", "explorer"):
        assert needle in text
