"""Commands for client requests: `sheetreg requests` and `sheetreg extract`.

:func:`run_requests` is the one call behind `sheetreg requests [--process]`; the weekly job and
the one-click launchers in ``workflows/`` run the same code. stdout carries request IDs, client
IDs, types, dates, cells and folder names, never a person's name: the only place personal data
leave the workbook is the extract itself.

A password-protected register's extract is encrypted with a password for the person: `extract`
makes one and shows it once (or reads one with --password-stdin); `requests --process` makes no
extract of such a register, since nobody would see the password, and says to run `extract`.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sheetreg.cli import FORMAT, LANG, TODAY, _emit_json, cli
from sheetreg.errors import SheetregError

if TYPE_CHECKING:
    from sheetreg.extract import Candidate
    from sheetreg.register import Register
    from sheetreg.requests import Issue, RequestItem, RequestsPlan
    from sheetreg.workbook import WriteResult
    from sheetreg.xlsxpatch import CellEdit


MIN_EXTRACT_PASSWORD = 8  # for --password-stdin; a made password has 24 characters


class NoClientChosen(SheetregError):
    """`extract` without --client, and no client was chosen in the terminal (exit 2)."""

    exit_code = 2


_WORDS: dict[str, dict[str, str]] = {
    "fi": {
        "heading": "Pyynnöt: {workbook}, {today}",
        "none": "Ei avoimia pyyntöjä.",
        "open": "Avoimet pyynnöt ({n}), kiireellisin ensin:",
        "received": "saapui",
        "due": "määräaika",
        "left": "{n} pv jäljellä",
        "today": "määräaika tänään",
        "late": "MYÖHÄSSÄ {n} pv",
        "no_due": "ei määräaikaa",
        "processed": "Tehdyt otteet ({n}):",
        "issues": "Huomioitavaa ({n}):",
        "due_written": "Määräaika-soluja kirjoitettu: {n}.",
        "due_unchanged": "Määräajat ovat ajan tasalla.",
        "due_pending": "Määräaika-soluja kirjoitettavana: {n} (ei kirjoitettu).",
        "backup": "Varmuuskopio: {path}",
        "write_error": "Työkirjaa ei päivitetty: {error}",
        "hint_process": "Tee otteet varmistetuille tarkastus- ja siirtopyynnöille: "
        "sheetreg requests {path} --process",
        "extract_done": "Ote tehty: {folder}",
        "search": "Hae asiakasta nimellä tai asiakasnumerolla (tyhjä lopettaa)",
        "no_match": "Ei osumia. Kokeile toista hakua.",
        "pick": "Valitse numero (tyhjä = uusi haku)",
        "more": "Näytetään {n} ensimmäistä; tarkenna hakua.",
        "no_client": "Asiakasta ei valittu; otetta ei tehty. Anna --client ASIAKASNUMERO.",
        "extract_password": "Ote on salattu, koska rekisteri on salattu. Otteen salasana "
        "(näytetään vain nyt, sitä ei tallenneta):",
        "extract_given_password": "Ote on salattu antamallasi salasanalla.",
        "extract_handover": "Anna salasana asiakkaalle eri tavalla kuin ote (esim. puhelimessa "
        "tai tekstiviestillä). HTML- ja JSON-tiedostoja ei tehty, koska niitä ei voi salata "
        "(--plain tekee kaikki salaamattomina).",
        "plain_warning": "Varoitus: rekisteri on salattu, mutta ote kirjoitettiin "
        "salaamattomana (--plain). Säilytä ja toimita se suojatusti ja poista se toimituksen "
        "jälkeen.",
    },
    "en": {
        "heading": "Requests: {workbook}, {today}",
        "none": "No open requests.",
        "open": "Open requests ({n}), most urgent first:",
        "received": "received",
        "due": "due",
        "left": "{n} days left",
        "today": "due today",
        "late": "OVERDUE {n} days",
        "no_due": "no deadline",
        "processed": "Extracts made ({n}):",
        "issues": "To act on ({n}):",
        "due_written": "Due cells written: {n}.",
        "due_unchanged": "Due dates are up to date.",
        "due_pending": "Due cells to write: {n} (not written).",
        "backup": "Backup: {path}",
        "write_error": "The workbook was not updated: {error}",
        "hint_process": "Make the extracts of verified access and portability requests: "
        "sheetreg requests {path} --process",
        "extract_done": "Extract written: {folder}",
        "search": "Search for a client by name or client ID (empty to stop)",
        "no_match": "No match. Try another search.",
        "pick": "Choose a number (empty = search again)",
        "more": "Showing the first {n}; narrow the search.",
        "no_client": "No client chosen; no extract was made. Give --client ID.",
        "extract_password": "The extract is encrypted, as the register is. Its password "
        "(shown only now, never stored):",
        "extract_given_password": "The extract is encrypted with the password you gave.",
        "extract_handover": "Give the password to the person by another channel than the "
        "extract (by phone or text message, say). No HTML or JSON file was made, as they "
        "cannot be encrypted (--plain writes every format unencrypted).",
        "plain_warning": "Warning: the register is encrypted, but the extract was written "
        "unencrypted (--plain). Keep and send it securely and delete it once delivered.",
    },
}


@dataclass
class Processed:
    """One extract made by `--process`: the requests it answers and where it is."""

    client_id: str
    request_ids: list[str]
    folder: Path

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "client_id": self.client_id,
            "requests": self.request_ids,
            "folder": str(self.folder),
        }


@dataclass
class RequestsRun:
    """What `sheetreg requests` did: the plan, the extracts made, what was written."""

    plan: RequestsPlan
    workbook: Path
    process: bool
    processed: list[Processed] = field(default_factory=list)
    failures: list[Issue] = field(default_factory=list)
    write: WriteResult | None = None
    write_error: str | None = None
    edits: int = 0

    @property
    def exit_code(self) -> int:
        """0 when nothing needs acting on, else 1 (overdue, unverified, refused writes…)."""
        return 1 if self.plan.issues or self.failures or self.write_error else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: IDs, types, dates and cells; never a name."""
        from sheetreg.requests import summary

        plan = self.plan
        return {
            "workbook": plan.workbook,
            "today": plan.today.isoformat(),
            "lang": plan.lang,
            "process": self.process,
            "written": bool(self.write and self.write.written),
            "cells_written": self.write.edits if self.write and self.write.written else 0,
            "due_cells": len(plan.due_edits),
            "backup": str(self.write.backup) if self.write and self.write.backup else None,
            "write_error": self.write_error,
            "open": [item.to_dict(plan.today, plan.lang) for item in plan.open_items],
            "processed": [p.to_dict() for p in self.processed],
            "issues": [issue.to_dict() for issue in [*plan.issues, *self.failures]],
            "summary": {**summary(plan), "processed": len(self.processed)},
        }

    def text(self) -> str:
        """The report for people, in the plan's language."""
        from sheetreg.requests import format_date

        plan = self.plan
        lang = plan.lang
        words = _WORDS[lang]
        lines = [
            words["heading"].format(workbook=plan.workbook, today=format_date(plan.today, lang)),
            "",
        ]
        items = plan.open_items
        if not items:
            lines.append(words["none"])
        else:
            lines.append(words["open"].format(n=len(items)))
            lines += [_item_line(item, plan.today, lang) for item in items]
        if self.processed:
            lines += ["", words["processed"].format(n=len(self.processed))]
            for p in self.processed:
                lines.append(f"  {', '.join(p.request_ids)}  {p.client_id}  -> {p.folder}")
        issues = [*plan.issues, *self.failures]
        if issues:
            lines += ["", words["issues"].format(n=len(issues))]
            for issue in issues:
                where = f"{issue.sheet}!{issue.cell}" if issue.cell else issue.sheet
                lines.append(f"  {where:<14} {issue.message}  [{issue.code}]")
        lines.append("")
        if self.write_error:
            lines.append(words["write_error"].format(error=self.write_error))
            if plan.due_edits:
                lines.append(words["due_pending"].format(n=len(plan.due_edits)))
        elif plan.due_edits:
            lines.append(words["due_written"].format(n=len(plan.due_edits)))
        else:
            lines.append(words["due_unchanged"])
        if self.write and self.write.backup:
            lines.append(words["backup"].format(path=self.write.backup))
        if not self.process and plan.to_process:
            lines.append(words["hint_process"].format(path=self.workbook))
        return "\n".join(lines)


def _item_line(item: RequestItem, today: dt.date, lang: str) -> str:
    from sheetreg.requests import format_date
    from sheetreg.schema import REQUEST_STATUSES

    words = _WORDS[lang]
    days = item.days_left(today)
    if days is None:
        urgency = words["no_due"]
    elif days < 0:
        urgency = words["late"].format(n=-days)
    elif days == 0:
        urgency = words["today"]
    else:
        urgency = words["left"].format(n=days)
    kind = item.type.label(lang) if item.type else "?"
    status = next(s.label(lang) for s in REQUEST_STATUSES if s.key == item.status)
    received = format_date(item.received, lang) if item.received else "?"
    due = format_date(item.deadline.due, lang) if item.deadline else "?"
    head = (
        f"  {item.request_id:<8} {kind:<22} {item.client_id or '?':<10} "
        f"{words['received']} {received:<10}  {words['due']} {due:<10}  {urgency:<18} {status}"
    )
    return f"{head}\n           -> {item.todo}"


def _keep_backups(register: Register) -> int:
    text = register.settings.get("backup_count", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else 10


def make_pending_extracts(
    register: Register,
    requests: RequestsPlan,
    today: dt.date,
    lang: str,
    out_dir: Path | None,
) -> tuple[list[Processed], list[Issue], list[tuple[CellEdit, int]]]:
    """The extract of every verified access or portability request without one yet, and the
    Outcome cell edits recording them (with each request's row index)."""
    from sheetreg.extract import make_extract
    from sheetreg.requests import Issue, group_by_client, outcome_text
    from sheetreg.xlsxpatch import CellEdit

    table = register.table("requests")
    processed: list[Processed] = []
    issues: list[Issue] = []
    edits: list[tuple[CellEdit, int]] = []
    if table is None:
        return processed, issues, edits
    for client_id, items in group_by_client(requests.to_process).items():
        ids = [item.request_id for item in items]
        try:
            files = make_extract(
                register, client_id, today=today, lang=lang, out_dir=out_dir, request_ids=ids
            )
        except SheetregError as exc:
            first = items[0]
            issues.append(
                Issue(
                    "request-extract-failed",
                    table.name,
                    table.ref(first.index, "client_id"),
                    ", ".join(ids),
                    client_id,
                    str(exc),
                )
            )
            continue
        processed.append(Processed(client_id, ids, files.folder))
        outcome = outcome_text(files.folder.name, today, register.lang)
        edits += [
            (CellEdit(table.name, table.ref(i.index, "outcome"), outcome), i.index) for i in items
        ]
    return processed, issues, edits


def run_requests(
    path: Path,
    *,
    today: dt.date,
    lang: str | None = None,
    process: bool = False,
    out_dir: Path | None = None,
) -> RequestsRun:
    """Plan the Requests sheet, make extracts when ``process``, write Due and Outcome cells.

    Writes go through :func:`sheetreg.workbook.write_cells` in one call (only cells whose
    value changes); a refused write is reported in the result, not raised, so that the list of
    open requests is still shown. A second run on the same day writes nothing.
    """
    from sheetreg.errors import WriteRefused
    from sheetreg.requests import (
        manual_extract_issues,
        plan_requests,
    )
    from sheetreg.workbook import ensure_not_open, read_register, write_cells

    path = Path(path)
    register = read_register(path, formulas=False)
    plan = plan_requests(register, today, lang)
    run = RequestsRun(plan, path, process)
    edits: list[CellEdit] = list(plan.due_edits)
    todo = plan.to_process if process else []
    if todo:
        try:
            ensure_not_open(path)  # before any extract: its outcome must be recordable
        except WriteRefused as exc:
            run.write_error = str(exc)
            return run
    table = register.table("requests")
    if process and table is not None:
        # An encrypted register: its extracts are made by hand, with a password to hand over.
        run.failures += manual_extract_issues(plan, table)
    outcomes: list[tuple[int, str]] = []
    if todo:
        run.processed, failures, made = make_pending_extracts(register, plan, today, lang, out_dir)
        run.failures += failures
        edits += [edit for edit, _index in made]
        outcomes = [(index, str(edit.value)) for edit, index in made]
    if edits:
        try:
            run.write = write_cells(
                path, edits, expected=register.snapshot, keep_backups=_keep_backups(register)
            )
        except WriteRefused as exc:
            run.write_error = str(exc)
        else:
            for index, outcome in outcomes:
                plan.record_outcome(index, outcome)
    run.edits = len(edits)
    return run


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--process",
    is_flag=True,
    help="Also make the extract of every verified Access/Portability request without an "
    "outcome, and record it in the Outcome cell.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for extracts made by --process (default: extracts/ beside the workbook).",
)
@TODAY
@FORMAT
@LANG
def requests(
    *, path: Path, process: bool, out_dir: Path | None, today: dt.date, fmt: str, lang: str | None
) -> None:
    """Compute request deadlines, list open requests, and (with --process) answer them.

    Laskee pyyntöjen määräajat, listaa avoimet pyynnöt ja (--process) tekee otteet.

    Writes the Due column (only cells that change) by GDPR Art. 12(3) with Finnish holidays,
    then lists open requests by days left, overdue first, with what each one needs.

    \b
    Example:  sheetreg requests asiakasrekisteri.xlsx --process
    Exit: 0 nothing to act on, 1 overdue/unverified/unusable requests or a refused write,
          2 the file cannot be used.
    """
    run = run_requests(path, today=today, lang=lang, process=process, out_dir=out_dir)
    if fmt == "json":
        _emit_json(run.to_dict())
    else:
        click.echo(run.text())
    sys.exit(run.exit_code)


def _ask_client(register: Register, lang: str) -> str:
    """Ask in the terminal for a client, by name or ID; names are shown on stderr only."""
    from sheetreg.extract import search_clients

    words = _WORDS[lang]
    while True:
        try:
            query = click.prompt(words["search"], default="", show_default=False, err=True)
        except click.exceptions.Abort:
            raise NoClientChosen(words["no_client"]) from None
        query = query.strip()
        if not query:
            raise NoClientChosen(words["no_client"])
        found = search_clients(register, query, limit=21)
        if not found:
            click.echo(words["no_match"], err=True)
            continue
        for number, candidate in enumerate(found[:20], start=1):
            click.echo(_candidate_line(number, candidate, lang), err=True)
        if len(found) > 20:
            click.echo(words["more"].format(n=20), err=True)
        try:
            choice = click.prompt(words["pick"], default="", show_default=False, err=True)
        except click.exceptions.Abort:
            raise NoClientChosen(words["no_client"]) from None
        choice = choice.strip()
        if choice.isdigit() and 1 <= int(choice) <= min(len(found), 20):
            return found[int(choice) - 1].client_id


def _candidate_line(number: int, candidate: Candidate, lang: str) -> str:
    from sheetreg.requests import format_date

    start = format_date(candidate.start, lang) if candidate.start else ""
    return (
        f"  {number:>2}. {candidate.client_id:<10} {candidate.name:<30} "
        f"{candidate.city:<16} {start}"
    )


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--client",
    "client_id",
    metavar="ID",
    default=None,
    help="The client's ID; without it, sheetreg asks (search by name or ID).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Parent folder of the extract (default: extracts/ beside the workbook).",
)
@click.option(
    "--password-stdin",
    "password_stdin",
    is_flag=True,
    help="Encrypt the extract (.xlsx only) with a password read from the first line of "
    "standard input, instead of a new one; needs --client. / Salaa ote vakiosyötteestä "
    "luetulla salasanalla.",
)
@click.option(
    "--plain",
    is_flag=True,
    help="For an encrypted register: write the extract unencrypted, HTML and JSON included "
    "(a warning is printed). / Salatun rekisterin ote salaamattomana.",
)
@TODAY
@LANG
@FORMAT
def extract(
    *,
    path: Path,
    client_id: str | None,
    out_dir: Path | None,
    password_stdin: bool,
    plain: bool,
    today: dt.date,
    lang: str | None,
    fmt: str,
) -> None:
    """Make one client's access extract: xlsx, print-friendly HTML and JSON (GDPR Art. 15, 20).

    Tekee asiakkaan tarkastusotteen: xlsx, tulostettava HTML ja JSON.

    The folder is named by client ID and date, never by name:
    extracts/<client-id>-<YYYY-MM-DD>/ beside the workbook unless --out says otherwise.

    The extract of a password-protected register is the .xlsx only, encrypted with a new
    password shown once (give it to the person by another channel); --password-stdin takes
    one instead, --plain writes every format unencrypted.
    Salatun rekisterin ote on vain salattu .xlsx; sen salasana näytetään kerran.

    \b
    Example:  sheetreg extract asiakasrekisteri.xlsx --client A1001
    Exit: 0 extract written, 1 refused (the ID is on two rows), 2 no such client or bad file.
    """
    from sheetreg.extract import make_extract
    from sheetreg.workbook import read_register

    password = _password_from_stdin(client_id) if password_stdin else None
    if password is not None and plain:
        raise click.UsageError("--password-stdin and --plain exclude each other.")
    register = read_register(path, formulas=False)
    lang = lang or register.lang
    if client_id is None:
        client_id = _ask_client(register, lang)
    files = make_extract(
        register,
        client_id,
        today=today,
        lang=lang,
        out_dir=out_dir,
        password=password,
        allow_plain=plain,
    )
    words = _WORDS[lang]
    if plain and register.encrypted:
        click.echo(words["plain_warning"], err=True)
    shown = files.password if files.encrypted and password is None else None
    if fmt == "json":
        _emit_json(
            {
                "client_id": client_id.strip(),
                "made_on": today.isoformat(),
                "lang": lang,
                **files.to_dict(),
                "password": shown,
            }
        )
        return
    click.echo(words["extract_done"].format(folder=files.folder))
    for file in files.paths:
        click.echo(f"  {file.name}")
    if shown is not None:
        click.echo(f"{words['extract_password']}\n\n    {shown}\n")
        click.echo(words["extract_handover"])
    elif files.encrypted:
        click.echo(words["extract_given_password"])


def _password_from_stdin(client_id: str | None) -> str:
    """The extract password from the first line of standard input (never echoed)."""
    if client_id is None:  # the client search would read standard input too
        raise click.UsageError("--password-stdin needs --client ID.")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_EXTRACT_PASSWORD:
        raise click.BadParameter(
            f"the password must have at least {MIN_EXTRACT_PASSWORD} characters. / "
            f"Salasanassa on oltava vähintään {MIN_EXTRACT_PASSWORD} merkkiä.",
            param_hint="--password-stdin",
        )
    return password
