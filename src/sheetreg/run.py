"""`sheetreg run`: the weekly job, with one read and one write of the workbook.

In order: read the register once; validate it; work out every client's privacy status (the
flags); plan the Requests sheet (due dates, and the extract of every verified access or
portability request still without one); plan the approved and automatic erasures; then write
everything (flags, due dates, outcomes, erasures with their log rows) in one call to
:func:`sheetreg.erasure.execute_erasures`, which goes through the safe writer. Last, the hygiene
report (:mod:`sheetreg.report`) is written to ``reports/`` as HTML and JSON, and one line goes
to the run log in the platform's log folder.

A second run on the same day finds every flag, date and outcome already in place and writes
nothing to the workbook; its report is the same as the first run's, file for file, except
for the time it was made.

The run log (``user_log_dir("sheetreg")/runs.jsonl``) holds times, counts and hashes: never a
client ID, name or cell value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sheetreg import forking

if TYPE_CHECKING:
    from sheetreg.cli_requests import Processed
    from sheetreg.erasure import ErasureResult
    from sheetreg.findings import Report
    from sheetreg.register import Register
    from sheetreg.requests import Issue, RequestsPlan
    from sheetreg.retention import ClientStatus, ErasurePlan
    from sheetreg.xlsxpatch import CellEdit

RUN_LOG_NAME = "runs.jsonl"


@dataclass
class RunResult:
    """Everything one weekly run found, planned, wrote and reported."""

    workbook: Path
    today: dt.date
    lang: str
    validation: Report
    statuses: list[ClientStatus]
    requests: RequestsPlan
    plans: list[ErasurePlan]
    erasure: ErasureResult
    processed: list[Processed] = field(default_factory=list)
    extract_issues: list[Issue] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def written(self) -> bool:
        """True when the workbook was written."""
        return self.erasure.written

    @property
    def counts(self) -> dict[str, int]:
        """The counts at a glance (the e-mail's and the log's content): numbers only."""
        return dict(self.report.get("counts", {}))

    @property
    def exit_code(self) -> int:
        """1 when something needs the therapist: an error finding, an overdue request, a
        refused erasure or extract, a failed proof; else 0."""
        counts = self.counts
        needs = (
            counts.get("errors", 0)
            + counts.get("requests_overdue", 0)
            + counts.get("erasures_refused", 0)
            + counts.get("verification_failed", 0)
            + len(self.extract_issues)
        )
        return 1 if needs else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the report's data, and where the files are."""
        return {
            **self.report,
            "written": self.written,
            "files": {k: str(v) for k, v in self.files.items()},
            "exit_code": self.exit_code,
        }

    def text(self) -> str:
        """A short account for the terminal, in the report's language."""
        from sheetreg.report import summary_lines

        lines = summary_lines(self.report)
        fi = self.lang == "fi"
        for kind, path in self.files.items():
            label = {"html": "Raportti" if fi else "Report", "json": "JSON"}.get(kind, kind)
            lines.append(f"{label}: {path}")
        return "\n".join(lines)


# What the spares' jobs run: imported before they are forked, so that they share it (the
# rest is imported while the workbook is read; a spare that searches a big package for an
# erasure's leftovers imports the erasure module itself).
SPARE_MODULES = ("python_calamine", "lxml.etree", "sheetreg.workbook", "sheetreg.xlsxpatch")


# The patch and the checks of the write (the patch's read-back goes with it; fidelity, the
# proof's second half and the last write's read-back) go to children forked on the way in,
# while this process is small.
@forking.spares(4, *SPARE_MODULES)
def run_weekly(
    path: Path | str,
    today: dt.date,
    *,
    lang: str | None = None,
    report_dir: Path | None = None,
    extracts_dir: Path | None = None,
    backup_dir: Path | None = None,
    keep_backups: int | None = None,
    now: dt.datetime | None = None,
    log_dir: Path | None = None,
) -> RunResult:
    """Run the weekly job on the workbook at ``path`` as of ``today``; see the module doc.

    A refused write (the workbook open in Excel, changed meanwhile) raises WriteRefused after
    nothing was written, so that the scheduler tries again later. ``keep_backups`` (the
    schedule's ``[output] backup_count``) overrides the workbook's Number of backups setting.
    """
    from sheetreg.workbook import ensure_not_open, load_package, read_formula_cells, warm_patch

    started = time.perf_counter()
    path = Path(path)
    ensure_not_open(path)  # before extracts are made: their outcome must be recordable
    package = load_package(path)
    # The read goes on in a thread while the steps after it are imported here (calamine
    # lets go of the GIL while it parses a sheet).
    reading = _read_beside(path, package)
    from sheetreg.cli_requests import make_pending_extracts
    from sheetreg.erasure import (
        _flag_plan,
        execute_erasures,
        load_key,
        suppressed_rows,
        suppression_entries,
    )
    from sheetreg.requests import plan_requests
    from sheetreg.retention import due_erasures
    from sheetreg.validate import validate

    register = reading()
    lang = lang or register.lang
    # Validation needs nothing the other steps make: on Linux it runs on the second core
    # (a forked child sees the register as read) while the statuses are worked out here,
    # and so does the scan for formula cells that only validation reads. Its result is
    # wanted last, so it yields the cores to the write's children when they are short.
    big = _worth_forking(register)
    key = load_key(path)
    validating = forking.start(
        _validate_scanned, register, package.plain, today, lang, fork=big, background=True
    )
    # The patch is prepared by a spare while everything to write is worked out here.
    warm = warm_patch(package, register)
    del package  # a forked child has its own copy; an unforked one keeps what it needs
    matching: forking.Collector | None = None
    try:
        # So do the keyed hashes of every phone and e-mail, on a big register with
        # suppression entries on record (and so a key): two children, as the statuses take
        # as long here. The child sends back only the rows that match an entry.
        on_record = suppression_entries(path, register)
        if big and key and on_record:
            matching = forking.start(suppressed_rows, register, key, on_record)
        plans = due_erasures(register, today)
        if register.table("erasure_log") is None:
            _refuse_without_log(plans, register.path.name, lang)
        recorded = matching() if matching is not None else None
        # The flags count the suppression entries this run's erasures leave (idempotence).
        flag_edits, _changes, statuses = _flag_plan(
            path,
            register,
            today,
            plans,
            key,
            recorded=None if recorded is forking.FAILED else recorded,
            on_record=on_record,
        )
        requests = plan_requests(register, today, lang)
        edits: list[CellEdit] = [*flag_edits, *requests.due_edits]
        processed, extract_issues, outcomes = make_pending_extracts(
            register, requests, today, lang, extracts_dir
        )
        edits += [edit for edit, _index in outcomes]
        if requests.encrypted and register.table("requests") is not None:
            # No automatic extract of an encrypted register: its password must be handed over.
            from sheetreg.requests import manual_extract_issues

            extract_issues += manual_extract_issues(requests, register.table("requests"))
        from sheetreg.report import (
            build_report,
            client_sections,
            period_start,
            render_ahead,
            write_report,
        )

        folder = report_dir or path.parent / "reports"
        previous = previous_run(folder, today)
        sections: dict[str, Any] = {}
        rendered: list[Any] = []  # the sections' page and JSON, rendered with them
        made_for: list[Any] = []  # the erasures they were made with

        def prepare_report(erasing: list[Any]) -> None:
            # Done while the patch is made, or else during the write (while its proof is
            # still running beside it): a failure here must not stop it (the report then
            # makes these sections itself, after the write, and fails there if it must).
            # They depend on the erasures only by who is erased in full.
            key = [(o.plan.client_id, o.plan.scope) for o in erasing]
            if made_for == [key]:
                return
            sections.clear()
            rendered.clear()
            made_for[:] = [key]
            with contextlib.suppress(Exception):
                sections.update(
                    client_sections(
                        register,
                        statuses,
                        erasing,
                        today=today,
                        lang=lang,
                        start=period_start(previous, today),
                    )
                )
                rendered.append(render_ahead(sections, lang))

        erasure = execute_erasures(
            path,
            plans,
            register=register,
            extra_edits=edits,
            backup_dir=backup_dir,
            keep_backups=keep_backups,
            now=now,
            meanwhile=prepare_report,
            warm=warm,
        )
    except BaseException:
        for child in (validating, matching, warm):
            if child is not None:
                child.discard()
        raise
    # Made now if nothing was written (or with erasures other than those it was made with),
    # while validation may be under way.
    prepare_report(erasure.outcomes)
    # So is the report's part about clients, which needs nothing of validation either (on a
    # big register, validation is still running beside this by now); a failure there leaves
    # it to the report, which makes it itself, or fails there.
    ahead = rendered[0] if rendered else None
    # Validation needs nothing of the write, nor the write of it: it is collected only now.
    validation = validating()
    if validation is forking.FAILED:  # the child died: do it here
        if register.formula_cells is None:
            read_formula_cells(register, written=erasure.sha256_written or None)
        validation = validate(register, today, lang)
    if erasure.written:
        for edit, index in outcomes:
            requests.record_outcome(index, str(edit.value))
    result = RunResult(
        path,
        today,
        lang,
        validation,
        statuses,
        requests,
        plans,
        erasure,
        processed=processed,
        extract_issues=extract_issues,
    )
    result.report = build_report(result, register, previous, sections or None)
    result.files = write_report(result.report, folder, today, ahead)
    result.seconds = time.perf_counter() - started
    log_run(result, log_dir)
    return result


def _read_beside(path: Path, package: Any) -> Callable[[], Register]:
    """:func:`sheetreg.workbook.read_register` of ``package`` (without the formula scan,
    which validation makes) in a thread; calling the result waits for the register, or
    raises what the read raised."""
    from sheetreg.workbook import read_register

    done: list[Any] = []

    def read() -> None:
        try:
            done.append(read_register(path, package=package, formulas=False))
        except BaseException as exc:  # handed to the caller, which raises it
            done.append(exc)

    thread = threading.Thread(target=read, name="sheetreg-read")
    thread.start()

    def wait() -> Register:
        thread.join()
        if isinstance(done[0], BaseException):
            raise done[0]
        return done[0]

    return wait


def _validate_scanned(register: Register, plain: bytes, today: dt.date, lang: str) -> Report:
    """Validation, after the scan of ``plain`` (the package the register was read from) for
    the formula cells the read left out."""
    from sheetreg.validate import validate
    from sheetreg.workbook import read_formula_cells

    read_formula_cells(register, plain)
    return validate(register, today, lang)


def _worth_forking(register: Register) -> bool:
    """A second process pays off only for a register of some size; a small one validates in
    less time than the fork and the result's trip back cost."""
    clients = register.table("clients")
    return clients is not None and len(clients.rows) >= 2_000


def _refuse_without_log(plans: list[ErasurePlan], workbook: str, lang: str) -> None:
    """No Erasure log sheet: the erasures wait (reported as refused); the rest of the job runs."""
    from sheetreg.retention import Refusal
    from sheetreg.schema import ERASURE_LOG

    message = (
        f"{workbook}: välilehti {ERASURE_LOG.fi} puuttuu; lisää se (tyhjänä), niin poisto tehdään "
        "seuraavalla ajolla."
        if lang == "fi"
        else f"{workbook}: there is no {ERASURE_LOG.en} sheet; add it (empty) and the erasure is "
        "done at the next run."
    )
    for plan in plans:
        if plan.allowed:
            plan.refusals.append(Refusal("no-erasure-log", message))
            plan.scope = "none"


# --- the previous run and the run log ----------------------------------------------------------


def previous_run(report_dir: Path, today: dt.date) -> dt.date | None:
    """The date of the latest report in ``report_dir`` made for a day before ``today``."""
    from sheetreg.report import REPORT_PREFIX

    best: dt.date | None = None
    try:
        names = [p.name for p in report_dir.glob(f"{REPORT_PREFIX}*.json")]
    except OSError:
        return None
    for name in names:
        stem = name[len(REPORT_PREFIX) :][:10]  # a later run of the day adds "-2", "-3"…
        try:
            day = dt.date.fromisoformat(stem)
        except ValueError:
            continue
        if day < today and (best is None or day > best):
            best = day
    return best


def default_log_dir() -> Path:
    """The platform's log folder for sheetreg; the scheduler logs there too, and takes it
    from here (importing the scheduler would cost the run 18 ms at its very end)."""
    import platformdirs

    return platformdirs.user_log_path("sheetreg")


def workbook_key(workbook: Path | str) -> str:
    """A short, stable name for a workbook's scheduler and run-log entries: a hash of its
    absolute path."""
    absolute = os.path.normcase(Path(workbook).expanduser().resolve())
    return hashlib.sha256(absolute.encode("utf-8")).hexdigest()[:16]


def log_run(result: RunResult, log_dir: Path | None = None) -> Path | None:
    """Append one line about the run to the run log: counts and hashes, no personal data.

    A log that cannot be written does not fail the run (the run itself is done by then).
    """
    folder = log_dir or default_log_dir()
    entry = {
        "time": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "today": result.today.isoformat(),
        "workbook": workbook_key(result.workbook),
        "written": result.written,
        "sha256_before": result.erasure.sha256_before,
        "sha256_written": result.erasure.sha256_written or None,
        "seconds": round(result.seconds, 3),
        "counts": result.counts,
        "exit_code": result.exit_code,
    }
    target = folder / RUN_LOG_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
    except OSError:
        return None
    return target


def weekly_job(config: Any, today: dt.date) -> dict[str, int]:
    """The scheduler's job: :func:`run_weekly` with the schedule's settings; returns counts.

    Findings and refusals are the run's result, not its failure: only an unusable workbook or
    a refused write (say, the workbook open in Excel) fails the run, and the scheduler retries.
    """
    from sheetreg.secrets import ALLOW_PLAINTEXT_ENV

    previous = os.environ.get(ALLOW_PLAINTEXT_ENV)
    if config.allow_plaintext_keyring is not None:
        os.environ[ALLOW_PLAINTEXT_ENV] = "1" if config.allow_plaintext_keyring else "0"
    try:
        result = run_weekly(
            config.workbook,
            today,
            lang=config.lang,
            report_dir=config.report_dir,
            keep_backups=config.backup_count,
        )
    finally:
        if config.allow_plaintext_keyring is not None:
            if previous is None:
                os.environ.pop(ALLOW_PLAINTEXT_ENV, None)
            else:
                os.environ[ALLOW_PLAINTEXT_ENV] = previous
    return result.counts
