"""`validate` on a whole file, using both cores of a small machine when the file is large.

python-calamine parses a sheet while holding the GIL, and a register's Clients sheet and its
Invoices sheet are each a large share of the work. On Linux a forked child reads and checks
the Clients sheet while this process reads and checks the others; the child sends back its
findings and the set of client IDs, and the cross-sheet check (unknown-client) runs here.
The result is the same report :func:`sheetreg.validate.validate` gives on the whole register
(a test checks that); small files and other systems take the plain serial path.

The file is read (and a password-protected one decrypted, with the keyring's password) once,
here, before the fork: the child shares the bytes copy-on-write and never asks the keyring.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sheetreg import forking
from sheetreg.errors import SheetregError, UnusableWorkbook
from sheetreg.findings import Report
from sheetreg.schema import CLIENTS, match_sheet
from sheetreg.validate import (
    client_ids,
    missing_sheets,
    reference_findings,
    report_of,
    sheet_findings,
    validate,
)
from sheetreg.workbook import OTHER_SHEETS, load_package, read_register

if TYPE_CHECKING:
    from sheetreg.workbook import Package

# Below this size the second process costs more than it saves (measured: about 1 MB).
SPLIT_MIN_BYTES = 1_000_000
CLIENT_SHEETS = frozenset({"clients"})
OTHER_TABLES = frozenset({"invoices", "requests", "disclosures", "erasure_log", OTHER_SHEETS})


def validate_path(
    path: Path | str, today: dt.date, lang: str | None = None, *, split: bool | None = None
) -> Report:
    """Read and validate a workbook; ``split`` forces (True) or forbids (False) two processes."""
    path = Path(path)
    if split is None:
        split = forking.CAN_FORK and _size(path) >= SPLIT_MIN_BYTES
    if not split:
        return validate(read_register(path), today, lang)
    return _validate_split(path, today, lang)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _validate_split(path: Path, today: dt.date, lang: str | None) -> Report:
    package = load_package(path)
    collect_clients = forking.start(_clients_part, path, package, today, lang)
    try:
        register = read_register(path, sheets=OTHER_TABLES, fork=False, package=package)
        lang = lang or register.lang
        findings = [*missing_sheets(register, lang), *sheet_findings(register, today, lang)]
    finally:
        child = collect_clients()
    if child is forking.FAILED:  # the child failed unexpectedly: do it the plain way
        return validate(read_register(path, package=package), today, lang)
    status, child_findings, ids = child
    if status == "error":
        raise UnusableWorkbook(child_findings)
    findings += child_findings
    if ids is not None:
        findings += reference_findings(register, ids, lang)
    return report_of(register, findings)


def _clients_part(
    path: Path, package: Package, today: dt.date, lang: str | None
) -> tuple[str, Any, Any]:
    try:
        register = read_register(path, sheets=CLIENT_SHEETS, fork=False, package=package)
    except SheetregError as exc:
        return ("error", str(exc), None)
    lang = lang or register.lang
    # Settings and other tabs are the parent's to scan; a second Clients tab (which the
    # parent does not read) stays here.
    for name in list(register.other_sheets):
        if match_sheet(name) is not CLIENTS:
            del register.other_sheets[name]
    clients = register.table("clients")
    ids = client_ids(clients) if clients is not None else None
    return ("ok", sheet_findings(register, today, lang), ids)
