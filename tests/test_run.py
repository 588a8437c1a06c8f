"""`sheetreg run`: the weekly job on a register with something of every kind, its hygiene
report (fi and en), idempotence, the run log, refusals, and the report in headless Chromium."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from sheetreg.cli import cli
from sheetreg.deadlines import due_date
from sheetreg.report import request_colour
from sheetreg.run import previous_run, run_weekly
from sheetreg.schema import CLIENTS, DISCLOSURES, ERASURE_LOG, INVOICES, REQUESTS

from conftest import TODAY, build_register, client, soffice_convert

ROOT = Path(__file__).resolve().parents[1]
ENDED = dt.date(2026, 10, 1)
YESTERDAY = TODAY - dt.timedelta(days=1)
# Every personal value in the register below: none may appear in a report or the run log.
PERSONAL = [
    "Virtanen",
    "Bertta",
    "Kallioniemi",
    "Cecilia",
    "Daniel",
    "Eino",
    "Fanni",
    "Gustav",
    "040 123 4567",
    "0401234567",
    "aino.virtanen@example.fi",
    "Hämeenkatu",
    "Oikeusjuttu kesken",  # a manual hold's reason: free text
]


@pytest.fixture(autouse=True)
def _platform_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run log goes to the test's own folder, never the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def received_for(colour: str) -> dt.date:
    """A received date whose request is in the given colour band today."""
    for back in range(90):
        received = TODAY - dt.timedelta(days=back)
        if request_colour((due_date(received) - TODAY).days) == colour:
            return received
    raise AssertionError(colour)


def make_register(tmp_path: Path, lang: str = "fi") -> Path:
    """Something of every kind: active, ending, newly ended, approved and erasable, approved
    but blocked by an open invoice, a manual hold, requests in every colour, a verified access
    request without an extract, a disclosure (a recipient to notify), a validation error."""
    yes = "Kyllä" if lang == "fi" else "Yes"
    access, fix = ("Tarkastus", "Oikaisu") if lang == "fi" else ("Access", "Rectification")
    clients = [
        client(),
        client(
            client_id="A1002",
            first_name="Bertta",
            last_name="Kallioniemi",
            phone="040 765 4321",
            email="bertta.k@example.fi",
            end=TODAY + dt.timedelta(days=30),
        ),
        client(
            client_id="A1003",
            first_name="Cecilia",
            phone="040 111 2222",
            email="cecilia@example.fi",
            end=YESTERDAY,
        ),
        client(
            client_id="A1004",
            first_name="Daniel",
            phone="040 333 4444",
            email="daniel.d@example.fi",
            street="Pispalan valtatie 9",
            end=ENDED,
            approve_erasure=yes,
        ),
        client(
            client_id="A1005",
            first_name="Eino",
            phone="040 555 6666",
            email="eino@example.fi",
            end=ENDED,
            approve_erasure=yes,
        ),
        client(
            client_id="A1006",
            first_name="Fanni",
            phone="040 777 8888",
            email="fanni@example.fi",
            hold_until=dt.date(2027, 3, 1),
            hold_reason="Oikeusjuttu kesken",
        ),
        client(client_id="A1007", first_name="Gustav", email="not-an-address", phone=None),
    ]
    if lang == "en":
        for row in clients:
            row["billing_method"] = "Email"
            row["survey_consent"] = "Yes"
            row["marketing_objection"] = "No"
    requests = [
        {
            "request_id": "R1",
            "received": received_for("green"),
            "client_id": "A1001",
            "type": access,
            "identity_verified": yes,
        },
        {"request_id": "R2", "received": received_for("amber"), "client_id": "A1002", "type": fix},
        {"request_id": "R3", "received": received_for("red"), "client_id": "A1006", "type": fix},
        {
            "request_id": "R4",
            "received": received_for("overdue"),
            "client_id": "A1006",
            "type": fix,
        },
    ]
    invoices = [
        {
            "invoice_number": "7004",
            "client_id": "A1004",
            "invoice_date": dt.date(2026, 9, 1),
            "amount": 80,
            "paid_on": dt.date(2026, 9, 10),
        },
        {"invoice_number": "7005", "client_id": "A1005", "invoice_date": ENDED, "amount": 90},
    ]
    disclosures = [
        {
            "date": ENDED,
            "client_id": "A1004",
            "recipient": "Fysio Oy",
            "basis": "Yhteistyöpalvelu" if lang == "fi" else "Joint service",
        }
    ]
    name = "rekisteri.xlsx" if lang == "fi" else "register.xlsx"
    return build_register(
        tmp_path / name,
        clients=clients,
        requests=requests,
        invoices=invoices,
        disclosures=disclosures,
        lang=lang,
        sheets=(CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG),
    )


def invoke(*args: str, today: dt.date = TODAY):
    return CliRunner().invoke(cli, [*args, "--today", today.isoformat()])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cell(path: Path, sheet: str, ref: str) -> Any:
    return openpyxl.load_workbook(path)[sheet][ref].value


def assert_no_personal_data(*texts: str) -> None:
    for text in texts:
        leaked = [value for value in PERSONAL if value in text]
        assert leaked == [], leaked


# --- the whole job ----------------------------------------------------------------------------


def test_the_weekly_job_does_everything_in_one_write(tmp_path):
    path = make_register(tmp_path)
    result = invoke("run", str(path), "--format", "json")
    assert result.exit_code == 1, result.output  # an error finding, an overdue request, a refusal
    out = json.loads(result.output)
    counts = out["counts"]
    assert counts["clients"] == 7 and counts["erased"] == 1 and counts["erasures"] == 1
    assert counts["active"] == 3 and counts["ending"] == 1 and counts["ended"] == 2
    assert counts["awaiting_approval"] == 1  # A1003; A1004 is erased, A1005 approved
    assert counts["blocked"] == 1 and counts["erasures_refused"] == 1
    assert counts["errors"] >= 1 and counts["requests_open"] == 4
    assert counts["requests_overdue"] == 1 and counts["requests_due_soon"] == 2
    assert counts["extracts"] == 1 and counts["recipients_to_notify"] == 1
    assert counts["verification_failed"] == 0 and counts["cells_written"] > 0
    assert out["written"] is True
    # One write; its backup held the erased client, so the erasure removed it again.
    assert list((tmp_path / "backups").iterdir()) == []
    assert out["erasures"][0]["verification"].startswith("OK")

    # The workbook: flags, due dates, the extract's outcome, the erasure and its log row.
    wb = openpyxl.load_workbook(path)
    clients = {row[0]: row for row in wb["Asiakkaat"].iter_rows(min_row=2, values_only=True)}
    assert clients["A1001"][-1] == "Aktiivinen"
    assert clients["A1003"][-1] == "Päättynyt 24.11.2026 – poisto odottaa hyväksyntää"
    assert clients["A1005"][-1].startswith("Päättynyt 1.10.2026 – poisto estetty: avoin lasku 7005")
    assert "A1004" not in clients and any(str(k).startswith("P-") for k in clients)
    requests = {row[0]: row for row in wb["Pyynnöt"].iter_rows(min_row=2, values_only=True)}
    assert all(isinstance(requests[r][7], dt.datetime) for r in requests)  # Due written
    assert "A1001-" in requests["R1"][-1]  # the extract's folder in Outcome
    log = list(wb["Poistoloki"].iter_rows(min_row=2, values_only=True))
    assert len(log) == 1 and str(log[0][-1]).startswith("OK")
    assert (tmp_path / "extracts").is_dir() and any((tmp_path / "extracts").iterdir())

    # The report's sections.
    assert [e["log_id"] for e in out["erasures"]] == ["E-1"]
    assert out["erasures"][0]["client_id"] == "A1004" and out["erasures"][0]["verified"]
    assert [(r["name"], r["client_id"]) for r in out["recipients"]] == [("Fysio Oy", "A1004")]
    assert [r["client_id"] for r in out["newly_ended"]] == ["A1003"]
    assert [r["client_id"] for r in out["awaiting_approval"]] == ["A1003"]
    assert out["awaiting_approval"][0]["approve_cell"].startswith("Asiakkaat!")
    holds = {(h["client_id"], h["kind"]) for h in out["holds"]}
    assert holds == {("A1005", "open-invoice"), ("A1006", "manual-hold")}
    manual = next(h for h in out["holds"] if h["kind"] == "manual-hold")
    assert manual["until"] == "2027-03-01" and manual["source"].startswith("Asiakkaat!")
    colours = {r["request_id"]: r["colour"] for r in out["requests"]}
    assert colours == {"R1": "green", "R2": "amber", "R3": "red", "R4": "overdue"}
    assert [r["client_id"] for r in out["erasures_refused"]] == ["A1005"]
    assert out["erasures_refused"][0]["refusals"][0]["code"] == "open-invoice"
    codes = {g["code"] for g in out["findings"]}
    assert "invalid-email" in codes
    assert out["extracts"][0]["client_id"] == "A1001"
    assert sum(out["chart"]["ended"]) == 3 and len(out["chart"]["months"]) == 12

    # The files: one pair, named by date; no personal data in them.
    html = (tmp_path / "reports" / "hygiene-2026-11-25.html").read_text(encoding="utf-8")
    data = (tmp_path / "reports" / "hygiene-2026-11-25.json").read_text(encoding="utf-8")
    assert json.loads(data)["counts"] == counts
    assert_no_personal_data(html, data, result.output)
    assert '<html lang="fi">' in html and "Asiakasrekisterin hygieniaraportti" in html
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    for section in ("glance", "findings", "newly-ended", "awaiting-approval", "holds"):
        assert f'id="{section}"' in html
    for section in ("requests", "erasures", "recipients", "chart", "extracts", "refused"):
        assert f'id="{section}"' in html
    assert 'class="overdue"' in html and 'class="amber"' in html and 'class="green"' in html

    # LibreOffice opens the workbook the job wrote.
    converted = soffice_convert(path, "csv", tmp_path / "lo")
    assert "Aktiivinen" in converted.read_text(encoding="utf-8", errors="replace")


def test_a_second_run_on_the_same_day_changes_nothing(tmp_path):
    path = make_register(tmp_path)
    first = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert first.written
    after_first = sha(path)
    backups = sorted((tmp_path / "backups").iterdir())
    second = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert not second.written and sha(path) == after_first
    assert sorted((tmp_path / "backups").iterdir()) == backups
    assert second.counts["cells_written"] == 0 and second.counts["extracts"] == 0
    assert second.counts["erasures"] == 0
    # Same state: the period's erasure is still reported, from the log.
    for key in ("clients", "erased", "active", "ended", "awaiting_approval", "holds"):
        assert second.counts[key] == first.counts[key], key
    assert [e["log_id"] for e in second.report["erasures"]] == ["E-1"]
    assert second.files["json"].name == "hygiene-2026-11-25-2.json"
    assert len(list((tmp_path / "extracts").iterdir())) == 1


@pytest.mark.parametrize("hashing", ["here", "in-a-child"])
def test_an_objection_erased_today_is_flagged_today(tmp_path, monkeypatch, hashing):
    """Erasing a client who objected to direct marketing leaves a suppression entry; another
    row with the same phone is flagged in the same write, so the next run writes nothing. A
    big register's rows are hashed by a forked child (forced here on a small one)."""
    if hashing == "in-a-child":
        import sheetreg.run

        monkeypatch.setattr(sheetreg.run, "_worth_forking", lambda register: True)
    path = build_register(
        tmp_path / "r.xlsx",
        clients=[
            client(end=ENDED, approve_erasure="Kyllä", marketing_objection="Kyllä"),
            client(client_id="A1002", first_name="Bertta", email="b@example.fi"),
        ],
        sheets=(CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG),
    )
    first = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert first.counts["erasures"] == 1
    assert cell(path, "Asiakkaat", "S3") == (
        "Aktiivinen – suoramarkkinointikielto voimassa (aiempi pyyntö)"
    )
    before = sha(path)
    assert not run_weekly(path, TODAY, log_dir=tmp_path / "log").written
    assert sha(path) == before
    # A week later still nothing: the entry on record matches Bertta's row.
    assert not run_weekly(path, TODAY + dt.timedelta(days=7), log_dir=tmp_path / "log").written


def test_the_period_starts_after_the_previous_run(tmp_path):
    """A relationship that ended before the previous run is not "newly ended" this week."""
    path = make_register(tmp_path)
    week_ago = TODAY - dt.timedelta(days=7)
    run_weekly(path, week_ago, log_dir=tmp_path / "log")
    assert previous_run(tmp_path / "reports", TODAY) == week_ago
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    period = result.report["period"]
    assert period == {"from": "2026-11-19", "to": "2026-11-25", "previous_run": "2026-11-18"}
    assert [r["client_id"] for r in result.report["newly_ended"]] == ["A1003"]
    # The erasure was done by last week's run: outside this period.
    assert result.report["erasures"] == []


def test_the_report_in_english(tmp_path):
    path = make_register(tmp_path, lang="en")
    result = invoke("run", str(path))
    assert result.exit_code == 1, result.output
    assert "Client register hygiene report" in result.output
    html = (tmp_path / "reports" / "hygiene-2026-11-25.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Requests" in html and "At a glance" in html
    assert "awaits approval" in html and "Fysio Oy" in html
    assert_no_personal_data(html)
    assert cell(path, "Clients", "S2") == "Active"


def test_the_run_log_has_counts_and_no_personal_data(tmp_path):
    path = make_register(tmp_path)
    assert invoke("run", str(path)).exit_code == 1
    log = tmp_path / "xdg-state" / "sheetreg" / "log" / "runs.jsonl"
    text = log.read_text(encoding="utf-8")
    entry = json.loads(text.splitlines()[-1])
    assert entry["counts"]["clients"] == 7 and entry["written"] is True
    assert entry["today"] == "2026-11-25" and len(entry["sha256_before"]) == 64
    assert_no_personal_data(text)
    assert "A100" not in text and str(tmp_path) not in text


def test_a_workbook_open_in_excel_is_not_touched(tmp_path):
    path = make_register(tmp_path)
    lock = tmp_path / ".~lock.rekisteri.xlsx#"
    lock.write_text("someone,host,2026\n")
    before = sha(path)
    result = invoke("run", str(path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "rekisteri.xlsx" in result.output
    assert sha(path) == before
    assert not (tmp_path / "reports").exists() and not (tmp_path / "extracts").exists()


def test_unusable_input_exits_2(tmp_path):
    bad = tmp_path / "rekisteri.xlsx"
    bad.write_bytes(b"not a workbook")
    result = invoke("run", str(bad))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "reports").exists()


def test_without_an_erasure_log_sheet_the_rest_of_the_job_runs(tmp_path):
    """An approved erasure waits for the missing log sheet; flags are written all the same."""
    path = build_register(
        tmp_path / "r.xlsx",
        clients=[client(), client(client_id="A1002", end=ENDED, approve_erasure="Kyllä")],
    )
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert result.written and result.counts["erasures"] == 0
    assert result.counts["erasures_refused"] == 1 and result.exit_code == 1
    assert result.report["erasures_refused"][0]["refusals"][0]["code"] == "no-erasure-log"
    assert cell(path, "Asiakkaat", "S2") == "Aktiivinen"


def test_an_empty_register_runs_clean(tmp_path):
    path = build_register(tmp_path / "r.xlsx", clients=[client()])
    result = invoke("run", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["counts"]["clients"] == 1 and out["exit_code"] == 0
    assert out["requests"] == [] and out["erasures"] == []


# --- headless Chromium --------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed (scripts/test.sh installs it)"
    return found


def test_the_report_renders_in_headless_chromium(tmp_path):
    """Chromium lays the page out (its DOM after rendering has every section) and a
    screenshot is kept in build/screenshots/ for people to look at."""
    path = make_register(tmp_path)
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    page = result.files["html"]
    shots = Path(os.environ.get("SHEETREG_SCREENSHOTS", ROOT / "build" / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "hygiene-report-fi.png"
    shot.unlink(missing_ok=True)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(
        [chromium(), *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    ).stdout
    for section in ("glance", "chart", "findings", "requests", "erasures", "recipients"):
        assert f'id="{section}"' in dom
    subprocess.run(
        [chromium(), *flags, "--window-size=1200,2000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        env=env,
        check=True,
    )
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1200, 2000)
    assert shot.stat().st_size > 50_000  # a page with text, tables and a chart, not a blank


def test_report_files_are_self_contained(tmp_path):
    """No external resource: the page must open from a USB stick on a machine offline."""
    path = make_register(tmp_path)
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    html = result.files["html"].read_text(encoding="utf-8")
    assert "<script" not in html and "<link" not in html and "src=" not in html
    with zipfile.ZipFile(path) as zf:  # and the workbook is still a workbook
        assert "xl/workbook.xml" in zf.namelist()


def test_month_chart_counts_each_month_as_its_definition_says(tmp_path):
    """Active at a month's end: begun by then and not ended by then; ended: in that month, by
    its end (this month's end is today).
    Counted with runs of months; checked here against the definition, month by month."""
    import random

    from sheetreg.report import _month_end, month_chart
    from sheetreg.workbook import read_register

    rng = random.Random(7)
    today = dt.date(2026, 11, 25)
    rows = []
    for n in range(150):
        start = today - dt.timedelta(days=rng.randrange(0, 900))
        end = start + dt.timedelta(days=rng.randrange(0, 700)) if rng.random() < 0.6 else None
        rows.append(client(client_id=f"A{2000 + n}", start=start, end=end))
    rows.append(client(client_id="A1999", start=dt.date(2025, 12, 31), end=dt.date(2025, 12, 31)))
    register = read_register(build_register(tmp_path / "r.xlsx", clients=rows))
    chart = month_chart(register, today, 12)
    ends = [_month_end(today, back) for back in range(11, -1, -1)]
    starts = [r["start"] for r in rows]
    stops = [r["end"] for r in rows]
    assert chart["active"] == [
        sum(1 for b, s in zip(starts, stops, strict=True) if b <= e and (s is None or s > e))
        for e in ends
    ]
    assert chart["ended"] == [
        sum(1 for s in stops if s is not None and (s.year, s.month) == (e.year, e.month) and s <= e)
        for e in ends
    ]


def test_a_report_section_failing_during_the_write_does_not_stop_it(tmp_path, monkeypatch):
    """The report's client sections are made while the file is read back; if that fails, the
    write goes on and the report makes them again afterwards."""
    import sheetreg.report

    real = sheetreg.report.client_sections
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(sheetreg.report, "client_sections", flaky)
    path = make_register(tmp_path)
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert result.written and len(calls) == 2
    assert result.report["counts"]["erasures"] == 1
    assert result.files["html"].exists()


def test_the_run_and_the_writing_commands_have_spares_before_the_read(tmp_path, monkeypatch):
    """run, flag and erase fork their checks' spares before the workbook is read (while the
    process is small), and release them afterwards."""
    import sheetreg.workbook
    from sheetreg import forking

    seen: list[int] = []
    read = sheetreg.workbook.read_register

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(len(forking._SPARES))
        return read(*args, **kwargs)

    monkeypatch.setattr(sheetreg.workbook, "read_register", counting)
    path = make_register(tmp_path)
    run_weekly(path, TODAY, log_dir=tmp_path / "log")
    for args in (["flag", str(path)], ["erase", str(path), "--client", "A1001", "--dry-run"]):
        CliRunner().invoke(cli, [*args, "--today", TODAY.isoformat()])
    assert seen[:3] == [4, 2, 4]
    assert not forking._SPARES


@pytest.mark.parametrize("validating", ["here", "in-a-child", "child-died"])
def test_validation_scans_for_formula_cells_beside_the_statuses(tmp_path, monkeypatch, validating):
    """The run reads the register without the scan for formula cells; validation makes it
    (in a forked child on a big register, forced here on a small one) and still finds a
    formula in a data cell. A child that dies leaves it to this process, after the write:
    the file it scans then is the one the run wrote."""
    import sheetreg.run

    if validating != "here":
        monkeypatch.setattr(sheetreg.run, "_worth_forking", lambda register: True)
    if validating == "child-died":
        monkeypatch.setattr(sheetreg.run, "_validate_scanned", lambda *args: os._exit(3))
    path = build_register(
        tmp_path / "r.xlsx",
        clients=[client(), client(client_id="A1002", end=ENDED, approve_erasure="Kyllä")],
        sheets=(CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG),
    )
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["G2"] = '="33"&"100"'
    wb.save(path)
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert result.written and result.counts["erasures"] == 1
    found = [(f.code, f.sheet, f.cell) for f in result.validation.findings]
    assert ("formula-in-data", "Asiakkaat", "G2") in found
    again = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert not again.written
    found = [(f.code, f.sheet, f.cell) for f in again.validation.findings]
    assert ("formula-in-data", "Asiakkaat", "G2") in found


def test_a_report_section_escapes_every_cell_as_one_at_a_time_would():
    """The page's tables are escaped all at once: the same HTML as escaping each cell, for
    markup, quotes, numbers, None, css-class cells and a text holding a NUL."""
    import html as html_lib

    from sheetreg.report import _WORDS, _section

    def one_at_a_time(rows: list[list[object]]) -> list[str]:
        out = []
        for row in rows:
            cells = []
            for c in row:
                cls, value = c if isinstance(c, tuple) else (None, c)
                text = html_lib.escape("" if value is None else str(value))
                cells.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        return out

    w = _WORDS["fi"]
    plain = [["A1", "<b>&\"'", 3, None], ["A2", "ok", 4.5, "x"]]
    classes = [["E-1", ("ok", "tarkistettu <ok>")], ["E-2", ("fail", None)], []]
    nul = [["a\0b", "<c>"], ["d", "e\0"]]
    for rows in (plain, classes, nul):
        got = _section("s", "Otsikko", ["h1", "h2"], rows, w)
        body = got[got.index("</tr></thead><tbody>") + 1 : -1]
        assert body == one_at_a_time(rows), rows


def test_the_report_about_clients_is_made_ahead_and_written_the_same(tmp_path, monkeypatch):
    """The run renders the report's client sections (and their JSON) while validation still
    runs: the files are what rendering the whole report at the end gives, byte for byte;
    made from other sections, the parts made ahead are not used."""
    import sheetreg.report as report

    used: list[bool] = []
    real_json = report.report_json

    def spy(data: dict[str, Any], ahead: Any = None) -> str:
        used.append(ahead is not None)
        return real_json(data, ahead)

    monkeypatch.setattr(report, "report_json", spy)
    path = make_register(tmp_path)
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert used == [True]
    data = result.report
    assert data["awaiting_approval"] and data["holds"]
    assert (
        result.files["json"].read_text(encoding="utf-8")
        == json.dumps(data, ensure_ascii=False) + "\n"
    )
    assert result.files["html"].read_text(encoding="utf-8") == report.render_html(data)
    ahead = report.render_ahead({k: data[k] for k in data}, data["lang"])
    assert (
        ahead.fits(data) and real_json(data, ahead) == json.dumps(data, ensure_ascii=False) + "\n"
    )
    other = report.render_ahead({**data, "holds": []}, data["lang"])
    assert not other.fits(data)
    assert real_json(data, other) == json.dumps(data, ensure_ascii=False) + "\n"


def test_the_report_sections_are_made_once_while_the_patch_is(tmp_path, monkeypatch):
    """The sections about clients are made while a spare makes the patch, with the erasures
    being written, and not again during the write; a client whose erasure is written is not
    among those awaiting approval. A run whose erasure is refused (a leftover of the
    client's name in a comment) makes them again with what it writes: no erasure."""
    import sheetreg.report

    calls: list[list[tuple[str, str]]] = []
    real = sheetreg.report.client_sections

    def counted(register, statuses, outcomes, **kwargs):
        calls.append([(o.plan.client_id, o.plan.scope) for o in outcomes])
        return real(register, statuses, outcomes, **kwargs)

    monkeypatch.setattr(sheetreg.report, "client_sections", counted)
    ended = client(client_id="A1002", end=ENDED, approve_erasure="Kyllä", last_name="Mäkelä")
    path = build_register(
        tmp_path / "r.xlsx",
        clients=[client(), ended, client(client_id="A1003", end=ENDED)],
        sheets=(CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG),
    )
    result = run_weekly(path, TODAY, log_dir=tmp_path / "log")
    assert result.written and result.counts["erasures"] == 1
    assert calls == [[("A1002", "full")]]
    awaiting = {row["client_id"] for row in result.report["awaiting_approval"]}
    assert "A1003" in awaiting and "A1002" not in awaiting
    # Refused: the erased values are left in a cell comment the erasure does not touch.
    calls.clear()
    path = build_register(
        tmp_path / "s.xlsx",
        clients=[client(), ended, client(client_id="A1003", end=ENDED)],
        sheets=(CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG),
    )
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["A2"].comment = openpyxl.comments.Comment("Soita Mäkelä, 040 765 4321", "T")
    wb.save(path)
    refused = run_weekly(path, TODAY, log_dir=tmp_path / "log2")
    assert refused.counts["erasures"] == 0 and refused.counts["erasures_refused"] == 1
    # Made while the refused attempt's patch was, then again with no erasure written.
    assert calls == [[("A1002", "full")], []]
