"""Benchmark: `sheetreg validate --format json` against a bare python-calamine read.

Not a test: prints figures. Both sides are whole processes measured in the same run on the same
generated file; the ratio is the median of sheetreg over the median of the baseline.
Targets (issue 2): ratio <= 1.5 at 20,000 and 100,000 clients; peak memory <= 400 MiB.

    .venv/bin/python benchmarks/bench_validate.py [--sizes 20000 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = (
    "import sys, python_calamine\n"
    "wb = python_calamine.CalamineWorkbook.from_path(sys.argv[1])\n"
    "for name in wb.sheet_names:\n"
    "    wb.get_sheet_by_name(name).to_python()\n"
)


def make_register_elsewhere(path: Path, size: int) -> None:
    """Generate in a child process, so this one stays small: a child forked from a big
    parent starts with the parent's pages, and ru_maxrss would count them."""
    code = "import sys; from registers import make_register as m; m(__import__('pathlib')"
    code += ".Path(sys.argv[1]), int(sys.argv[2]))"
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": here}
    subprocess.run([sys.executable, "-c", code, str(path), str(size)], check=True, env=env)


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit code of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    print(f"{'clients':>8} {'sheetreg s':>10} {'calamine s':>10} {'ratio':>6} {'peak MiB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"register-{size}.xlsx"
            make_register_elsewhere(path, size)
            ours_cmd = [py, "-m", "sheetreg", "validate", "--format", "json", str(path)]
            ours_cmd += ["--today", "2026-11-25"]
            base_cmd = [py, "-c", BASELINE, str(path)]
            ours, base, peaks = [], [], []
            for _ in range(args.runs):  # interleaved, so drift hits both sides alike
                wall, peak, code = timed(ours_cmd)
                assert code in (0, 1), f"validate exited {code}"
                ours.append(wall)
                peaks.append(peak)
                base.append(timed(base_cmd)[0])
            o, b = statistics.median(ours), statistics.median(base)
            print(f"{size:>8} {o:>10.3f} {b:>10.3f} {o / b:>6.2f} {max(peaks):>8.0f}")


if __name__ == "__main__":
    main()
