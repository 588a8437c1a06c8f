"""Benchmark of the weekly job, `sheetreg run`, against an openpyxl load and save.

Same run, same Excel-like register (benchmarks/registers.py: saved by XlsxWriter with a shared
string table, ~2 invoices a client, an empty Poistoloki sheet, and about 20 approved erasures).
Every case is a whole process (`python -m sheetreg run ...`, interpreter start-up included),
timed from spawn to exit; peak memory is the child's own (wait4's ru_maxrss). Cases:

  run-first       the first weekly run: validate, every Privacy status written, request due
                  dates, the approved erasures with their proof, the report (on a fresh copy)
  run-next-week   a week later on that result: the statuses that changed, new erasures none
  run-again       a second run on the same day: everything computed, nothing written
  openpyxl        load_workbook + save of the same file (what a naive writer costs)
  calamine        a bare process reading every sheet with python-calamine (the floor)

Each case runs --repeat times (a fresh copy for run-first), interleaved; the median is printed.

Usage: .venv/bin/python benchmarks/bench_run.py [--clients 20000 100000] [--repeat 3]
Targets: <= 1 s at 20,000 clients and <= 5 s at 100,000; peak memory <= 400 MiB. Each run
case's note gives its time against the target as measured here, then scaled to the reference
machine by this run's openpyxl time (registers.REFERENCE_OPENPYXL_S), which decides.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registers import (
    BASELINE,
    RUN_ENV,
    compile_package,
    make_register_elsewhere,
    scaled_target,
    timed,
    verdict,
)

TODAY = "2026-11-25"
NEXT_WEEK = "2026-12-02"
OPENPYXL = "import openpyxl, sys; wb = openpyxl.load_workbook(sys.argv[1]); wb.save(sys.argv[2])"


def bench(clients: int, repeat: int, root: Path) -> None:
    """Every case at one size; prints a table."""
    py = sys.executable
    original = make_register_elsewhere(
        root / f"original-{clients}.xlsx", clients, erasure_log=True, approvals=20
    )
    size = original.stat().st_size / 2**20
    walls: dict[str, list[float]] = {}
    peaks: dict[str, float] = {}
    codes: dict[str, int] = {}

    def record(name: str, result: tuple[float, float, int]) -> None:
        walls.setdefault(name, []).append(result[0])
        peaks[name] = max(peaks.get(name, 0.0), result[1])
        codes[name] = result[2]

    for n in range(repeat):
        folder = root / f"{clients}-{n}"
        folder.mkdir()
        shutil.copyfile(original, folder / "r.xlsx")
        run = [py, "-m", "sheetreg", "run", "r.xlsx", "--today"]
        record("run-first", timed([*run, TODAY], folder))
        record("run-again", timed([*run, TODAY], folder))
        record("run-next-week", timed([*run, NEXT_WEEK], folder))
        record("openpyxl", timed([py, "-c", OPENPYXL, str(original), str(folder / "o.xlsx")]))
        record("calamine", timed([py, "-c", BASELINE, str(original)]))
    median = {name: statistics.median(values) for name, values in walls.items()}
    target = 1.0 if clients <= 20_000 else 5.0
    print(f"\n{clients} clients, {size:.1f} MiB, median of {repeat}; target <= {target:.0f} s")
    print(f"{'case':<14} {'wall s':>7} {'peak MiB':>9}  note")
    for name in ("run-first", "run-next-week", "run-again", "openpyxl", "calamine"):
        wall = median[name]
        if name == "openpyxl":
            note = f"{wall / median['run-first']:.1f}x the first run's time"
        elif name == "calamine":
            note = f"run-first is {median['run-first'] / wall:.2f}x this floor"
        else:
            note = verdict(wall, target, clients, median["openpyxl"], peaks[name])
        if codes[name] not in (0, 1):
            note += f" (exit {codes[name]})"
        print(f"{name:<14} {wall:>7.2f} {peaks[name]:>9.0f}  {note}", flush=True)
    scale = scaled_target(target, clients, median["openpyxl"])
    if scale:
        print(f"yardstick: {scale} (memory does not scale)")


def main() -> None:
    """Make the registers, run every case as its own process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="sheetreg-bench-") as tmp:
        root = Path(tmp)
        # The run log goes into the temporary folder, not the user's log.
        RUN_ENV["XDG_STATE_HOME"] = str(root / "state")
        os.environ["XDG_STATE_HOME"] = RUN_ENV["XDG_STATE_HOME"]
        for clients in args.clients:
            bench(clients, args.repeat, root)


if __name__ == "__main__":
    main()
