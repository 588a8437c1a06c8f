"""`sheetreg demo`: a synthetic register, and sheetreg run on it, so a newcomer sees it work.

It validates, flags every client, erases one ended client, and makes one access extract.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sheetreg.errors import WriteRefused

DEMO_MARK = ".sheetreg-demo"


@dataclass
class DemoSummary:
    """Where the demo put things and what sheetreg found."""

    folder: Path
    workbook: Path
    lang: str
    clients: int
    findings: dict[str, int] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    retention: list[str] = field(default_factory=list)  # what flag and erase did

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "folder": str(self.folder),
            "workbook": str(self.workbook),
            "lang": self.lang,
            "clients": self.clients,
            "findings": self.findings,
            "files": {k: str(v) for k, v in self.files.items()},
            "retention": self.retention,
        }

    def text(self) -> str:
        """A short account for the terminal, in the demo's language."""
        fi = self.lang == "fi"
        lines = [
            ("Esimerkkirekisteri" if fi else "Demo register") + f": {self.workbook}",
            ("Asiakkaita" if fi else "Clients") + f": {self.clients}",
            ("Tarkistuksen löydökset" if fi else "Validation findings") + ":",
        ]
        lines += [f"  {code}: {n}" for code, n in sorted(self.findings.items())]
        lines += self.retention
        for what, path in self.files.items():
            lines.append(f"{what}: {path}")
        lines.append(
            "Avaa työkirja Excelissä tai LibreOfficessa ja katso merkityt solut."
            if fi
            else "Open the workbook in Excel or LibreOffice and look at the cells named above."
        )
        return "\n".join(lines)


def run_demo(folder: Path, *, clients: int, lang: str, today: dt.date) -> DemoSummary:
    """Make (or remake) the demo register in ``folder`` and run sheetreg's checks on it."""
    from sheetreg.demo import make_demo_workbook
    from sheetreg.erasure import run_retention_demo
    from sheetreg.extract import make_demo_extract
    from sheetreg.validate import validate
    from sheetreg.workbook import read_register

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
    path.unlink(missing_ok=True)
    make_demo_workbook(path, clients=clients, lang=lang, today=today)
    report = validate(read_register(path), today, lang)
    reports = folder / "reports"
    reports.mkdir(exist_ok=True)
    report_path = reports / f"validation-{today.isoformat()}.json"
    report_path.write_text(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    fi = lang == "fi"
    files: dict[str, Path] = {("Tarkistusraportti" if fi else "Validation report"): report_path}
    extract = make_demo_extract(path, today=today, lang=lang)
    if extract is not None:
        files["Tarkastusote" if fi else "Access extract"] = extract.folder
    # After the extract: the erasure below changes the workbook the extract was read from.
    retention = run_retention_demo(path, today)
    files["Poistojen kirjaus (tiedosto)" if fi else "Erasure journal (file)"] = retention.journal
    summary = DemoSummary(folder, path, lang, clients, report.summary()["by_code"], files)
    summary.retention = retention.lines(lang)
    return summary
