"""Benchmark of retention: `sheetreg flag` and `sheetreg erase` against an openpyxl round trip.

Same run, same Excel-like register (benchmarks/registers.py, saved by XlsxWriter with a shared
string table, plus the Poistoloki sheet an erasure logs to). Every case is a whole process
(`python -m sheetreg ...`, interpreter start-up included), timed from spawn to exit; peak memory
is the child's own (wait4's ru_maxrss):

  flag            every client's Privacy status written (20,000 cells; the first run)
  flag-again      the second run on the same day: statuses computed, nothing to write
  erase           one client erased with verification, on a fresh copy (no backups yet)
  erase-after-flag  the same on the flagged file: its backup holds the client and is erased too
  openpyxl        load_workbook + save of the same file (what a naive writer costs)

Usage: .venv/bin/python benchmarks/bench_retention.py [--clients 20000]
Target: flag and erase <= 1 s each at 20,000 clients.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xlsxwriter

from sheetreg.schema import ERASURE_LOG

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registers import make_register

TODAY = "2026-11-25"
CLIENT = "A100006"  # ended in the generated register (seed 1), no open invoice


def make_register_with_log(path: Path, clients: int) -> Path:
    """registers.make_register, plus an empty Poistoloki sheet with its header row."""
    close = xlsxwriter.Workbook.close

    def close_with_log(self: xlsxwriter.Workbook) -> None:
        ws = self.add_worksheet(ERASURE_LOG.fi)
        ws.write_row(0, 0, [c.fi for c in ERASURE_LOG.columns])
        close(self)

    xlsxwriter.Workbook.close = close_with_log  # type: ignore[method-assign]
    try:
        return make_register(path, clients)
    finally:
        xlsxwriter.Workbook.close = close  # type: ignore[method-assign]


def run(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit code of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print(proc.stderr.read().decode() if proc.stderr else "", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def main() -> None:
    """Make the register, run every case as its own process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=20_000)
    args = parser.parse_args()
    py = sys.executable
    sheetreg = [py, "-m", "sheetreg"]
    openpyxl_roundtrip = (
        "import openpyxl, sys; wb = openpyxl.load_workbook(sys.argv[1]); wb.save(sys.argv[2])"
    )
    with tempfile.TemporaryDirectory(prefix="sheetreg-bench-") as tmp:
        root = Path(tmp)
        original = make_register_with_log(root / "original.xlsx", args.clients)
        size = original.stat().st_size / 2**20
        cases: list[tuple[str, Path, list[str]]] = []
        for name in ("flag", "erase", "openpyxl"):
            folder = root / name
            folder.mkdir()
            shutil.copyfile(original, folder / "r.xlsx")
        flag_dir, erase_dir, opx_dir = root / "flag", root / "erase", root / "openpyxl"
        erase = ["erase", "r.xlsx", "--client", CLIENT, "--yes", "--today", TODAY]
        cases = [
            ("flag", flag_dir, [*sheetreg, "flag", "r.xlsx", "--today", TODAY]),
            ("flag-again", flag_dir, [*sheetreg, "flag", "r.xlsx", "--today", TODAY]),
            ("erase", erase_dir, [*sheetreg, *erase]),
            ("erase-after-flag", flag_dir, [*sheetreg, *erase]),
            ("openpyxl", opx_dir, [py, "-c", openpyxl_roundtrip, "r.xlsx", "out.xlsx"]),
        ]
        print(f"register: {args.clients} clients, {size:.1f} MiB")
        print(f"{'case':<17} {'wall s':>7} {'peak MiB':>9}  note")
        results = {}
        for name, cwd, cmd in cases:
            wall, peak, code = run(cmd, cwd)
            results[name] = wall
            note = "" if code == 0 else f"exit {code}"
            if name == "openpyxl":
                note = (
                    f"flag {wall / results['flag']:.1f}x, erase "
                    f"{wall / results['erase']:.1f}x faster than this"
                )
            print(f"{name:<17} {wall:>7.2f} {peak:>9.0f}  {note}", flush=True)


if __name__ == "__main__":
    main()
