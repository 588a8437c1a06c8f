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

Each case runs --repeat times on fresh copies, interleaved; the median and the range are printed.

Usage: .venv/bin/python benchmarks/bench_retention.py [--clients 20000] [--repeat 3]
Target: flag and erase <= 1 s each at 20,000 clients.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registers import compile_package, make_register_elsewhere, scaled_target, timed, verdict

TODAY = "2026-11-25"
CLIENT = "A100006"  # ended in the generated register (seed 1), no open invoice


def main() -> None:
    """Make the register, run every case as its own process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    py = sys.executable
    sheetreg = [py, "-m", "sheetreg"]
    openpyxl_roundtrip = (
        "import openpyxl, sys; wb = openpyxl.load_workbook(sys.argv[1]); wb.save(sys.argv[2])"
    )
    names = ("flag", "flag-again", "erase", "erase-after-flag", "openpyxl")
    walls: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, float] = dict.fromkeys(names, 0.0)
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="sheetreg-bench-") as tmp:
        root = Path(tmp)
        original = make_register_elsewhere(root / "original.xlsx", args.clients, erasure_log=True)
        size = original.stat().st_size / 2**20
        erase = ["erase", "r.xlsx", "--client", CLIENT, "--yes", "--today", TODAY]
        for n in range(args.repeat):  # fresh copies each time, the cases interleaved
            flag_dir, erase_dir, opx_dir = (root / f"{c}-{n}" for c in ("flag", "erase", "opx"))
            for folder in (flag_dir, erase_dir, opx_dir):
                folder.mkdir()
                shutil.copyfile(original, folder / "r.xlsx")
            cases = [
                ("flag", flag_dir, [*sheetreg, "flag", "r.xlsx", "--today", TODAY]),
                ("flag-again", flag_dir, [*sheetreg, "flag", "r.xlsx", "--today", TODAY]),
                ("erase", erase_dir, [*sheetreg, *erase]),
                ("erase-after-flag", flag_dir, [*sheetreg, *erase]),
                ("openpyxl", opx_dir, [py, "-c", openpyxl_roundtrip, "r.xlsx", "out.xlsx"]),
            ]
            for name, cwd, cmd in cases:
                wall, peak, code = timed(cmd, cwd)
                walls[name].append(wall)
                peaks[name] = max(peaks[name], peak)
                codes[name] = code
    median = {name: statistics.median(values) for name, values in walls.items()}
    print(f"register: {args.clients} clients, {size:.1f} MiB, median of {args.repeat}")
    print(f"{'case':<17} {'wall s':>7} {'range s':>11} {'peak MiB':>9}  note")
    for name in names:
        wall = median[name]
        spread = f"{min(walls[name]):.2f}-{max(walls[name]):.2f}"
        note = "" if codes[name] == 0 else f"exit {codes[name]}"
        if name == "openpyxl":
            note = (
                f"flag {wall / median['flag']:.1f}x, erase "
                f"{wall / median['erase']:.1f}x faster than this"
            )
        elif name in ("flag", "erase"):
            note = verdict(wall, 1.0, args.clients, median["openpyxl"])
        print(f"{name:<17} {wall:>7.2f} {spread:>11} {peaks[name]:>9.0f}  {note}", flush=True)
    scale = scaled_target(1.0, args.clients, median["openpyxl"])
    if scale:
        print(f"yardstick: {scale}")


if __name__ == "__main__":
    main()
