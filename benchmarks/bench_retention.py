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
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registers import compile_package, make_register_elsewhere, timed

TODAY = "2026-11-25"
CLIENT = "A100006"  # ended in the generated register (seed 1), no open invoice


def main() -> None:
    """Make the register, run every case as its own process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=20_000)
    args = parser.parse_args()
    compile_package()
    py = sys.executable
    sheetreg = [py, "-m", "sheetreg"]
    openpyxl_roundtrip = (
        "import openpyxl, sys; wb = openpyxl.load_workbook(sys.argv[1]); wb.save(sys.argv[2])"
    )
    with tempfile.TemporaryDirectory(prefix="sheetreg-bench-") as tmp:
        root = Path(tmp)
        original = make_register_elsewhere(root / "original.xlsx", args.clients, erasure_log=True)
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
            wall, peak, code = timed(cmd, cwd)
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
