"""Plain-text renderings for people who are not technical: grouped, counted, in their language."""

from __future__ import annotations

from itertools import groupby

from sheetreg.findings import CATALOGUE, Report

_WORDS = {
    "fi": {
        "ok": "Kaikki kunnossa: virheitä ei löytynyt.",
        "summary": "Yhteensä {errors} virhettä ja {warnings} varoitusta.",
        "error": "VIRHE",
        "warning": "huomio",
        "sheet": "Välilehti",
        "whole": "koko välilehti",
    },
    "en": {
        "ok": "All good: no errors found.",
        "summary": "In all {errors} errors and {warnings} warnings.",
        "error": "ERROR",
        "warning": "note",
        "sheet": "Sheet",
        "whole": "whole sheet",
    },
}


def render_findings(report: Report, lang: str) -> str:
    """Findings grouped by sheet, each line: where, how serious, what to do."""
    words = _WORDS[lang]
    lines = [report.workbook, ""]
    for sheet, group in groupby(report.findings, key=lambda f: f.sheet):
        items = list(group)
        lines.append(f"{words['sheet']} {sheet} ({len(items)})")
        for f in items:
            where = f.cell or words["whole"]
            title = CATALOGUE[f.code].title(lang)
            lines.append(f"  {where:>7}  {words[f.severity]:<6} {title}: {f.message}  [{f.code}]")
        lines.append("")
    summary = report.summary()
    if summary["errors"] == 0 and summary["warnings"] == 0:
        lines.append(words["ok"])
    else:
        lines.append(words["summary"].format(**summary))
    return "\n".join(lines)
