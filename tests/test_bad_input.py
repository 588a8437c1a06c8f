"""Bad input: one clear line, the right exit code, no traceback, nothing written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from conftest import client, soffice_convert


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sheetreg`` as a real process; ``env`` adds environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "sheetreg", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={**os.environ, "SHEETREG_DEBUG": "", **(env or {})},
    )


def assert_clean_refusal(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word.lower() in proc.stderr.lower(), proc.stderr


def snapshot_dir(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_missing_path(tmp_path):
    """A path that does not exist: exit 2, the message says so."""
    assert_clean_refusal(run_cli("validate", str(tmp_path / "nope.xlsx")), 2, "not found")


def test_folder(tmp_path):
    """A folder instead of a file."""
    assert_clean_refusal(run_cli("validate", str(tmp_path)), 2, "folder")


def test_empty_file(tmp_path):
    """A zero-byte file."""
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    assert_clean_refusal(run_cli("validate", str(path)), 2, "empty")


def test_random_bytes(tmp_path):
    """Random bytes named .xlsx."""
    path = tmp_path / "noise.xlsx"
    path.write_bytes(os.urandom(4096))
    assert_clean_refusal(run_cli("validate", str(path)), 2, "not an Excel workbook")


def test_csv_renamed_xlsx(tmp_path):
    """A CSV file renamed .xlsx is recognised as text."""
    path = tmp_path / "asiakkaat.xlsx"
    path.write_text("Asiakasnumero;Etunimi\nA1;Aino\n", encoding="utf-8")
    assert_clean_refusal(run_cli("validate", str(path)), 2, "CSV")


def test_truncated_zip(tmp_path, register_path):
    """A workbook cut off half-way (a copy interrupted) is called damaged."""
    good = register_path(clients=[client()])
    path = tmp_path / "cut.xlsx"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert_clean_refusal(run_cli("validate", str(path)), 2, "damaged")


def test_zip_that_is_not_a_workbook(tmp_path):
    """A zip of other files."""
    path = tmp_path / "notes.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert_clean_refusal(run_cli("validate", str(path)), 2, "not an Excel workbook")


def test_encrypted_workbook_without_a_keyring(tmp_path, register_path):
    """A password-protected workbook whose password cannot be had is named as encrypted, with
    the keyring's problem (tests/test_encrypted.py reads one with its password)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = register_path(clients=[client()])
    path = tmp_path / "salattu.xlsx"
    with plain.open("rb") as src, path.open("wb") as out:
        OOXMLFile(src).encrypt("salasana", out)
    # The fail backend: the real process must never touch the user's keyring.
    proc = run_cli(
        "validate", str(path), env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    )
    assert_clean_refusal(proc, 2, "password-protected", "keyring")


@pytest.mark.libreoffice
def test_legacy_xls(tmp_path, register_path):
    """A real Excel 97-2003 file (made by LibreOffice) is recognised as .xls."""
    xls = soffice_convert(register_path(clients=[client()]), "xls", tmp_path / "xls")
    assert_clean_refusal(run_cli("validate", str(xls)), 2, ".xls")


def test_no_register_sheets(tmp_path):
    """A workbook with none of the register sheets."""
    path = tmp_path / "budget.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Budjetti"
    wb.active.append(["Kuukausi", "Summa"])
    wb.save(path)
    assert_clean_refusal(run_cli("validate", str(path)), 2, "none of the register")


def test_findings_exit_one(register_path):
    """Findings that are errors give exit 1 and a text report grouped by sheet."""
    path = register_path(clients=[client(phone="12")])
    proc = run_cli("validate", str(path), "--today", "2026-11-25")
    assert proc.returncode == 1
    assert "Asiakkaat" in proc.stdout and "D2" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_stray_formatting_to_last_row(register_path):
    """Formatting that reaches row 1,048,576 neither slows reading down nor adds findings."""
    path = register_path(clients=[client()])
    wb = openpyxl.load_workbook(path)
    ws = wb["Asiakkaat"]
    ws.cell(row=1_048_576, column=1).number_format = "@"
    ws.cell(row=1_048_576, column=19).number_format = "@"
    wb.save(path)
    proc = run_cli("validate", str(path), "--format", "json", "--today", "2026-11-25")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"valid": true' in proc.stdout


def test_bad_today_is_usage_error(register_path):
    """A malformed --today is a usage error (exit 2)."""
    proc = run_cli("validate", str(register_path(clients=[client()])), "--today", "25.11.2026")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_nothing_written_on_bad_input(tmp_path):
    """Refusals leave the folder exactly as it was (no backups, no temp files)."""
    path = tmp_path / "noise.xlsx"
    path.write_bytes(b"PK\x03\x04" + os.urandom(100))
    before = snapshot_dir(tmp_path)
    run_cli("validate", str(path))
    assert snapshot_dir(tmp_path) == before
    assert not (tmp_path / "backups").exists()


def test_write_cells_refuses_bad_input(tmp_path):
    """The public write API refuses unusable files with a sheetreg error, writing nothing."""
    from sheetreg.errors import SheetregError
    from sheetreg.workbook import write_cells

    path = tmp_path / "noise.xlsx"
    path.write_bytes(io.BytesIO(os.urandom(300)).getvalue())
    before = snapshot_dir(tmp_path)
    with pytest.raises(SheetregError):
        write_cells(path, {"Asiakkaat!A1": "x"})
    assert snapshot_dir(tmp_path) == before


def test_weekly_run_on_a_damaged_sheet(tmp_path, register_path):
    """The weekly run reads the workbook in a thread while it imports its other steps: a
    sheet that cannot be read still gives one line naming the file and sheet, exit 2, and
    nothing written (no report, no backup, the workbook as it was)."""
    good = register_path(clients=[client()])
    path = tmp_path / "vioittunut.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetData>", b"<sheetData><row r=", 1)
            dst.writestr(info, data)
    before = snapshot_dir(tmp_path)
    proc = run_cli("run", str(path), "--today", "2026-11-25", cwd=tmp_path)
    assert_clean_refusal(proc, 2, "vioittunut.xlsx", "Asiakkaat")
    assert snapshot_dir(tmp_path) == before
    assert not (tmp_path / "reports").exists() and not (tmp_path / "backups").exists()
