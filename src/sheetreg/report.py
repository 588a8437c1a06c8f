"""The hygiene report of the weekly job: one JSON and one self-contained HTML page per run.

:func:`build_report` turns a run (:class:`sheetreg.run.RunResult`) into plain data; the JSON
file is that data, and :func:`render_html` draws the page from the same data, so the two never
disagree. The page needs nothing from the network: its style and its chart (inline SVG) are
in the file.

Content, in the workbook's language: counts at a glance; validation findings grouped by code
(titles and cell references, never a cell's value); relationships ended since the last run;
erasures awaiting approval; holds with their reason and release date; open requests with days
left, coloured green, amber (10 days or fewer), red (5 or fewer) or overdue; the period's
erasures with their verification; the recipients to notify (GDPR Art. 19); the extracts made;
and active and ended relationships month by month. Clients appear by client ID only; a
manual hold's reason is free text, so it is named by its cell, not quoted.

The period runs from the day after the previous report's date (the newest
``hygiene-YYYY-MM-DD.json`` for an earlier day in the same folder) to the run's day; without an
earlier report it is the last seven days.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import html
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sheetreg import values

if TYPE_CHECKING:
    from sheetreg.erasure import ErasureOutcome
    from sheetreg.register import Register
    from sheetreg.retention import ClientStatus
    from sheetreg.run import RunResult

REPORT_PREFIX = "hygiene-"
DEFAULT_PERIOD_DAYS = 7
CHART_MONTHS = 12
AMBER_DAYS = 10
RED_DAYS = 5
MAX_CELLS_SHOWN = 12

# Counts at a glance, in the order shown (labels: sheetreg.notify.LABELS).
GLANCE = (
    "clients",
    "active",
    "ending",
    "ended",
    "erased",
    "ended_since_last_run",
    "awaiting_approval",
    "blocked",
    "holds",
    "errors",
    "warnings",
    "requests_open",
    "requests_due_soon",
    "requests_overdue",
    "extracts",
    "erasures",
    "erasures_refused",
    "verification_failed",
    "recipients_to_notify",
    "cells_written",
)

_WORDS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Asiakasrekisterin hygieniaraportti",
        "made": "Laadittu",
        "period": "Jakso",
        "since": "edellinen ajo",
        "none_before": "ei aiempaa ajoa: viimeiset 7 päivää",
        "glance": "Yhdellä silmäyksellä",
        "findings": "Tarkistuksen löydökset",
        "no_findings": "Ei löydöksiä.",
        "code": "Koodi",
        "severity": "Vakavuus",
        "count": "Määrä",
        "where": "Missä",
        "error": "virhe",
        "warning": "varoitus",
        "newly_ended": "Edellisen ajon jälkeen päättyneet asiakkuudet",
        "client": "Asiakas",
        "ended": "Päättyi",
        "erasure_due": "Poisto aikaisintaan",
        "next": "Seuraavaksi",
        "awaiting": "Hyväksyntää odottavat poistot",
        "approve_hint": "Hyväksy poisto kirjoittamalla Kyllä soluun {column}; seuraava ajo "
        "tekee sen.",
        "approve_cell": "Hyväksyntäsolu",
        "holds": "Säilytykset",
        "kind": "Peruste",
        "ground": "Oikeusperuste",
        "until": "Vapautuu",
        "until_cause": "kun syy poistuu",
        "source": "Lähde",
        "accounting": "Kirjanpitolain säilytys: {n} poistetun asiakkaan laskurivit, "
        "seuraava vapautuu {date}.",
        "requests": "Pyynnöt",
        "request": "Pyyntö",
        "type": "Tyyppi",
        "received": "Saapui",
        "due": "Määräaika",
        "days_left": "Päiviä",
        "todo": "Tehtävä",
        "overdue": "myöhässä {n} pv",
        "erasures": "Jakson poistot",
        "log_id": "Loki",
        "date": "Päivä",
        "reference": "Viite",
        "reason": "Syy",
        "verification": "Varmennus",
        "refused": "Estetyt poistot tällä ajolla",
        "recipients": "Ilmoitettavat vastaanottajat (tietosuoja-asetus 19 art.)",
        "recipient": "Vastaanottaja",
        "basis": "Luovutuksen peruste",
        "extracts": "Tällä ajolla tehdyt otteet",
        "folder": "Kansio",
        "chart": "Aktiiviset ja päättyneet asiakkuudet kuukausittain",
        "active_series": "aktiivisia kuun lopussa",
        "ended_series": "päättyneitä kuussa",
        "left_scale": "asteikko vasemmalla",
        "right_scale": "asteikko oikealla",
        "description": "Kuvaus",
        "nothing": "Ei mitään.",
        "written": "Työkirjaan kirjoitettiin {n} solua.",
        "unchanged": "Työkirjaa ei muutettu: kaikki oli jo ajan tasalla.",
        "yes": "kyllä",
        "no": "ei",
        "footer": "Raportissa asiakkaat ovat vain asiakasnumeroina. Laatija: sheetreg.",
    },
    "en": {
        "title": "Client register hygiene report",
        "made": "Made",
        "period": "Period",
        "since": "previous run",
        "none_before": "no earlier run: the last 7 days",
        "glance": "At a glance",
        "findings": "Validation findings",
        "no_findings": "No findings.",
        "code": "Code",
        "severity": "Severity",
        "count": "Count",
        "where": "Where",
        "error": "error",
        "warning": "warning",
        "newly_ended": "Relationships ended since the last run",
        "client": "Client",
        "ended": "Ended",
        "erasure_due": "Erasure from",
        "next": "Next",
        "awaiting": "Erasures awaiting approval",
        "approve_hint": "Approve an erasure by writing Yes in the {column} cell; the next run "
        "does it.",
        "approve_cell": "Approval cell",
        "holds": "Holds",
        "kind": "Reason",
        "ground": "Legal ground",
        "until": "Released",
        "until_cause": "when the cause ends",
        "source": "Source",
        "accounting": "Accounting Act retention: invoice rows of {n} erased clients, the next "
        "released on {date}.",
        "requests": "Requests",
        "request": "Request",
        "type": "Type",
        "received": "Received",
        "due": "Due",
        "days_left": "Days",
        "todo": "To do",
        "overdue": "{n} days late",
        "erasures": "Erasures in the period",
        "log_id": "Log",
        "date": "Date",
        "reference": "Reference",
        "reason": "Reason",
        "verification": "Verification",
        "refused": "Erasures refused in this run",
        "recipients": "Recipients to notify (GDPR Art. 19)",
        "recipient": "Recipient",
        "basis": "Basis of disclosure",
        "extracts": "Extracts made in this run",
        "folder": "Folder",
        "chart": "Active and ended relationships month by month",
        "active_series": "active at month end",
        "ended_series": "ended in the month",
        "left_scale": "scale on the left",
        "right_scale": "scale on the right",
        "description": "Description",
        "nothing": "Nothing.",
        "written": "{n} cells were written to the workbook.",
        "unchanged": "The workbook was not changed: everything was up to date.",
        "yes": "yes",
        "no": "no",
        "footer": "Clients appear by client ID only. Made by sheetreg.",
    },
}


# --- the data -------------------------------------------------------------------------------


def period_start(previous: dt.date | None, today: dt.date) -> dt.date:
    """The first day the report covers: the day after the previous run."""
    return (previous or today - dt.timedelta(days=DEFAULT_PERIOD_DAYS)) + dt.timedelta(days=1)


def client_sections(
    register: Register,
    statuses: Sequence[ClientStatus],
    outcomes: Sequence[ErasureOutcome],
    *,
    today: dt.date,
    lang: str,
    start: dt.date,
) -> dict[str, Any]:
    """The sections about clients, which need nothing of the write but this run's erasures:
    the weekly run makes them while the written file is read back (see run.py)."""
    erased_now = {o.plan.client_id for o in outcomes if o.plan.scope == "full"}
    clients = register.table("clients")
    newly_ended = [
        _status_row(s, lang)
        for s in statuses
        if s.state == "ended" and s.end is not None and start <= s.end <= today and not s.erased
    ]
    approve_column = ""
    awaiting = []
    if clients is not None and clients.has("approve_erasure"):
        approve_column = clients.column_spec("approve_erasure").label(lang)
    for s in statuses:
        if s.awaiting_approval and not s.erased and s.client_id not in erased_now:
            row = _status_row(s, lang)
            if approve_column and clients is not None:
                row["approve_cell"] = f"{clients.name}!{clients.ref(s.index, 'approve_erasure')}"
            awaiting.append(row)
    holds, kept = _holds(statuses, erased_now, lang)
    return {
        "newly_ended": newly_ended,
        "approve_column": approve_column,
        "awaiting_approval": awaiting,
        "holds": holds,
        "accounting_retention": kept,
        "state_counts": _state_counts(statuses, erased_now),
        "chart": month_chart(register, today),
    }


def build_report(
    result: RunResult,
    register: Register,
    previous: dt.date | None,
    sections: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's data (the JSON file): numbers, dates, client IDs and cell references.

    ``sections`` are :func:`client_sections` of this run, when already made.
    """
    from sheetreg.erasure import read_journal
    from sheetreg.findings import CATALOGUE

    today, lang = result.today, result.lang
    start = period_start(previous, today)
    outcomes = result.erasure.outcomes
    statuses = list(result.statuses)
    if sections is None:
        sections = client_sections(
            register, statuses, outcomes, today=today, lang=lang, start=start
        )
    newly_ended = sections["newly_ended"]
    awaiting = sections["awaiting_approval"]
    holds, kept = sections["holds"], sections["accounting_retention"]
    approve_column = sections["approve_column"]
    requests = [_request_row(item, today, lang) for item in result.requests.open_items]
    log_clients = {o.log_id: o.plan.client_id for o in outcomes}
    erasures = _period_erasures(read_journal(result.workbook), start, today, log_clients)
    recipients = [
        {**r, "log_id": e["log_id"], "client_id": e.get("client_id")}
        for e in erasures
        for r in e.pop("recipients_list")
    ]
    refused = [
        {
            "client_id": p.client_id,
            "reason": p.reason,
            "refusals": [{"code": r.code, "message": r.message} for r in p.refusals],
        }
        for p in result.erasure.refused
    ]
    findings = _findings(result.validation.findings, CATALOGUE, lang)
    summary = result.validation.summary()
    counts = {
        **sections["state_counts"],
        "ended_since_last_run": len(newly_ended),
        "holds": len(holds),
        "errors": summary["errors"],
        "warnings": summary["warnings"],
        "requests_open": len(requests),
        "requests_due_soon": sum(r["colour"] in ("amber", "red") for r in requests),
        "requests_overdue": sum(r["colour"] == "overdue" for r in requests),
        "extracts": len(result.processed),
        "erasures": len(outcomes),
        "erasures_refused": len(refused),
        "verification_failed": sum(not e["verified"] for e in erasures),
        "recipients_to_notify": len(recipients),
        "cells_written": result.erasure.cells_written,
    }
    return {
        "report": "sheetreg-hygiene",
        "version": 1,
        "workbook": result.workbook.name,
        "today": today.isoformat(),
        "lang": lang,
        "generated": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "period": {
            "from": start.isoformat(),
            "to": today.isoformat(),
            "previous_run": previous.isoformat() if previous else None,
        },
        "counts": {key: int(counts[key]) for key in GLANCE},
        "findings": findings,
        "newly_ended": newly_ended,
        "awaiting_approval": awaiting,
        "approve_column": approve_column,
        "holds": holds,
        "accounting_retention": kept,
        "requests": requests,
        "erasures": erasures,
        "erasures_refused": refused,
        "recipients": recipients,
        "extracts": [
            {"client_id": p.client_id, "requests": p.request_ids, "folder": p.folder.name}
            for p in result.processed
        ],
        "extract_issues": [
            {"code": i.code, "cell": f"{i.sheet}!{i.cell}", "request_id": i.request_id}
            for i in result.extract_issues
        ],
        "chart": sections["chart"],
        "write": {
            "written": result.written,
            "sha256_before": result.erasure.sha256_before,
            "sha256_after": result.erasure.sha256_written or result.erasure.sha256_before,
        },
    }


def _state_counts(statuses: Sequence[ClientStatus], erased_now: set[str]) -> dict[str, int]:
    out = dict.fromkeys(("clients", "active", "ending", "ended", "erased"), 0)
    out |= {"awaiting_approval": 0, "blocked": 0}
    for s in statuses:
        out["clients"] += 1
        if s.erased or s.client_id in erased_now:
            out["erased"] += 1
            continue
        out[s.state] += 1
        out["awaiting_approval"] += s.awaiting_approval
        out["blocked"] += s.blocked
    return out


def _status_row(status: ClientStatus, lang: str) -> dict[str, Any]:
    from sheetreg.retention import _hold_phrase

    if status.blocked:
        nxt = "; ".join(_hold_phrase(h, lang, private=False) for h in status.blocking)
        code = "blocked"
    elif status.approved:
        nxt, code = ("poistetaan" if lang == "fi" else "to be erased"), "approved"
    elif status.automatic:
        nxt = "poistetaan automaattisesti" if lang == "fi" else "erased automatically"
        code = "automatic"
    else:
        nxt, code = ("odottaa hyväksyntää" if lang == "fi" else "awaits approval"), "approval"
    return {
        "client_id": status.client_id,
        "row": status.row,
        "end": _iso(status.end),
        "erasure_due": _iso(status.erasure_due),
        "next": code,
        "next_text": nxt,
    }


def _holds(
    statuses: Sequence[ClientStatus], erased_now: set[str], lang: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Holds in force (accounting retention summarised: every invoice has one)."""
    from sheetreg.retention import _hold_phrase

    rows: list[dict[str, Any]] = []
    kept_clients = 0
    next_release: dt.date | None = None
    for s in statuses:
        gone = s.erased or s.client_id in erased_now
        accounting = [h for h in s.holds if h.kind == "accounting-retention"]
        if gone and accounting:
            kept_clients += 1
            first = min((h.until for h in accounting if h.until), default=None)
            if first is not None and (next_release is None or first < next_release):
                next_release = first
        if gone:
            continue
        for h in s.holds:
            if h.kind == "accounting-retention":
                continue
            rows.append(
                {
                    "client_id": s.client_id,
                    "kind": h.kind,
                    "text": _hold_phrase(h, lang, private=False),
                    "ground": h.ground,
                    "until": _iso(h.until),
                    "source": h.source,
                    "blocks_erasure": s.state == "ended" and h.blocks,
                }
            )
    rows.sort(key=lambda r: (r["until"] or "9999", r["client_id"]))
    return rows, {"clients": kept_clients, "next_release": _iso(next_release)}


def request_colour(days: int | None) -> str:
    """green, amber (10 days or fewer), red (5 or fewer), overdue, or none (no deadline)."""
    if days is None:
        return "none"
    if days < 0:
        return "overdue"
    if days <= RED_DAYS:
        return "red"
    if days <= AMBER_DAYS:
        return "amber"
    return "green"


def _request_row(item: Any, today: dt.date, lang: str) -> dict[str, Any]:
    days = item.days_left(today)
    return {
        "request_id": item.request_id,
        "client_id": item.client_id,
        "type": item.type.key if item.type else None,
        "type_label": item.type.label(lang) if item.type else "?",
        "received": _iso(item.received),
        "due": _iso(item.deadline.due) if item.deadline else None,
        "days_left": days,
        "colour": request_colour(days),
        "action": item.action,
        "todo": item.todo,
    }


def _period_erasures(
    journal: Iterable[Mapping[str, Any]],
    start: dt.date,
    today: dt.date,
    log_clients: Mapping[str, str],
) -> list[dict[str, Any]]:
    out = []
    for entry in journal:
        stamp = str(entry.get("timestamp", ""))
        try:
            day = dt.date.fromisoformat(stamp[:10])
        except ValueError:
            continue
        if not start <= day <= today:
            continue
        verification = str(entry.get("verification", ""))
        log_id = str(entry.get("log_id", ""))
        recipients = entry.get("recipients_list")
        out.append(
            {
                "log_id": log_id,
                "date": day.isoformat(),
                "reference": entry.get("reference"),
                "client_id": log_clients.get(log_id),
                "reason": entry.get("reason"),
                "scope": entry.get("scope"),
                "verified": bool(entry.get("verified", verification.startswith("OK"))),
                "verification": verification,
                "recipients_list": list(recipients) if isinstance(recipients, list) else [],
                "recipients_text": entry.get("recipients", ""),
            }
        )
    return out


def _findings(
    findings: Iterable[Any], catalogue: Mapping[str, Any], lang: str
) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for f in findings:
        group = groups.get(f.code)
        if group is None:
            entry = catalogue.get(f.code)
            group = groups[f.code] = {
                "code": f.code,
                "severity": f.severity,
                "title": entry.title(lang) if entry is not None else f.code,
                "count": 0,
                "cells": [],
            }
        group["count"] += 1
        if len(group["cells"]) < MAX_CELLS_SHOWN:
            group["cells"].append(f"{f.sheet}!{f.cell}" if f.cell else f.sheet)
    return sorted(groups.values(), key=lambda g: (g["severity"] != "error", -g["count"], g["code"]))


def month_chart(register: Register, today: dt.date, months: int = CHART_MONTHS) -> dict[str, Any]:
    """Active relationships at each month's end (today for this month) and relationships
    ended in each month, for the last ``months`` months."""
    clients = register.table("clients")
    ends = [_month_end(today, back) for back in range(months - 1, -1, -1)]
    labels = [f"{d.year}-{d.month:02d}" for d in ends]
    active = [0] * months
    ended = [0] * months
    if clients is None or not clients.has("start"):
        return {"months": labels, "active": active, "ended": ended}
    memo: dict[Any, dt.date | None] = {}

    def day(raw: Any) -> dt.date | None:
        if raw not in memo:
            try:
                memo[raw] = values.as_date(raw)
            except (ValueError, TypeError):
                memo[raw] = None
        return memo[raw]

    starts = clients.column_values("start")
    finishes = clients.column_values("end") if clients.has("end") else ()
    first = ends[0].replace(day=1)
    # Active at month m: begun by its end (m >= b) and not stopped by it (m < s). Each client
    # adds one to a run of months: counted as the run's two ends, summed once at the end.
    runs = [0] * (months + 1)
    for i in clients.nonblank_rows():
        begun = day(starts[i])
        if begun is None:
            continue
        stop = day(finishes[i]) if finishes else None
        b = bisect.bisect_left(ends, begun)
        s = months if stop is None else bisect.bisect_left(ends, stop)
        if b < s:
            runs[b] += 1
            runs[s] -= 1
        if stop is not None and first <= stop <= ends[-1]:
            ended[(stop.year - first.year) * 12 + stop.month - first.month] += 1
    active = list(itertools.accumulate(runs[:months]))
    return {"months": labels, "active": active, "ended": ended}


def _month_end(today: dt.date, back: int) -> dt.date:
    """The last day of the month ``back`` months before today's (today itself for 0)."""
    if back == 0:
        return today
    year, month = divmod(today.year * 12 + today.month - 1 - back, 12)
    month += 1
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


# --- writing --------------------------------------------------------------------------------


def report_paths(folder: Path, today: dt.date) -> dict[str, Path]:
    """Where this run's report pair goes: ``hygiene-YYYY-MM-DD``, and ``-2``, ``-3``… for
    later runs on the same day, so that each run's record is kept."""
    base = f"{REPORT_PREFIX}{today.isoformat()}"
    number = 1
    while True:
        stem = base if number == 1 else f"{base}-{number}"
        paths = {"html": folder / f"{stem}.html", "json": folder / f"{stem}.json"}
        if not any(p.exists() for p in paths.values()):
            return paths
        number += 1


# The client sections' keys in the report's data: the long lists, and what their part of
# the page also shows.
_CLIENT_KEYS = (
    "chart",
    "newly_ended",
    "awaiting_approval",
    "approve_column",
    "holds",
    "accounting_retention",
)
_CLIENT_LISTS = ("newly_ended", "awaiting_approval", "holds")


@dataclass
class ReportAhead:
    """The report files' parts that :func:`client_sections` gives, made before the rest of
    the report is known (see :func:`render_ahead`)."""

    sections: Mapping[str, Any]  # what they were made from
    html: dict[str, list[str]]
    json: dict[str, str]

    def fits(self, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` holds the very sections these were made from."""
        return all(k in data and data[k] is self.sections[k] for k in _CLIENT_KEYS)


def render_ahead(sections: Mapping[str, Any], lang: str) -> ReportAhead:
    """The page's sections about clients and the JSON of their long lists (25,000 rows at
    100,000 clients), from :func:`client_sections`: the weekly run makes them while
    validation, which the rest of the report needs, is still running beside it."""
    return ReportAhead(
        sections,
        client_sections_html(sections, lang),
        {key: json.dumps(sections[key], ensure_ascii=False) for key in _CLIENT_LISTS},
    )


def report_json(data: Mapping[str, Any], ahead: ReportAhead | None = None) -> str:
    """The report's JSON file: ``json.dumps`` of ``data``, on one line. The lists ``ahead``
    already has in JSON are put in where markers stood (json's output for a mapping is its
    values' own output in turn, so the text is the same)."""
    if ahead is None or not ahead.fits(data):
        # Without indentation: json's C encoder then writes it.
        return json.dumps(data, ensure_ascii=False) + "\n"
    marks = {key: f"\0sheetreg:{key}\0" for key in _CLIENT_LISTS}
    text = json.dumps({k: marks.get(k, v) for k, v in data.items()}, ensure_ascii=False)
    for key, mark in marks.items():  # no cell's text holds a NUL: each marker is once there
        text = text.replace(json.dumps(mark), ahead.json[key], 1)
    return text + "\n"


def write_report(
    data: Mapping[str, Any], folder: Path, today: dt.date, ahead: ReportAhead | None = None
) -> dict[str, Path]:
    """Write this run's report pair, each file atomically; ``ahead`` is
    :func:`render_ahead` of the client sections in ``data``, when made beforehand."""
    from sheetreg.workbook import _write_new_file

    folder.mkdir(parents=True, exist_ok=True)
    paths = report_paths(folder, today)
    texts = {
        "json": report_json(data, ahead),
        "html": render_html(data, ahead.html if ahead is not None and ahead.fits(data) else None),
    }
    for kind, path in paths.items():
        tmp = _write_new_file(folder, f".{path.name}.", ".tmp", texts[kind].encode("utf-8"))
        tmp.replace(path)
    return paths


# --- the page -------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:70rem;padding:0 1rem;color:#1b1b1b;background:#fff;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:2px solid #ddd;padding-bottom:.2rem}
.meta{color:#555;margin:0}
.glance{display:grid;grid-template-columns:repeat(auto-fill,minmax(10.5rem,1fr));gap:.6rem;
margin:1rem 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem .7rem;background:#fafafa}
.card b{display:block;font-size:1.5rem}.card span{font-size:.85rem;color:#444}
.card.alert{border-color:#c62828;background:#ffebee}
table{border-collapse:collapse;width:100%;font-size:.92rem;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e5e5e5;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right}
.green{background:#e8f5e9;color:#1b5e20}.amber{background:#fff3e0;color:#8a4b00}
.red{background:#ffebee;color:#b71c1c}.overdue{background:#b71c1c;color:#fff;font-weight:600}
.none{background:#f2f2f2}
.ok{color:#1b5e20;font-weight:600}.fail{color:#b71c1c;font-weight:600}
.error{color:#b71c1c}.warning{color:#8a4b00}
figure{margin:1rem 0}figcaption{font-size:.9rem;color:#444}
footer{margin-top:2rem;color:#666;font-size:.85rem}
"""


def client_sections_html(sections: Mapping[str, Any], lang: str) -> dict[str, list[str]]:
    """The page's sections about clients (chart, newly ended, awaiting approval, holds),
    from :func:`client_sections` (or the report's data, which holds them): the weekly run
    renders them while validation still runs, as they need nothing of it."""
    w = _WORDS[lang]
    out: dict[str, list[str]] = {"chart": _chart_section(sections["chart"], w)}
    out["newly-ended"] = _section(
        "newly-ended",
        w["newly_ended"],
        [w["client"], w["ended"], w["erasure_due"], w["next"]],
        [
            [r["client_id"], _day(r["end"]), _day(r["erasure_due"]), r["next_text"]]
            for r in sections["newly_ended"]
        ],
        w,
    )
    hint = (
        w["approve_hint"].format(column=sections["approve_column"])
        if sections["approve_column"]
        else ""
    )
    out["awaiting-approval"] = _section(
        "awaiting-approval",
        w["awaiting"],
        [w["client"], w["ended"], w["erasure_due"], w["approve_cell"]],
        [
            [r["client_id"], _day(r["end"]), _day(r["erasure_due"]), r.get("approve_cell", "")]
            for r in sections["awaiting_approval"]
        ],
        w,
        note=hint if sections["awaiting_approval"] else "",
    )
    kept = sections["accounting_retention"]
    out["holds"] = _section(
        "holds",
        w["holds"],
        [w["client"], w["kind"], w["ground"], w["until"], w["source"]],
        [
            [
                r["client_id"],
                r["text"],
                r["ground"],
                _day(r["until"]) or w["until_cause"],
                r["source"],
            ]
            for r in sections["holds"]
        ],
        w,
        note=(
            w["accounting"].format(n=kept["clients"], date=_day(kept["next_release"]))
            if kept["clients"]
            else ""
        ),
    )
    return out


def render_html(data: Mapping[str, Any], ahead: Mapping[str, list[str]] | None = None) -> str:
    """The report page: self-contained HTML5 in the report's language. ``ahead`` is
    :func:`client_sections_html` of the client sections in ``data``, when made beforehand."""
    from sheetreg.notify import LABELS

    lang = data["lang"]
    w = _WORDS[lang]
    client = ahead if ahead is not None else client_sections_html(data, lang)
    fi = lang == "fi"
    period = data["period"]
    since = (
        f"{w['since']} {_day(period['previous_run'])}"
        if period["previous_run"]
        else w["none_before"]
    )
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(w['title'])} {_day(data['today'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(w['title'])}</h1>",
        f'<p class="meta">{_e(data["workbook"])} · {_day(data["today"])} · {w["period"]} '
        f"{_day(period['from'])}–{_day(period['to'])} ({_e(since)}) · {w['made']} "
        f"{_e(data['generated'][:16].replace('T', ' '))}</p></header>",
        f'<section id="glance"><h2>{w["glance"]}</h2><div class="glance">',
    ]
    alerts = {"errors", "requests_overdue", "erasures_refused", "verification_failed"}
    for key, value in data["counts"].items():
        label = LABELS.get(key, (key, key))[0 if fi else 1]
        cls = "card alert" if key in alerts and value else "card"
        parts.append(
            f'<div class="{cls}" data-key="{key}"><b>{value}</b><span>{_e(label)}</span></div>'
        )
    parts.append("</div>")
    write = data["write"]
    cells = data["counts"].get("cells_written", 0)
    parts.append(
        f"<p>{_e(w['written'].format(n=cells) if write['written'] else w['unchanged'])}</p>"
    )
    parts.append("</section>")
    parts += client["chart"]
    parts += _findings_section(data["findings"], w)
    parts += client["newly-ended"]
    parts += client["awaiting-approval"]
    parts += client["holds"]
    parts += _requests_section(data["requests"], w)
    parts += _section(
        "erasures",
        w["erasures"],
        [w["log_id"], w["date"], w["client"], w["reference"], w["reason"], w["verification"]],
        [
            [
                e["log_id"],
                _day(e["date"]),
                e["client_id"] or "",
                e["reference"],
                e["reason"],
                ("ok" if e["verified"] else "fail", e["verification"]),
            ]
            for e in data["erasures"]
        ],
        w,
    )
    if data["erasures_refused"]:
        parts += _section(
            "refused",
            w["refused"],
            [w["client"], w["reason"]],
            [
                [r["client_id"], " ".join(x["message"] for x in r["refusals"])]
                for r in data["erasures_refused"]
            ],
            w,
        )
    parts += _section(
        "recipients",
        w["recipients"],
        [w["recipient"], w["basis"], w["source"], w["log_id"], w["client"]],
        [
            [r["name"], r["basis"], r["source"], r["log_id"], r.get("client_id") or ""]
            for r in data["recipients"]
        ],
        w,
    )
    if data["extracts"]:
        parts += _section(
            "extracts",
            w["extracts"],
            [w["client"], w["request"], w["folder"]],
            [[x["client_id"], ", ".join(x["requests"]), x["folder"]] for x in data["extracts"]],
            w,
        )
    parts.append(f"<footer>{_e(w['footer'])}</footer></body></html>\n")
    return "\n".join(parts)


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


@functools.lru_cache(maxsize=4096)  # a page has tens of thousands of dates, few distinct
def _day(iso: str | None) -> str:
    """d.m.yyyy, as the workbook writes dates."""
    if not iso:
        return ""
    day = dt.date.fromisoformat(iso)
    return f"{day.day}.{day.month}.{day.year}"


def _section(
    ident: str,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    w: Mapping[str, str],
    *,
    note: str = "",
) -> list[str]:
    out = [f'<section id="{ident}"><h2>{_e(title)} ({len(rows)})</h2>']
    if note:
        out.append(f"<p>{_e(note)}</p>")
    if not rows:
        out.append(f"<p>{_e(w['nothing'])}</p></section>")
        return out
    out.append("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers))
    out.append("</tr></thead><tbody>")
    # A cell is text, or (css class, text). Escaped all at once, each row joined once.
    flat = [cell for row in rows for cell in row]
    if any(isinstance(c, tuple) for c in flat):
        opens = [f'<td class="{c[0]}">' if isinstance(c, tuple) else "<td>" for c in flat]
        texts = _escape_all([c[1] if isinstance(c, tuple) else c for c in flat])
        cells = [o + t for o, t in zip(opens, texts, strict=True)]
        glue, first = "</td>", "<tr>"
    else:
        cells, glue, first = _escape_all(flat), "</td><td>", "<tr><td>"
    k = 0
    for row in rows:
        n = len(row)
        out.append(first + glue.join(cells[k : k + n]) + "</td></tr>" if n else "<tr></tr>")
        k += n
    out.append("</tbody></table></section>")
    return out


def _escape_all(texts: list[Any]) -> list[str]:
    """:func:`_e` of each text, escaped in one pass (:func:`values.join_apart`): a call of
    html.escape per cell cost most of the page's time (150,000 cells at 100,000 clients)."""
    raw = ["" if t is None else str(t) for t in texts]
    joined = values.join_apart(raw)
    if joined is None:
        return [html.escape(t, quote=True) for t in raw]
    return html.escape(joined, quote=True).split(values.APART) if raw else []


def _findings_section(groups: Sequence[Mapping[str, Any]], w: Mapping[str, str]) -> list[str]:
    rows = [
        [
            (g["severity"], w.get(g["severity"], g["severity"])),
            g["code"],
            g["title"],
            g["count"],
            ", ".join(g["cells"]) + (" …" if g["count"] > len(g["cells"]) else ""),
        ]
        for g in groups
    ]
    out = _section(
        "findings",
        w["findings"],
        [w["severity"], w["code"], w["description"], w["count"], w["where"]],
        rows,
        w,
    )
    total = sum(g["count"] for g in groups)
    out[0] = f'<section id="findings"><h2>{_e(w["findings"])} ({total})</h2>'
    return out


def _requests_section(rows: Sequence[Mapping[str, Any]], w: Mapping[str, str]) -> list[str]:
    body = []
    for r in rows:
        days = r["days_left"]
        shown = "" if days is None else w["overdue"].format(n=-days) if days < 0 else str(days)
        body.append(
            [
                r["request_id"],
                r["client_id"] or "",
                r["type_label"],
                _day(r["received"]),
                _day(r["due"]),
                (r["colour"], shown),
                r["todo"],
            ]
        )
    return _section(
        "requests",
        w["requests"],
        [w["request"], w["client"], w["type"], w["received"], w["due"], w["days_left"], w["todo"]],
        body,
        w,
    )


def _chart_section(chart: Mapping[str, Any], w: Mapping[str, str]) -> list[str]:
    """Bars: active relationships at each month's end (left scale); a line: relationships
    ended in the month (right scale, since there are far fewer of them)."""
    months, active, ended = chart["months"], chart["active"], chart["ended"]
    width, height, left, right, bottom, top = 720, 240, 44, 40, 28, 12
    step = (width - left - right) / max(len(months), 1)
    plot = height - bottom - top
    peak_active, peak_ended = max([*active, 1]), max([*ended, 1])

    def y(value: float, peak: int) -> float:
        return height - bottom - value * plot / peak

    def label(x: float, value: int, peak: int, anchor: str, colour: str) -> str:
        return (
            f'<text x="{x}" y="{y(value, peak) + 4:.1f}" font-size="11" text-anchor="{anchor}" '
            f'fill="{colour}">{value}</text>'
        )

    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="chart-title">',
        f'<title id="chart-title">{_e(w["chart"])}</title>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#999"/>',
        label(left - 6, peak_active, peak_active, "end", "#4e79a7"),
        label(left - 6, 0, peak_active, "end", "#4e79a7"),
        label(width - right + 6, peak_ended, peak_ended, "start", "#e15759"),
        label(width - right + 6, 0, peak_ended, "start", "#e15759"),
    ]
    points = []
    for i, month in enumerate(months):
        x = left + i * step
        top_y = y(active[i], peak_active)
        svg.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{top_y:.1f}" width="{step * 0.7:.1f}" '
            f'height="{height - bottom - top_y:.1f}" fill="#4e79a7">'
            f"<title>{month}: {active[i]}</title></rect>"
        )
        cx, cy = x + step / 2, y(ended[i], peak_ended)
        points.append(f"{cx:.1f},{cy:.1f}")
        svg.append(
            f'<text x="{cx:.1f}" y="{height - 10}" font-size="10" text-anchor="middle">'
            f"{month[2:]}</text>"
        )
    svg.append(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="#e15759" stroke-width="2"/>'
    )
    for i, point in enumerate(points):
        cx, cy = point.split(",")
        svg.append(
            f'<circle cx="{cx}" cy="{cy}" r="3.5" fill="#e15759">'
            f"<title>{months[i]}: {ended[i]}</title></circle>"
        )
    svg.append("</svg>")
    legend = (
        f'<figcaption><span style="color:#4e79a7">■</span> {_e(w["active_series"])} '
        f'({_e(w["left_scale"])}) · <span style="color:#e15759">●</span> '
        f"{_e(w['ended_series'])} ({_e(w['right_scale'])})</figcaption>"
    )
    return [
        f'<section id="chart"><h2>{_e(w["chart"])}</h2><figure>',
        "".join(svg),
        legend,
        "</figure></section>",
    ]


def summary_lines(data: Mapping[str, Any]) -> list[str]:
    """The counts as lines for the terminal."""
    from sheetreg.notify import LABELS

    fi = data.get("lang") == "fi"
    lines = [
        f"{_WORDS[data['lang']]['title']}: {data['workbook']} {_day(data['today'])}",
    ]
    for key, value in data.get("counts", {}).items():
        if value or key in ("clients", "errors", "requests_overdue"):
            label = LABELS.get(key, (key, key))[0 if fi else 1]
            lines.append(f"  {label}: {value}")
    return lines
