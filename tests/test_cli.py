"""The command line: init, validate, demo; exit codes, JSON shape, docs that cannot drift."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetreg.cli import cli

from conftest import client

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize(("lang", "sheet"), [("fi", "Asiakkaat"), ("en", "Clients")])
def test_init_writes_a_valid_empty_register(tmp_path, lang, sheet):
    """`init` writes a register in the chosen language that validates clean."""
    path = tmp_path / "r.xlsx"
    assert invoke("init", str(path), "--lang", lang).exit_code == 0
    result = invoke("validate", str(path), "--format", "json", "--today", "2026-11-25")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["findings"] == []
    import python_calamine as pc

    assert pc.CalamineWorkbook.from_path(str(path)).sheet_names[0] == sheet


def test_init_refuses_to_overwrite(tmp_path):
    """`init` never overwrites an existing file (exit 1, file untouched)."""
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["init", str(path)])
    assert result.exit_code == 1
    assert path.read_bytes() == b"precious"


def test_validate_json_exit_codes(register_path):
    """`validate --format json`: exit 1 with errors, one JSON object with the named keys."""
    path = register_path(clients=[client(email="x@")])
    result = invoke("validate", str(path), "--format", "json", "--today", "2026-11-25")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["valid"] is False
    assert [(f["code"], f["cell"]) for f in data["findings"]] == [("invalid-email", "E2")]


def test_validate_lang_en_text(register_path):
    """The text report follows --lang and groups findings under their sheet."""
    path = register_path(clients=[client(postal_code="123")])
    result = invoke("validate", str(path), "--lang", "en", "--today", "2026-11-25")
    assert "Sheet Asiakkaat (1)" in result.output
    assert "G2" in result.output and "ERROR" in result.output


def test_demo_runs_the_weekly_job_and_says_where_the_report_is(tmp_path, monkeypatch):
    """`demo` makes a synthetic register, runs the weekly job on it (twice: the second run
    changes nothing) and says where the report is."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = tmp_path / "demo"
    result = invoke("demo", "--dir", str(folder), "--today", "2026-11-25", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert Path(data["workbook"]).exists()
    from sheetreg.findings import CATALOGUE

    planted = {c for c in CATALOGUE if c not in {"formula-in-data", "merged-cells"}}
    planted -= {"missing-sheet", "missing-column", "duplicate-column"}
    assert planted <= {g["code"] for g in data["run"]["findings"]}
    run = data["run"]
    assert run["written"] and run["counts"]["erasures"] >= 1 and run["counts"]["extracts"] >= 1
    assert data["approved"] in {e["client_id"] for e in run["erasures"]}
    assert data["second_run"] == {"written": False, "cells_written": 0}
    report = Path(run["files"]["html"])
    assert report.is_file() and report.parent == folder.resolve() / "reports"
    text = invoke("demo", "--dir", str(folder), "--today", "2026-11-25").output
    assert str(report.parent) in text and "hygiene-2026-11-25" in text


def test_demo_never_overwrites_a_foreign_workbook(tmp_path):
    """A folder holding a workbook the demo did not make is refused."""
    (tmp_path / "asiakasrekisteri.xlsx").write_bytes(b"someone's register")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert (tmp_path / "asiakasrekisteri.xlsx").read_bytes() == b"someone's register"


def test_every_command_is_documented():
    """Every command of the CLI appears in the README's usage table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"`sheetreg {name}" in readme, name


def test_python_m_sheetreg_and_version():
    """`python -m sheetreg --version` works as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "sheetreg", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sheetreg" in proc.stdout


@pytest.mark.slow
def test_init_from_an_installed_wheel(tmp_path):
    """The wheel alone (no checkout, no templates/ folder) can write a new register."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("sheetreg-*.whl"))
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    out = tmp_path / "elsewhere" / "uusi.xlsx"
    out.parent.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sheetreg.cli as c, sys; print(c.__file__); c.main()",
            "init",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=out.parent,
        env={**os.environ, "PYTHONPATH": str(site)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(site))
    assert out.exists()
