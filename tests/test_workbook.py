"""Safe writes: lock files, changed-since-read, backups, atomic replace, SIGKILL at any moment."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pytest
import python_calamine as pc
from hypothesis import given
from hypothesis import strategies as st

import sheetreg
from sheetreg.errors import WriteRefused
from sheetreg.workbook import list_backups, read_register, write_cells
from sheetreg.xlsxpatch import sheet_parts

from conftest import CORPUS, client, zombies


def cell(path: Path, sheet: str, ref: str):
    """A cell's value read back with openpyxl (an independent reader)."""
    return openpyxl.load_workbook(path)[sheet][ref].value


@pytest.fixture
def reg(register_path) -> Path:
    return register_path(clients=[client(), client(client_id="A1002", email="b@example.fi")])


def test_write_changes_only_the_cell_and_keeps_a_backup(reg):
    """A write changes the cell, keeps the previous version in backups/ and says where."""
    original = reg.read_bytes()
    result = write_cells(reg, {"Asiakkaat!S2": "Aktiivinen"})
    assert result.written and result.backup is not None
    assert result.backup.parent == reg.parent / "backups"
    assert result.backup.read_bytes() == original
    assert cell(reg, "Asiakkaat", "S2") == "Aktiivinen"
    assert cell(reg, "Asiakkaat", "B3") == "Aino"


def test_public_api_values(reg):
    """sheetreg.write_cells takes strings, numbers, booleans, dates and None."""
    sheetreg.write_cells(
        reg,
        {
            "Asiakkaat!S2": "teksti",
            "Asiakkaat!T2": 3.5,
            "Asiakkaat!U2": True,
            "Asiakkaat!V2": dt.date(2026, 11, 25),
            "Asiakkaat!R3": "x",
        },
    )
    sheetreg.write_cells(reg, {"Asiakkaat!R3": None})
    ws = openpyxl.load_workbook(reg)["Asiakkaat"]
    assert (ws["S2"].value, ws["T2"].value, ws["U2"].value) == ("teksti", 3.5, True)
    assert ws["V2"].value.date() == dt.date(2026, 11, 25)
    assert ws["R3"].value is None


@pytest.mark.parametrize("lock", ["~${name}", ".~lock.{name}#", "~${short}"])
def test_refuses_when_open_in_excel_or_libreoffice(reg, lock):
    """A lock file of Excel or LibreOffice beside the workbook refuses the write."""
    (reg.parent / lock.format(name=reg.name, short=reg.name[2:])).write_text("owner")
    before = reg.read_bytes()
    with pytest.raises(WriteRefused, match="open in Excel or LibreOffice"):
        write_cells(reg, {"Asiakkaat!S2": "x"})
    assert reg.read_bytes() == before
    assert not (reg.parent / "backups").exists()


def test_refuses_when_changed_since_read(reg):
    """A workbook saved by someone after sheetreg read it is not overwritten."""
    register = read_register(reg)
    wb = openpyxl.load_workbook(reg)
    wb["Asiakkaat"]["R2"] = "tallennettu välissä"
    wb.save(reg)
    changed = reg.read_bytes()
    with pytest.raises(WriteRefused, match="changed after sheetreg read it"):
        write_cells(reg, {"Asiakkaat!S2": "x"}, expected=register.snapshot)
    assert reg.read_bytes() == changed


def test_unchanged_snapshot_allows_write(reg):
    """The snapshot taken at read time lets the write through when nothing changed."""
    register = read_register(reg)
    assert write_cells(reg, {"Asiakkaat!S2": "x"}, expected=register.snapshot).written


def test_backup_rotation(reg, tmp_path):
    """Only the newest N backups are kept, in a configurable folder."""
    folder = tmp_path / "my-backups"
    for i in range(5):
        write_cells(reg, {"Asiakkaat!S2": f"v{i}"}, backup_dir=folder, keep_backups=3)
    backups = list_backups(reg, folder)
    assert len(backups) == 3
    kept = [openpyxl.load_workbook(b)["Asiakkaat"]["S2"].value for b in backups]
    assert kept == ["v1", "v2", "v3"]


def test_atomic_replace_keeps_no_temp(reg):
    """After a write the folder holds the workbook and backups/, no temporary file."""
    write_cells(reg, {"Asiakkaat!S2": "x"})
    assert sorted(p.name for p in reg.parent.iterdir()) == ["backups", reg.name]


def test_refused_patch_leaves_everything(reg):
    """A write the patcher refuses (unknown sheet) leaves the folder untouched."""
    before = reg.read_bytes()
    with pytest.raises(sheetreg.SheetregError):
        write_cells(reg, {"EiOle!A1": "x"})
    assert reg.read_bytes() == before
    assert sorted(p.name for p in reg.parent.iterdir()) == [reg.name]


def test_a_patch_made_by_a_spare_is_the_same_and_its_refusal_shows(reg):
    """start_patch hands the patch to a spare: the same package comes back as a patch made
    here, a refusal comes back as the same error (not a traceback or a silent FAILED), a dead
    spare's patch is made here instead, and without a spare nothing is forked; the write
    itself goes through a spare and is as before."""
    import signal

    from sheetreg import forking
    from sheetreg.workbook import start_patch
    from sheetreg.xlsxpatch import CellEdit, patch_workbook

    data = reg.read_bytes()
    edits = [CellEdit("Asiakkaat", "S2", "Aktiivinen"), CellEdit("Asiakkaat", "B3", None)]
    here = patch_workbook(data, edits, residues=False, inline=True)
    assert start_patch(data, edits) is None  # no spare: the caller patches itself
    with forking.spares(5):
        aside = start_patch(data, edits, residues=False, inline=True)
        assert aside is not None and len(forking._SPARES) == 4
        there = aside()
        assert (there.data, there.changed_parts) == (here.data, here.changed_parts)
        refused = start_patch(data, [CellEdit("EiOle", "A1", "x")])
        assert refused is not None
        with pytest.raises(sheetreg.SheetregError, match="EiOle") as caught:
            refused()
        assert type(caught.value).__name__ == "PatchError"
        os.kill(forking._SPARES[-1].pid, signal.SIGKILL)
        dead = start_patch(data, edits, residues=False, inline=True)
        assert dead is not None and dead().data == here.data  # made here instead
        result = write_cells(reg, edits)
        assert not forking._SPARES  # its fidelity check and patch (read back) took the last
    assert result.written and cell(reg, "Asiakkaat", "S2") == "Aktiivinen"
    assert cell(reg, "Asiakkaat", "B3") is None


TRIM_SCRIPT = """
from pathlib import Path

def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

# 60 MB in the C heap (blocks below mmap's size, filled so that they are resident), each
# followed by a small block that stays: freed, the big ones cannot merge into the heap's
# top, which free() itself would give back; only a trim can. (Before sheetreg is imported:
# what its libraries load may move the point from which glibc maps blocks of their own.)
blocks, pins = [], []
for _ in range(600):
    blocks.append(b"\\x01" * 100_000)
    pins.append(b"\\x01" * 1_000)
del blocks
from sheetreg.register import return_free_memory

held = rss()
trimmed = return_free_memory()
print(trimmed, held - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_freed_in_the_c_heap_goes_back_to_the_system(reg, monkeypatch):
    """What the C heap freed (as calamine's sheets, once read) stays in the process until
    return_free_memory hands it back (shown in a fresh interpreter, whose heap is as the
    script leaves it); read_register does so on its way out, and, when a second thread parses
    some sheets, once its own are read (before the others become Python values)."""
    import sheetreg.workbook

    out = subprocess.run(
        [sys.executable, "-c", TRIM_SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "True" and float(out[1]) > 30  # at least half of it given back
    calls: list[int] = []
    monkeypatch.setattr(sheetreg.workbook, "return_free_memory", lambda: calls.append(1))
    first = read_register(reg)
    assert calls == [1]
    # Sheets parsed beside (every sheet but the biggest, here): the reader's own go back
    # first, and the same rows are read.
    monkeypatch.setattr(sheetreg.workbook, "PARSE_ASIDE_BYTES", 0)
    calls.clear()
    again = read_register(reg)
    assert calls == [1, 1]
    assert [t.rows for t in again.tables.values()] == [t.rows for t in first.tables.values()]


def test_a_file_is_compared_and_hashed_in_pieces(tmp_path):
    """The checks that the written file holds the checked bytes, and that the workbook is
    still what was read, read the file in pieces and miss no difference."""
    import hashlib

    from sheetreg.workbook import _file_holds, _file_sha256

    data = os.urandom((3 << 20) + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert _file_holds(path, data)
    assert _file_sha256(path) == hashlib.sha256(data).hexdigest()
    changed = bytearray(data)
    changed[-1] ^= 1
    for other in (bytes(changed), data[:-1], data + b"x", b""):
        assert not _file_holds(path, other)
    path.write_bytes(b"")
    assert _file_holds(path, b"") and not _file_holds(path, b"x")


KILL_SCRIPT = """
import sys
from sheetreg.workbook import write_cells
path = sys.argv[1]
edits = {f"Asiakkaat!S{r}": f"tila {r}" for r in range(2, 3002)}
print("start", flush=True)
write_cells(path, edits)
print("done", flush=True)
"""


def _state(path: Path) -> str:
    """'old' or 'new' when the workbook reads back whole, else fail."""
    wb = pc.CalamineWorkbook.from_path(str(path))
    rows = wb.get_sheet_by_name("Asiakkaat").to_python()
    assert len(rows) == 3001
    statuses = {r[18] for r in rows[1:]} if len(rows[0]) > 18 else {""}
    if statuses == {""}:
        return "old"
    assert statuses == {f"tila {r}" for r in range(2, 3002)}, "a half-applied write"
    return "new"


@pytest.mark.slow
def test_sigkill_at_many_moments(tmp_path):
    """A write killed at any moment leaves the original or the new workbook, whole."""
    from conftest import build_register

    base = tmp_path / "base.xlsx"
    build_register(base, clients=[client(client_id=f"A{i}") for i in range(3000)])
    work = tmp_path / "w"
    work.mkdir()
    path = work / "rekisteri.xlsx"
    cmd = [sys.executable, "-c", KILL_SCRIPT, str(path)]

    path.write_bytes(base.read_bytes())
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    full = time.monotonic() - t0
    seen = set()
    for k in range(24):
        path.write_bytes(base.read_bytes())
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(full * (0.15 + 0.9 * k / 24))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.add(_state(path))
        # Whatever is left beside it can never be mistaken for the register.
        for p in work.iterdir():
            assert p == path or p.name == "backups" or p.name.endswith(".tmp"), p.name
            assert not (p != path and p.suffix == ".xlsx")
        backups = work / "backups"
        if backups.exists():
            for b in backups.iterdir():
                assert b.suffix == ".tmp" or _state(b) == "old"
    assert "old" in seen
    # A later write cleans up what the killed ones left and succeeds.
    path.write_bytes(base.read_bytes())
    write_cells(path, {"Asiakkaat!S2": "x"})
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]
    assert path.exists()


def _parts(path: Path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _first_sheet_name(path: Path) -> str:
    return pc.CalamineWorkbook.from_path(str(path)).sheet_names[0]


CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir()) if CORPUS.is_dir() else []


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_guarded_write_on_every_corpus_file(tmp_path, name):
    """Through every guard, a real Excel file keeps every part it was not asked to change."""
    path = tmp_path / name
    path.write_bytes((CORPUS / name).read_bytes())
    before = _parts(path)
    sheet = _first_sheet_name(path)
    part = sheet_parts(path.read_bytes())[sheet]
    result = write_cells(path, {f"{sheet}!Z99": "sheetreg"})
    assert result.written
    after = _parts(path)
    assert list(after) == list(before)
    changed = {n for n in before if before[n] != after[n]}
    assert changed <= {"xl/sharedStrings.xml", part}
    assert openpyxl.load_workbook(path, keep_vba=name.endswith(".xlsm"))[sheet]["Z99"].value == (
        "sheetreg"
    )


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_guarded_write_on_the_template(tmp_path, lang):
    """The register template takes edits with its validations and formatting untouched."""
    from sheetreg.template import write_template

    path = tmp_path / "r.xlsx"
    write_template(path, lang)
    before = _parts(path)
    sheet = _first_sheet_name(path)
    write_cells(path, {f"{sheet}!A2": "A1001", f"{sheet}!S2": "Aktiivinen"})
    after = _parts(path)
    changed = {n for n in before if before[n] != after[n]}
    assert changed <= {"xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"}
    ws = openpyxl.load_workbook(path)[sheet]
    assert (ws["A2"].value, ws["S2"].value) == ("A1001", "Aktiivinen")
    assert ws.data_validations.dataValidation  # the dropdowns survived
    assert ws.conditional_formatting  # and the highlights


def test_fidelity_failure_refuses_and_leaves_the_file(reg, monkeypatch):
    """A patch that changes more than planned is refused; the workbook stays as it was."""
    import sheetreg.xlsxpatch as xp

    real = xp.patch_workbook

    def sloppy(data, edits, **options):
        result = real(data, edits, **options)
        tampered = real(result.data, [xp.CellEdit("Asiakkaat", "B2", "Muutettu")])
        result.data = tampered.data
        return result

    monkeypatch.setattr(xp, "patch_workbook", sloppy)
    before = reg.read_bytes()
    with pytest.raises(sheetreg.FidelityError):
        write_cells(reg, {"Asiakkaat!S2": "x"})
    assert reg.read_bytes() == before
    assert sorted(p.name for p in reg.parent.iterdir()) == [reg.name]


@pytest.mark.libreoffice
def test_libreoffice_opens_a_guarded_write(reg, tmp_path):
    """LibreOffice opens a workbook written through the guards and sees the new value."""
    from conftest import soffice_convert

    write_cells(reg, {"Asiakkaat!S2": "Päättynyt"})
    csv = soffice_convert(reg, "csv:Text - txt - csv (StarCalc):44,34,76", tmp_path / "lo")
    assert "Päättynyt" in csv.read_text(encoding="utf-8")


def test_a_save_during_the_write_is_never_overwritten(reg, monkeypatch):
    """If the user saves while sheetreg writes, the write is refused and her save stays."""
    import sheetreg.workbook as wbmod

    real_backup = wbmod._make_backup

    def backup_then_user_saves(path, data, folder):
        made = real_backup(path, data, folder)
        wb = openpyxl.load_workbook(path)
        wb["Asiakkaat"]["B2"] = "Tallennettu"
        wb.save(path)
        return made

    monkeypatch.setattr(wbmod, "_make_backup", backup_then_user_saves)
    with pytest.raises(WriteRefused, match="changed while sheetreg was writing"):
        write_cells(reg, {"Asiakkaat!S2": "x"})
    assert cell(reg, "Asiakkaat", "B2") == "Tallennettu"
    assert not list((reg.parent / "backups").glob("*.xlsx"))


def test_file_system_errors_are_clean_refusals(reg, tmp_path):
    """A backup folder that cannot be made is a WriteRefused naming the file; nothing changes."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    before = reg.read_bytes()
    with pytest.raises(WriteRefused, match="cannot write"):
        write_cells(reg, {"Asiakkaat!S2": "x"}, backup_dir=blocker)
    assert reg.read_bytes() == before
    assert not [p for p in reg.parent.iterdir() if p.name.endswith(".tmp")]


def test_symlinked_workbook_keeps_link_and_permissions(reg, tmp_path):
    """Through a symlink the real workbook is written; the link and the mode stay."""
    reg.chmod(0o640)
    link = tmp_path / "linkki.xlsx"
    link.symlink_to(reg)
    write_cells(link, {"Asiakkaat!S2": "x"})
    assert link.is_symlink()
    assert cell(reg, "Asiakkaat", "S2") == "x"
    assert reg.stat().st_mode & 0o777 == 0o640


def test_stray_temp_with_an_impossible_pid_is_left_alone(reg):
    """A temporary-looking file with a pid no process can have does not break writes."""
    stray = reg.parent / f".{reg.name}.sheetreg-{2**40}-x.tmp"
    stray.write_bytes(b"")
    assert write_cells(reg, {"Asiakkaat!S2": "x"}).written
    assert stray.exists()


def test_sheet_names_ignore_case(reg):
    """An edit naming the sheet in another case is written, as in Excel."""
    assert write_cells(reg, {"asiakkaat!S2": "x"}).written
    assert cell(reg, "Asiakkaat", "S2") == "x"


@pytest.mark.parametrize("streamed", [False, True])
def test_reopen_check_on_a_sheet_that_starts_below_and_right(tmp_path, monkeypatch, streamed):
    """Edited cells are read back at their place when a sheet's first cell is not A1, taken
    as rows or (a big sheet read whole) row by row."""
    import xlsxwriter

    from sheetreg import workbook as wbmod
    from sheetreg.errors import FidelityError
    from sheetreg.workbook import _reopen_check
    from sheetreg.xlsxpatch import CellEdit

    if streamed:
        monkeypatch.setattr(wbmod, "_ROWS_KEPT_CELLS", 0)

    path = tmp_path / "offset.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("Muistiinpanot")
    ws.write("C3", "alku")
    ws.write("D5", 2)
    wb.close()
    write_cells(path, {"Muistiinpanot!D4": "uusi", "Muistiinpanot!E7": 3.5})
    assert cell(path, "Muistiinpanot", "D4") == "uusi"
    assert cell(path, "Muistiinpanot", "E7") == 3.5
    edits = [
        CellEdit("Muistiinpanot", "D4", "uusi"),
        CellEdit("Muistiinpanot", "C3", "alku"),
        CellEdit("Muistiinpanot", "A1", None),
    ]
    _reopen_check(path, edits)  # passes: each value where it was written
    for wrong in ("C4", "D3", "D5"):
        with pytest.raises(FidelityError, match="does not read back"):
            _reopen_check(path, [CellEdit("Muistiinpanot", wrong, "uusi")])


def test_text_is_written_into_its_cell_and_the_string_table_is_left_alone(tmp_path):
    """sheetreg's own text goes inline: the shared-string table is not searched or rewritten,
    and replacing that text later leaves no orphan string anywhere."""
    import zipfile

    import xlsxwriter

    def members(path: Path) -> dict[str, bytes]:
        with zipfile.ZipFile(path) as z:
            return {n: z.read(n) for n in z.namelist()}

    reg = tmp_path / "jaettu.xlsx"
    wb = xlsxwriter.Workbook(reg)  # Excel's way: every text in the shared-string table
    ws = wb.add_worksheet("Asiakkaat")
    for r, row in enumerate([["Asiakasnumero", "Tila"], ["A1001", "Aktiivinen"]]):
        ws.write_row(r, 0, row)
    wb.close()
    before = members(reg)
    write_cells(reg, {"Asiakkaat!B2": "Päättynyt 3.11.2026 – poisto odottaa hyväksyntää"})
    once = members(reg)
    assert b"Aktiivinen" in before["xl/sharedStrings.xml"]
    assert b"Aktiivinen" not in once["xl/sharedStrings.xml"]  # the old text, orphaned, goes
    assert "Päättynyt".encode() not in once["xl/sharedStrings.xml"]
    assert b't="inlineStr"' in once["xl/worksheets/sheet1.xml"]
    write_cells(reg, {"Asiakkaat!B2": "Poistettu 25.11.2026"})
    twice = members(reg)
    assert twice["xl/sharedStrings.xml"] == once["xl/sharedStrings.xml"]  # left as it was
    assert not [n for n, b in twice.items() if "odottaa hyväksyntää".encode() in b]
    assert cell(reg, "Asiakkaat", "B2") == "Poistettu 25.11.2026"
    grid = pc.CalamineWorkbook.from_path(str(reg)).get_sheet_by_name("Asiakkaat").to_python()
    assert grid == [["Asiakasnumero", "Tila"], ["A1001", "Poistettu 25.11.2026"]]


@pytest.mark.parametrize("fails", [False, True])
def test_work_done_while_a_child_reads_the_file_back(reg, monkeypatch, fails):
    """With work to do meanwhile, the read-back runs beside it in a forked child; its
    failure still refuses the write, and the workbook stays as it was."""
    import sheetreg.workbook as wbmod
    from sheetreg.errors import FidelityError

    done = []
    if fails:

        def broken(plain, edits):
            raise FidelityError("reopen check: Asiakkaat!S2 does not read back as written")

        monkeypatch.setattr(wbmod, "_reopen_check_plain", broken)
    before = reg.read_bytes()
    if fails:
        with pytest.raises(FidelityError, match="does not read back"):
            write_cells(reg, {"Asiakkaat!S2": "x"}, meanwhile=lambda: done.append(os.getpid()))
        assert reg.read_bytes() == before
        assert list_backups(reg, reg.parent / "backups") == []
    else:
        write_cells(reg, {"Asiakkaat!S2": "x"}, meanwhile=lambda: done.append(os.getpid()))
        assert cell(reg, "Asiakkaat", "S2") == "x"
    assert done == [os.getpid()]  # done here, in this process
    assert not [p for p in reg.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("spare", ["refuses", "dies"])
def test_the_read_back_by_a_spare(reg, monkeypatch, spare):
    """The spare that made the patch reads it back while the file is written (which must
    then hold exactly those bytes): its refusal refuses the write; a spare that died while
    reading it back leaves the read-back of the file to this process."""
    import sheetreg.workbook as wbmod
    from sheetreg import forking
    from sheetreg.errors import FidelityError

    here: list[int] = []
    real = wbmod._reopen_check_plain
    parent = os.getpid()

    def checking(plain, edits, *placed):
        if spare == "dies" and os.getpid() != parent:
            os._exit(3)  # the patch is sent; the spare dies reading it back
        here.append(os.getpid())
        if spare == "refuses":
            raise FidelityError("reopen check: Asiakkaat!S2 does not read back as written")
        real(plain, edits, *placed)

    monkeypatch.setattr(wbmod, "_reopen_check_plain", checking)
    before = reg.read_bytes()
    with forking.spares(2):  # the fidelity check's, the patch's (which reads it back)
        if spare == "refuses":
            with pytest.raises(FidelityError, match="does not read back"):
                write_cells(reg, {"Asiakkaat!S2": "x"})
            assert reg.read_bytes() == before and here == []  # refused by the spare
        else:
            write_cells(reg, {"Asiakkaat!S2": "x"})
            assert cell(reg, "Asiakkaat", "S2") == "x" and here == [parent]
        assert not forking._SPARES


def test_the_spare_reads_its_patch_back_from_where_it_put_the_cells(register_path, monkeypatch):
    """The spare that made the patch knows where its cells went: its read-back takes them
    from there (the excerpt is then the one a search makes), and passes. A placement that
    does not hold leaves the part to be read whole: the cells still pass, and a value not
    as written still fails."""
    import sheetreg.workbook as wbmod
    from sheetreg import xlsxpatch
    from sheetreg.xlsxpatch import CellEdit, patch_workbook

    path = register_path(clients=[client(client_id=f"A{1000 + n}") for n in range(6)])
    plain = path.read_bytes()
    edits = [CellEdit("Asiakkaat", f"Z{r}", f"tila {r}") for r in range(2, 8)]
    result = patch_workbook(plain, edits, residues=False, inline=True)
    assert sum(len(p.refs) for p in result.placed.values()) == len(edits)
    monkeypatch.setattr(xlsxpatch, "EXCERPT_MIN_BYTES", 0)
    real, given, made = xlsxpatch.excerpt_package, [], []

    def spy(data, edits, cut=None, placed=None):
        given.append(placed)
        made.append(real(data, edits, cut, placed))
        return made[-1]

    monkeypatch.setattr(xlsxpatch, "excerpt_package", spy)
    assert wbmod._read_back_outcome(result, plain, edits) is None
    assert given == [result.placed] and made == [real(result.data, edits)] != [result.data]
    part, where = next((k, v) for k, v in result.placed.items() if v.refs)
    shifted = xlsxpatch.Placed(where.refs, xlsxpatch.array("q", [x + 1 for x in where.spans]))
    result.placed[part] = shifted
    # No excerpt from there: the part is read whole, and every cell still reads back.
    assert wbmod._read_back_outcome(result, plain, edits) is None
    wrong = [*edits[:-1], CellEdit("Asiakkaat", "Z7", "muu")]
    assert "Asiakkaat!Z7 does not read back" in wbmod._read_back_outcome(result, plain, wrong)


def test_the_written_file_must_hold_the_bytes_read_back(reg, monkeypatch):
    """The patch is read back from its bytes while the file is written: a file that does
    not hold exactly those bytes (a bit flipped on the way to the disk) refuses the write,
    and the workbook stays as it was, with no backup and no temporary file left."""
    import sheetreg.workbook as wbmod
    from sheetreg.errors import FidelityError

    real = wbmod._write_new_file

    def flipped(folder, prefix, suffix, data):
        written = real(folder, prefix, suffix, data)
        if suffix == ".tmp":
            raw = bytearray(written.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            written.write_bytes(bytes(raw))
        return written

    monkeypatch.setattr(wbmod, "_write_new_file", flipped)
    before = reg.read_bytes()
    with pytest.raises(FidelityError, match="differs from the checked"):
        write_cells(reg, {"Asiakkaat!S2": "x"})
    assert reg.read_bytes() == before
    assert list_backups(reg, reg.parent / "backups") == []
    assert not [p for p in reg.parent.iterdir() if p.name.endswith(".tmp")]


def test_big_sheets_read_on_two_threads_read_the_same(register_path, monkeypatch):
    """Sheets parsed by the second thread give the same register; a damaged one is named."""
    import zipfile

    from sheetreg import workbook as wbmod
    from sheetreg.errors import UnusableWorkbook

    clients = [client(client_id=f"A{1000 + i}", email=f"c{i}@example.fi") for i in range(40)]
    invoices = [
        {"invoice_number": 5000 + i, "client_id": f"A{1000 + i}", "amount": 80.0} for i in range(40)
    ]
    path = register_path(clients=clients, invoices=invoices)
    monkeypatch.setattr(wbmod, "PARSE_ASIDE_BYTES", 1 << 40)
    alone = read_register(path)
    monkeypatch.setattr(wbmod, "PARSE_ASIDE_BYTES", 0)
    parts = sheet_parts(path.read_bytes())
    sizes = dict.fromkeys(parts.values(), 1)
    assert wbmod._sheets_aside(list(parts), parts, sizes), "the second thread takes sheets"
    both = read_register(path)
    for key, table in alone.tables.items():
        assert both.tables[key].rows == table.rows
        assert both.tables[key].header == table.header
    assert both.other_sheets == alone.other_sheets and both.settings == alone.settings

    # A sheet the second thread cannot parse is refused as in the first, by name.
    aside = wbmod._sheets_aside(list(parts), parts, sizes)
    broken = path.with_name("broken.xlsx")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == parts[aside[0]]:
                body = body.replace(b"<sheetData>", b"<sheetData><row r=", 1)
            dst.writestr(info, body)
    with pytest.raises(UnusableWorkbook, match=f"sheet {aside[0]}: the sheet cannot be read"):
        read_register(broken)


def test_reopen_check_reads_two_sheets_at_once(reg, monkeypatch):
    """An erasure's edits in several sheets are read back by two threads; a wrong one fails."""
    from sheetreg import workbook as wbmod
    from sheetreg.errors import FidelityError
    from sheetreg.workbook import _reopen_check
    from sheetreg.xlsxpatch import CellEdit

    monkeypatch.setattr(wbmod, "PARSE_ASIDE_BYTES", 0)
    names = list(sheet_parts(reg.read_bytes()))
    write_cells(reg, {f"{names[0]}!B2": "uusi", f"{names[1]}!B2": "toinen"})
    good = [CellEdit(names[0], "B2", "uusi"), CellEdit(names[1], "B2", "toinen")]
    _reopen_check(reg, good)
    for n in (0, 1):
        bad = list(good)
        bad[n] = CellEdit(names[n], "B2", "jokin muu")
        with pytest.raises(FidelityError, match=f"{names[n]}!B2 does not read back"):
            _reopen_check(reg, bad)


def _same_cells(a: list[list[object]], b: list[list[object]]) -> bool:
    """Equal grids, cell by cell, type by type and sign by sign (True == 1.0 == 1 and
    0.0 == -0.0, but none of them is the other)."""
    return len(a) == len(b) and all(
        len(ra) == len(rb)
        and all(type(x) is type(y) and repr(x) == repr(y) for x, y in zip(ra, rb, strict=True))
        for ra, rb in zip(a, b, strict=True)
    )


def test_pooled_read_gives_what_to_python_gives(tmp_path: Path):
    """Every sheet of the corpus and of sheets with an empty area before their cells reads as
    python-calamine's to_python reads it; a column of repeated text or dates holds one object
    per value (a column mostly empty is left as it is); numbers keep their own type and sign
    even where they equal each other."""
    from sheetreg.workbook import _pooled_grid

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Far"
    ws["C4"], ws["D9"] = "x", 1.0
    ws = wb.create_sheet("Repeats")
    for r in range(1, 3001):
        ws.cell(r, 1, ["Tampere", "Turku"][r % 2])
        ws.cell(r, 2, dt.date(2026, 1, 1 + r % 3))
        # Text, with a number now and then: pooled, but numbers that equal each other and
        # text that reads like one stay what they are.
        odd = [True, 1.0, 0.0, -0.0, False, "1", 1][r // 10 % 7]
        ws.cell(r, 3, odd if r % 10 == 0 else ["Kyllä", "Ei"][r % 2])
        ws.cell(r, 4, f"unique-{r}@example.fi")
        if r % 50 == 0:  # a column mostly empty: its empty cells are one object already
            ws.cell(r, 5, "Reklamaatio")
    wb.create_sheet("Empty")
    path = tmp_path / "shapes.xlsx"
    wb.save(path)
    files = [path, *sorted(CORPUS.glob("**/*.xlsx"))]
    checked = 0
    for file in files:
        book = pc.CalamineWorkbook.from_path(file)
        for name in book.sheet_names:
            try:
                expected = book.get_sheet_by_name(name).to_python()
            except Exception:  # a sheet calamine cannot read is not this test's concern
                continue
            assert _same_cells(_pooled_grid(book.get_sheet_by_name(name)), expected), (file, name)
            checked += 1
    assert checked >= 20
    rows = _pooled_grid(pc.CalamineWorkbook.from_path(path).get_sheet_by_name("Repeats"))
    assert len({id(row[0]) for row in rows}) == 2 and len({id(row[1]) for row in rows}) == 3
    assert len({id(row[3]) for row in rows}) == 3000  # unique values: left as they are
    assert len({id(row[4]) for row in rows if row[4]}) == 60  # mostly empty: left as it is
    assert len({id(row[2]) for row in rows if row[2] in ("Kyllä", "Ei")}) == 2
    odd = [repr(row[2]) for row in rows[9:80:10]]
    assert odd == ["1.0", "0.0", "-0.0", "False", "'1'", "1.0", "True", "1.0"]


def test_pooled_read_falls_back_on_an_unexpected_shape(tmp_path: Path):
    """Rows that do not have the used area's shape (another python-calamine's iteration)
    are not taken: the sheet is read by to_python instead."""
    from sheetreg.workbook import _pooled_grid

    wb = openpyxl.Workbook()
    for r in range(1, 50):
        wb.active.cell(r + 2, 2, "Tampere")
    path = tmp_path / "s.xlsx"
    wb.save(path)
    sheet = pc.CalamineWorkbook.from_path(path).get_sheet_by_name("Sheet")

    class Taller:  # the same sheet, claiming one row more than it iterates
        start, width, height = sheet.start, sheet.width, sheet.height + 1

        def iter_rows(self):
            return sheet.iter_rows()

        def to_python(self):
            return [["to_python"]]

    assert _pooled_grid(Taller()) == [["to_python"]]
    assert (
        _pooled_grid(sheet)
        == pc.CalamineWorkbook.from_path(path).get_sheet_by_name("Sheet").to_python()
    )


def test_columns_are_made_one_at_a_time():
    """A column is made when asked for and kept (unless asked not to); a row shorter than
    the others, or a header wider than the rows, reads as empty cells."""
    from sheetreg.register import Table
    from sheetreg.schema import CLIENTS

    rows = [["A1", "Aino", 1.0], ["A2", "Eero"], ["A3", "Helmi", 3.0]]
    header = ["Asiakasnumero", "Etunimi", "Summa", "Sähköposti"]
    table = Table(CLIENTS, "Asiakkaat", 1, 0, header, {"client_id": 0, "email": 3}, rows)
    assert table.width == 4
    assert table.column_at(1, keep=False) == ("Aino", "Eero", "Helmi")
    assert table._by_column == {}  # not kept
    assert table.column_at(2) == (1.0, "", 3.0)
    assert table.column_values("client_id") == ("A1", "A2", "A3")
    assert table.column_values("email") == ("", "", "")
    assert table.column_values("phone") == ("", "", "")
    assert sorted(table._by_column) == [0, 2, 3]
    assert table.columns_data() == [
        ("A1", "A2", "A3"),
        ("Aino", "Eero", "Helmi"),
        (1.0, "", 3.0),
        ("", "", ""),
    ]
    assert table.distinct(1) == {"Aino", "Eero", "Helmi"}


def test_columns_of_a_rectangular_grid_are_made_in_one_transpose():
    """All columns at once (python-calamine's grids are rectangular): the same tuples as one
    at a time, a column made before kept as it is (the same object), a header wider than
    the rows read as empty cells."""
    from sheetreg.register import Table
    from sheetreg.schema import CLIENTS

    rows = [["A1", "Aino", 1.0], ["A2", "Eero", ""], ["A3", "Helmi", 3.0]]
    header = ["Asiakasnumero", "Etunimi", "Summa", "Sähköposti"]
    table = Table(CLIENTS, "Asiakkaat", 1, 0, header, {"client_id": 0, "email": 3}, rows)
    names = table.column_at(1)
    columns = table.columns_data()
    assert columns == [("A1", "A2", "A3"), ("Aino", "Eero", "Helmi"), (1.0, "", 3.0), ("",) * 3]
    assert columns[1] is names
    assert all(type(c) is tuple for c in columns)
    assert table.columns_data() == columns


def test_reopen_check_reads_few_edits_of_a_big_sheet_from_an_excerpt(register_path, monkeypatch):
    """A sheet of EXCERPT_MIN_BYTES or more with few edited rows is read back as an excerpt
    of those rows (the fidelity check proves the rest unchanged): a value not as written,
    one written at another cell of its row or in another row, or one in a row the file lacks,
    still fails; so does a package that cannot be cut (damaged)."""
    from sheetreg import xlsxpatch
    from sheetreg.errors import FidelityError
    from sheetreg.workbook import _reopen_check, _reopen_check_plain
    from sheetreg.xlsxpatch import CellEdit

    path = register_path(clients=[client(client_id=f"A{1000 + n}") for n in range(20)])
    write_cells(path, {"Asiakkaat!S5": "uusi", "Asiakkaat!T9": 7})
    monkeypatch.setattr(xlsxpatch, "EXCERPT_MIN_BYTES", 0)
    real, cut = xlsxpatch.excerpt_package, []

    def spy(data: bytes, edits: list[CellEdit], names: set[str] | None = None, *placed) -> bytes:
        out = real(data, edits, names, *placed)
        cut.append(out is not data)
        return out

    monkeypatch.setattr(xlsxpatch, "excerpt_package", spy)
    good = [CellEdit("Asiakkaat", "S5", "uusi"), CellEdit("asiakkaat", "T9", 7)]
    _reopen_check(path, [*good, CellEdit("Asiakkaat", "S40", None)])  # row 40: not there
    assert cut == [True]
    for wrong in (
        CellEdit("Asiakkaat", "S5", "muu"),
        CellEdit("Asiakkaat", "R5", "uusi"),
        CellEdit("Asiakkaat", "S6", "uusi"),
        CellEdit("Asiakkaat", "S40", "uusi"),
    ):
        with pytest.raises(FidelityError, match=f"Asiakkaat!{wrong.cell} does not read back"):
            _reopen_check(path, [good[1], wrong])
    assert all(cut)
    with pytest.raises(FidelityError, match="could not be read back"):
        _reopen_check_plain(path.read_bytes()[:-200], good)
    # A write through it, its file then read whole by another reader.
    assert write_cells(path, {"Asiakkaat!S6": "kuudes"}).written
    assert cell(path, "Asiakkaat", "S6") == "kuudes" and cell(path, "Asiakkaat", "S5") == "uusi"


def test_a_warm_patch_makes_the_write_or_is_let_go(reg, monkeypatch):
    """A spare handed the package as read (warm_patch) makes the write's patch and reads it
    back, no other spare needed; one whose spare died leaves the patch and the read-back to
    this process; one for a file that changed since, or with nothing to write, is let go.
    No child is left unreaped."""
    import gc
    import signal

    from sheetreg import forking
    from sheetreg.workbook import load_package, warm_patch
    from sheetreg.xlsxpatch import PatchResult

    started: list[object] = []
    real = forking.on_spare_staged

    def staged(*args: object) -> object:
        started.append(args[0])
        return real(*args)

    monkeypatch.setattr(forking, "on_spare_staged", staged)
    with forking.spares(6):
        snapshot = read_register(reg).snapshot
        warm = warm_patch(load_package(reg), read_register(reg))
        assert warm is not None and len(forking._SPARES) == 5
        assert write_cells(reg, {"Asiakkaat!S2": "lämmin"}, expected=snapshot, warm=warm).written
        assert cell(reg, "Asiakkaat", "S2") == "lämmin" and not started
        # The warm patch kept does not keep the patched package alive (it is tens of MB).
        gc.collect()
        assert warm is not None and not [o for o in gc.get_objects() if type(o) is PatchResult]
        snapshot = read_register(reg).snapshot
        spare = forking._SPARES[-1].pid
        warm = warm_patch(load_package(reg), read_register(reg))
        os.kill(spare, signal.SIGKILL)
        assert write_cells(reg, {"Asiakkaat!S2": "kuollut"}, expected=snapshot, warm=warm).written
        assert cell(reg, "Asiakkaat", "S2") == "kuollut" and not started
        old = read_register(reg).snapshot
        warm = warm_patch(load_package(reg), read_register(reg))
        write_cells(reg, {"Asiakkaat!S2": "joku muu"})  # the file changes meanwhile
        with pytest.raises(WriteRefused, match="changed after sheetreg read it"):
            write_cells(reg, {"Asiakkaat!S2": "myöhässä"}, expected=old, warm=warm)
        now = read_register(reg).snapshot
        warm = warm_patch(load_package(reg), read_register(reg))
        assert not write_cells(reg, {}, expected=now, warm=warm).written
    assert cell(reg, "Asiakkaat", "S2") == "joku muu"
    assert not zombies() and not forking._PARENT_ONLY


def test_a_warm_patch_finds_the_rows_ahead_on_a_first_run_only(
    register_path, tmp_path, monkeypatch
):
    """On a first run (no privacy statuses written yet) the warm patch's spare finds where
    the Clients rows are while the statuses are worked out; next week it does not."""
    from sheetreg import forking, xlsxpatch
    from sheetreg.workbook import _statuses_mostly_unwritten, load_package, warm_patch

    reg = register_path(clients=[client(client_id=f"A{1000 + i}") for i in range(4)])
    seen = tmp_path / "rows.txt"
    real = xlsxpatch.prepare_patch

    def spy(data: bytes, sheets: list[str], *, rows: bool = False) -> object:
        with seen.open("a", encoding="utf-8") as fh:
            fh.write(f"{rows}\n")
        return real(data, sheets, rows=rows)

    monkeypatch.setattr(xlsxpatch, "prepare_patch", spy)
    with forking.spares(6):
        register = read_register(reg)
        assert _statuses_mostly_unwritten(register.table("clients"))
        # An erasure's few edits: never (they would wait for the search).
        unwanted = warm_patch(load_package(reg), register, rows=False)
        assert unwanted is not None
        unwanted.discard()
        warm = warm_patch(load_package(reg), register)
        statuses = {f"Asiakkaat!S{r}": "Aktiivinen" for r in (2, 3, 4, 5)}
        assert write_cells(reg, statuses, expected=register.snapshot, warm=warm).written
        register = read_register(reg)
        assert not _statuses_mostly_unwritten(register.table("clients"))
        warm = warm_patch(load_package(reg), register)
        edit = {"Asiakkaat!S2": "Päättynyt"}
        assert write_cells(reg, edit, expected=register.snapshot, warm=warm).written
    assert sorted(seen.read_text(encoding="utf-8").split()[:2]) == ["False", "True"]
    assert seen.read_text(encoding="utf-8").split()[2:] == ["False"]
    assert (
        cell(reg, "Asiakkaat", "S2") == "Päättynyt" and cell(reg, "Asiakkaat", "S5") == "Aktiivinen"
    )
    assert not zombies()


def test_reopen_check_of_one_column_reads_it_as_a_list(register_path):
    """Edits all in one column (a status on every row) are read back from that column alone:
    each value at its row, a wrong one, one in the wrong row or one past the last row fails,
    and an emptied cell or a row the sheet lacks reads as empty."""
    from sheetreg.errors import FidelityError
    from sheetreg.workbook import _reopen_check
    from sheetreg.xlsxpatch import CellEdit

    path = register_path(clients=[client(client_id=f"A{1000 + n}") for n in range(6)])
    statuses = {f"Asiakkaat!S{r}": f"tila {r}" for r in range(2, 8)}
    assert write_cells(path, {**statuses, "Asiakkaat!S4": 4.5}).written
    good = [CellEdit("Asiakkaat", f"S{r}", f"tila {r}") for r in (2, 3, 5, 6, 7)]
    _reopen_check(
        path, [*good, CellEdit("Asiakkaat", "S4", 4.5), CellEdit("Asiakkaat", "S90", None)]
    )
    for wrong in (
        CellEdit("Asiakkaat", "S3", "tila 2"),
        CellEdit("Asiakkaat", "S4", 4),
        CellEdit("Asiakkaat", "S8", "tila 8"),
        CellEdit("Asiakkaat", "S90", "x"),
    ):
        with pytest.raises(FidelityError, match=f"Asiakkaat!{wrong.cell} does not read back"):
            _reopen_check(path, [*good, wrong])


def _has_formula_by_find(xml: bytes) -> bool:
    """The formula test as it was first written: each "<f" and ":f", then what follows."""
    for tag in (b"<f", b":f"):
        pos = xml.find(tag)
        while pos >= 0:
            if xml[pos + 2 : pos + 3] in (b">", b" ", b"/", b"\t", b"\n", b"\r"):
                return True
            pos = xml.find(tag, pos + 2)
    return False


@given(
    st.binary(max_size=40)
    | st.lists(st.sampled_from(list(b"<:fx >/\t\n\r\x0bv")), max_size=40).map(bytes)
)
def test_the_formula_test_finds_what_a_search_for_each_tag_finds(xml: bytes):
    """The scan for formula cells starts from an "f" and looks back: the same answer as a
    search for "<f" and ":f" and a look ahead."""
    from sheetreg.workbook import _has_formula

    assert _has_formula(xml) == _has_formula_by_find(xml)


def test_reopen_check_of_edits_on_most_rows_reads_the_cells_alone(register_path, monkeypatch):
    """Edits on most rows of a big sheet (a first run's statuses) are read back from an
    excerpt of the edited cells: each value as written passes; one not as written, one
    written at another cell of its row or in another row, still fails."""
    from sheetreg import xlsxpatch
    from sheetreg.errors import FidelityError
    from sheetreg.workbook import _reopen_check
    from sheetreg.xlsxpatch import CellEdit

    # 70 rows: the status column is searched in one pass, the other cell in its row.
    path = register_path(clients=[client(client_id=f"A{1000 + n}") for n in range(70)])
    statuses = {f"Asiakkaat!S{r}": f"tila {r}" for r in range(2, 72)}
    assert write_cells(path, {**statuses, "Asiakkaat!T5": 7}).written
    monkeypatch.setattr(xlsxpatch, "EXCERPT_MIN_BYTES", 0)
    real, cut = xlsxpatch.cells_excerpt, []

    def spy(data: bytes, refs: set[str], *placed: object) -> bytes | None:
        out = real(data, refs, *placed)
        cut.append(out is not None)
        return out

    monkeypatch.setattr(xlsxpatch, "cells_excerpt", spy)
    good = [CellEdit("Asiakkaat", f"S{r}", f"tila {r}") for r in range(2, 72)]
    _reopen_check(path, [*good, CellEdit("Asiakkaat", "T5", 7)])
    assert cut == [True]
    for wrong in (
        CellEdit("Asiakkaat", "S4", "tila 5"),
        CellEdit("Asiakkaat", "T5", 8),
        CellEdit("Asiakkaat", "R5", 7),
        CellEdit("Asiakkaat", "T6", 7),
        CellEdit("Asiakkaat", "S90", "tila 90"),
    ):
        edits = [e for e in good if e.cell != wrong.cell] + [wrong]
        with pytest.raises(FidelityError, match=f"Asiakkaat!{wrong.cell} does not read back"):
            _reopen_check(path, edits)
    assert all(cut)


@pytest.mark.parametrize("whole_sheet_streamed", [False, True])
def test_reopen_check_of_many_texts_compares_them_at_once(
    register_path, monkeypatch, whole_sheet_streamed
):
    """Texts on hundreds of rows (a first run's statuses) are compared in one pass, the
    other edits one by one: each as written passes; a text in the wrong row, a number not
    as written, one past the last row, all still fail, naming the cell. So they do when the
    sheet, read whole and too big to be taken as rows, goes by row by row."""
    from sheetreg import workbook as wbmod
    from sheetreg.errors import FidelityError
    from sheetreg.workbook import _reopen_check
    from sheetreg.xlsxpatch import CellEdit

    path = register_path(clients=[client(client_id=f"A{1000 + n}") for n in range(300)])
    statuses = {f"Asiakkaat!S{r}": f"tila {r}" for r in range(2, 302)}
    assert write_cells(path, {**statuses, "Asiakkaat!T5": 7, "Asiakkaat!B9": None}).written
    real, left = wbmod._not_read_back_at_once, []

    def spy(rows, edits, skip, c0):
        out = real(rows, edits, skip, c0)
        left.append(len(out))
        return out

    monkeypatch.setattr(wbmod, "_not_read_back_at_once", spy)
    if whole_sheet_streamed:
        monkeypatch.setattr(wbmod, "_ROWS_KEPT_CELLS", 0)
    good = [CellEdit("Asiakkaat", f"S{r}", f"tila {r}") for r in range(2, 302)]
    extra = [CellEdit("Asiakkaat", "T5", 7), CellEdit("Asiakkaat", "B9", None)]
    _reopen_check(path, [*good, *extra])
    # At once but for the number and the emptied cell; or, streamed, none at once.
    assert left == ([] if whole_sheet_streamed else [2])
    for wrong in (
        CellEdit("Asiakkaat", "S4", "tila 5"),
        CellEdit("Asiakkaat", "T5", 8),
        CellEdit("Asiakkaat", "T6", 7),
        CellEdit("Asiakkaat", "S400", "tila 400"),
    ):
        edits = [e for e in [*good, *extra] if e.cell != wrong.cell] + [wrong]
        with pytest.raises(FidelityError, match=f"Asiakkaat!{wrong.cell} does not read back"):
            _reopen_check(path, edits)


# --- the package as python-calamine is given it ------------------------------------------------


@given(st.binary(max_size=300), st.binary(max_size=3000))
def test_crc32_combine_is_the_crc_of_both(a: bytes, b: bytes):
    """The CRC-32 of two pieces joined, from theirs and the second's length, is zlib's."""
    import zlib

    from sheetreg.xlsxpatch import crc32_combine

    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def _calamine_sheets(data: bytes) -> dict[str, tuple[list[list[object]], list[object]]]:
    """Every sheet python-calamine reads in ``data``: its cells and its merged ranges."""
    import io

    book = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
    out = {}
    for name in book.sheet_names:
        try:
            sheet = book.get_sheet_by_name(name)
        except Exception:  # a sheet calamine cannot read is not this test's concern
            continue
        out[name] = (sheet.to_python(), sheet.merged_cell_ranges or [])
    return out


def _odd_packages(tmp_path: Path) -> list[Path]:
    """Packages whose shape the reader view must take or leave alone: merged ranges, a
    namespace prefix, a stored sheet, data descriptors, a byte-order mark, a declared
    encoding that is not UTF-8."""
    import zipfile

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Asiakkaat"
    ws["A1"], ws["B1"], ws["C3"], ws["D4"] = "Asiakastunnus", "Etunimi", 1.5, dt.date(2026, 1, 2)
    ws.merge_cells("B1:C1")
    ws.merge_cells("A5:D6")
    wb.create_sheet("Muu")["A1"] = "ö & <x>"
    plain = tmp_path / "merged.xlsx"
    wb.save(plain)
    out = [plain]
    with zipfile.ZipFile(plain) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]

    def rezip(name: str, change, *, stored: bool = False, streamed: bool = False) -> None:
        path = tmp_path / name
        if streamed:  # written to a stream that cannot seek: every member has a descriptor
            import io

            class Unseekable(io.RawIOBase):
                def __init__(self) -> None:
                    self.buf = bytearray()

                def writable(self) -> bool:
                    return True

                def write(self, b) -> int:
                    self.buf += b
                    return len(b)

            sink = Unseekable()
            with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:
                for info, content in members:
                    with zf.open(info.filename, "w") as fh:
                        fh.write(change(info.filename, content))
            path.write_bytes(bytes(sink.buf))
        else:
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for info, content in members:
                    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                    zf.writestr(info.filename, change(info.filename, content), method)
        out.append(path)

    def prefixed(name: str, content: bytes) -> bytes:
        if "worksheets/" not in name:
            return content
        content = content.replace(b"<", b"<x:").replace(b"<x:/", b"</x:").replace(b"<x:?", b"<?")
        return content.replace(b'xmlns="', b'xmlns:x="')

    def bom(name: str, content: bytes) -> bytes:
        return b"\xef\xbb\xbf" + content if name.endswith("sheet1.xml") else content

    def latin(name: str, content: bytes) -> bytes:
        if not name.endswith("sheet2.xml"):
            return content
        assert not content.startswith(b"<?xml")  # openpyxl writes no declaration here
        return b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + content

    rezip("prefixed.xlsx", prefixed)
    rezip("stored.xlsx", lambda _n, c: c, stored=True)
    rezip("streamed.xlsx", lambda _n, c: c, streamed=True)
    rezip("bom.xlsx", bom)
    rezip("latin.xlsx", latin)
    return out


def test_reader_view_reads_as_the_package_does(tmp_path: Path):
    """python-calamine reads every sheet of the reader view as it reads the package: the same
    cells, type by type; the view is a sound zip (every member's CRC-32 checks); and the
    merged ranges that calamine no longer looks for in it are those sheetreg's own scan finds."""
    import io
    import zipfile

    from sheetreg.workbook import _merged_ranges, column_letter
    from sheetreg.xlsxpatch import reader_view

    files = [*_odd_packages(tmp_path), *sorted(CORPUS.glob("*.xls[xm]"))]
    marked = merged = 0
    for file in files:
        data = file.read_bytes()
        parts = sheet_parts(data)
        view = reader_view(data, parts.values())
        with zipfile.ZipFile(io.BytesIO(view)) as zf:
            assert zf.testzip() is None, file
            with zipfile.ZipFile(file) as original:
                assert zf.namelist() == original.namelist(), file
                for name in zf.namelist():
                    got, was = zf.read(name), original.read(name)
                    marked += got != was
                    assert got in (was, b"<mergeCells></mergeCells>" + was), (file, name)
        expected, seen = _calamine_sheets(data), _calamine_sheets(view)
        assert expected.keys() == seen.keys(), file
        for name, (cells, ranges) in expected.items():
            assert _same_cells(seen[name][0], cells), (file, name)
            formatted = [
                f"{column_letter(a[1])}{a[0] + 1}:{column_letter(b[1])}{b[0] + 1}"
                for a, b in ranges
            ]
            with zipfile.ZipFile(file) as original:
                assert _merged_ranges(original.read(parts[name])) == formatted, (file, name)
            merged += len(formatted)
    assert marked >= 25 and merged >= 34 + 2 * 4
    # What could not take the mark is left as it was: a byte-order mark, another encoding.
    for name, sheet in (("bom.xlsx", "sheet1.xml"), ("latin.xlsx", "sheet2.xml")):
        data = (tmp_path / name).read_bytes()
        with zipfile.ZipFile(
            __import__("io").BytesIO(reader_view(data, sheet_parts(data).values()))
        ) as zf:
            assert not zf.read(f"xl/worksheets/{sheet}").startswith(b"<mergeCells>")
