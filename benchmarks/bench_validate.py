"""Benchmark: `sheetreg validate --format json` against a bare python-calamine read.

Not a test: prints figures. Both sides are whole processes measured in the same run on the same
generated file; the ratio is the median of sheetreg over the median of the baseline.
Targets (issue 2): ratio <= 1.5 at 20,000 and 100,000 clients; peak memory <= 400 MiB.

    .venv/bin/python benchmarks/bench_validate.py [--sizes 20000 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registers import BASELINE, compile_package, make_register_elsewhere, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_package()
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
