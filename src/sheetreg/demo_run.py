"""`sheetreg demo`: a synthetic register, and the weekly job run on it, so a newcomer sees it work.

It makes the register, approves the erasure of one ended client (as the therapist would, by
writing Kyllä in its Approve erasure cell), runs the weekly job (validation, privacy-status
flags, request deadlines and extracts, the approved erasure, the hygiene report), then runs
it once more to show that a second run on the same day changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sheetreg.errors import WriteRefused

if TYPE_CHECKING:
    from sheetreg.run import RunResult

DEMO_MARK = ".sheetreg-demo"


@dataclass
class DemoSummary:
    """Where the demo put things and what the weekly job did."""

    folder: Path
    workbook: Path
    lang: str
    clients: int
    approved: str | None  # the client whose erasure the demo approved
    first: RunResult
    second: RunResult
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "folder": str(self.folder),
            "workbook": str(self.workbook),
            "lang": self.lang,
            "clients": self.clients,
            "approved": self.approved,
            "run": self.first.to_dict(),
            "second_run": {
                "written": self.second.written,
                "cells_written": self.second.counts.get("cells_written", 0),
            },
            "files": {k: str(v) for k, v in self.files.items()},
        }

    def text(self) -> str:
        """A short account for the terminal, in the demo's language."""
        from sheetreg.report import summary_lines

        fi = self.lang == "fi"
        run = self.first
        lines = [
            ("Esimerkkirekisteri" if fi else "Demo register") + f": {self.workbook}",
            ("Viikkoajo" if fi else "Weekly job") + ":",
            *summary_lines(run.report)[1:],
        ]
        for o in run.erasure.outcomes:
            lines.append(
                (
                    f"Poistettu asiakas {o.plan.client_id} → {o.reference} (loki {o.log_id}): "
                    if fi
                    else f"Erased client {o.plan.client_id} → {o.reference} (log {o.log_id}): "
                )
                + o.verification.text(self.lang)
            )
        if self.second.written:
            lines.append(
                "Toinen ajo kirjoitti vielä soluja." if fi else "The second run wrote cells."
            )
        else:
            lines.append(
                "Toinen ajo samana päivänä: työkirjaa ei muutettu."
                if fi
                else "A second run on the same day: the workbook was not changed."
            )
        for what, path in self.files.items():
            lines.append(f"{what}: {path}")
        lines.append(
            "Avaa raportti selaimessa ja työkirja Excelissä tai LibreOfficessa."
            if fi
            else "Open the report in a browser and the workbook in Excel or LibreOffice."
        )
        return "\n".join(lines)


def run_demo(folder: Path, *, clients: int, lang: str, today: dt.date) -> DemoSummary:
    """Make (or remake) the demo register in ``folder`` and run the weekly job on it twice."""
    from sheetreg.demo import make_demo_workbook
    from sheetreg.run import run_weekly

    folder = folder.resolve()
    mark = folder / DEMO_MARK
    name = "asiakasrekisteri.xlsx" if lang == "fi" else "client-register.xlsx"
    path = folder / name
    if path.exists() and not mark.exists():
        # Never overwrite a workbook the demo did not make: it could be someone's register.
        raise WriteRefused(
            f"{path} exists and was not made by sheetreg demo; choose another --dir. / "
            "Kansiossa on jo työkirja, jota demo ei tehnyt."
        )
    folder.mkdir(parents=True, exist_ok=True)
    mark.write_text("made by sheetreg demo; synthetic data only\n", encoding="utf-8")
    _clear_earlier_demo(folder, path)
    make_demo_workbook(path, clients=clients, lang=lang, today=today)
    approved = approve_one_erasure(path, today)
    # The run log goes to the demo's folder too: demo runs stay out of the real run log.
    first = run_weekly(path, today, lang=lang, log_dir=folder / "log")
    second = run_weekly(path, today, lang=lang, log_dir=folder / "log")
    fi = lang == "fi"
    files = {("Hygieniaraportti" if fi else "Hygiene report"): first.files["html"]}
    files["JSON"] = first.files["json"]
    for p in first.processed:
        files[("Tarkastusote" if fi else "Access extract") + f" {p.client_id}"] = p.folder
    files["Ajoloki" if fi else "Run log"] = folder / "log"
    return DemoSummary(folder, path, lang, clients, approved, first, second, files)


def _clear_earlier_demo(folder: Path, path: Path) -> None:
    """Remove what an earlier demo made here, so the new register starts with a clean log."""
    import shutil

    from sheetreg.erasure import journal_path, key_file

    for made in (path, journal_path(path), key_file(path)):
        made.unlink(missing_ok=True)
    for sub in ("reports", "extracts", "backups", "log"):
        shutil.rmtree(folder / sub, ignore_errors=True)


def approve_one_erasure(path: Path, today: dt.date) -> str | None:
    """Write Kyllä/Yes in the Approve erasure cell of the first ended client that no hold
    blocks (the demo's stand-in for the therapist's approval); returns its client ID."""
    from sheetreg.retention import client_statuses
    from sheetreg.schema import YES_NO
    from sheetreg.workbook import read_register, write_cells

    register = read_register(path, formulas=False)
    clients = register.table("clients")
    if clients is None or not clients.has("approve_erasure"):
        return None
    for status in client_statuses(register, today).values():
        if status.state == "ended" and status.awaiting_approval and not status.blocked:
            cell = f"{clients.name}!{clients.ref(status.index, 'approve_erasure')}"
            write_cells(path, {cell: YES_NO[0].label(register.lang)}, expected=register.snapshot)
            return status.client_id
    return None
