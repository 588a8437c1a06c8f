"""Shared fixtures: small real registers written with openpyxl, synthetic data only."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from sheetreg.schema import CLIENTS, DISCLOSURES, INVOICES, REQUESTS, Sheet

# The tests' caches (the holiday tables) are their own, not the user's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="sheetreg-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "excel"
if not CORPUS.is_dir():  # CI clones main beside shared/; a developer's tree is /work/main
    CORPUS = Path("/work/shared/corpus/excel")

TODAY = dt.date(2026, 11, 25)

CLIENT_HEADERS = [c.key for c in CLIENTS.columns]

GOOD_CLIENT: dict[str, Any] = {
    "client_id": "A1001",
    "first_name": "Aino",
    "last_name": "Virtanen",
    "phone": "040 123 4567",
    "email": "aino.virtanen@example.fi",
    "street": "Hämeenkatu 1 A 2",
    "postal_code": "33100",
    "city": "Tampere",
    "billing_method": "Sähköposti",
    "start": dt.date(2024, 3, 1),
    "end": None,
    "survey_consent": "Kyllä",
    "marketing_objection": "Ei",
}


def zombies() -> list[str]:
    """This process's children that ended and were not reaped (Linux /proc)."""
    import os
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(stat.parent.name)
    return found


def client(**changes: Any) -> dict[str, Any]:
    """A valid client row, with ``changes`` applied."""
    row = dict(GOOD_CLIENT)
    row.update(changes)
    return row


def build_register(
    path: Path,
    *,
    clients: Sequence[dict[str, Any]] = (),
    invoices: Sequence[dict[str, Any]] = (),
    requests: Sequence[dict[str, Any]] = (),
    disclosures: Sequence[dict[str, Any]] = (),
    lang: str = "fi",
    sheets: Sequence[Sheet] = (CLIENTS, INVOICES, REQUESTS, DISCLOSURES),
    extra_headers: dict[str, list[str]] | None = None,
) -> Path:
    """Write a small register with every schema column, rows given as ``{key: value}``."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    data = {"clients": clients, "invoices": invoices, "requests": requests}
    data["disclosures"] = disclosures
    for spec in sheets:
        ws = wb.create_sheet(spec.label(lang))
        keys = [c.key for c in spec.columns]
        extras = (extra_headers or {}).get(spec.key, [])
        ws.append([spec.column(k).label(lang) for k in keys] + extras)
        for row in data.get(spec.key, ()):
            ws.append([row.get(k) for k in keys] + [row.get(e) for e in extras])
    wb.save(path)
    return path


@pytest.fixture
def register_path(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``register_path(clients=[...], ...)`` writes a register and returns its path."""

    def make(name: str = "rekisteri.xlsx", **kwargs: Any) -> Path:
        return build_register(tmp_path / name, **kwargs)

    return make


def soffice_convert(src: Path, fmt: str, outdir: Path) -> Path:
    """Convert ``src`` with a real headless LibreOffice; returns the converted file."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.fail("LibreOffice (soffice) is not installed; .ci/run installs it")
    profile = outdir / "lo-profile"
    outdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--convert-to",
            fmt,
            "--outdir",
            str(outdir),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    ext = fmt.split(":", maxsplit=1)[0]
    out = outdir / f"{src.stem}.{ext}"
    assert proc.returncode == 0 and out.exists(), proc.stderr
    return out


_CSV_MACRO = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1"
 script:language="StarBasic">
Sub ToCsv(src As String, dst As String, pw As String)
 On Error GoTo Finish
 Dim args(1) As New com.sun.star.beans.PropertyValue
 args(0).Name = &quot;Hidden&quot; : args(0).Value = True
 args(1).Name = &quot;Password&quot; : args(1).Value = pw
 doc = StarDesktop.loadComponentFromURL(ConvertToURL(src), &quot;_blank&quot;, 0, args())
 If IsNull(doc) Then GoTo Finish
 Dim out(0) As New com.sun.star.beans.PropertyValue
 out(0).Name = &quot;FilterName&quot; : out(0).Value = &quot;Text - txt - csv (StarCalc)&quot;
 doc.storeToURL(ConvertToURL(dst), out())
 doc.close(True)
Finish:
 StarDesktop.terminate()
End Sub
</script:module>
"""


def libreoffice_open_with_password(src: Path, password: str, workdir: Path) -> Path | None:
    """Open ``src`` in headless LibreOffice with ``password``; its first sheet as CSV, or None.

    soffice has no password option, so a Basic macro in a fresh user profile opens the file
    with the ``Password`` load property and stores the CSV. The profile is created first,
    because LibreOffice's first start replaces the Standard library.
    """
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.fail("LibreOffice (soffice) is not installed; .ci/run installs it")
    profile = workdir / "lo-profile"
    base = [soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore"]
    if not (profile / "user" / "basic" / "Standard").is_dir():
        subprocess.run(
            [*base, "--terminate_after_init"], capture_output=True, timeout=120, check=False
        )
        (profile / "user" / "basic" / "Standard" / "Module1.xba").write_text(_CSV_MACRO)
    out = workdir / f"{src.stem}-{len(list(workdir.glob('*.csv')))}.csv"
    for text in (str(src), str(out), password):
        assert '"' not in text  # Basic string literals in the macro URL
    macro = f'macro:///Standard.Module1.ToCsv("{src}","{out}","{password}")'
    subprocess.run([*base, macro], capture_output=True, timeout=120, check=False)
    return out if out.exists() else None
