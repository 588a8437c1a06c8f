"""Benchmark: one client's access extract from a large register, as a whole process.

Not a test: prints figures. `python -m sheetreg extract PATH --client ID` (read, build, write
xlsx + HTML + JSON) is timed against a bare python-calamine read of the same file, both as
whole processes in the same run, interleaved. Target (issue 5): <= 1 s at 20,000 clients.

    .venv/bin/python benchmarks/bench_extract.py [--sizes 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registers import BASELINE, compile_package, make_register_elsewhere, timed

TARGET_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    compile_package()
    py = sys.executable
    print(f"{'clients':>8} {'extract s':>10} {'calamine s':>10} {'ratio':>6} {'target':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"register-{size}.xlsx"
            make_register_elsewhere(path, size)
            client_id = f"A{100000 + size // 2}"  # mid-sheet, with invoices and all
            ours_cmd = [py, "-m", "sheetreg", "extract", str(path), "--client", client_id]
            ours_cmd += ["--today", "2026-11-25", "--out", str(Path(tmp) / "extracts")]
            base_cmd = [py, "-c", BASELINE, str(path)]
            ours, base = [], []
            for _ in range(args.runs):  # interleaved, so drift hits both sides alike
                wall, _, code = timed(ours_cmd)
                assert code == 0, f"extract exited {code}"
                ours.append(wall)
                base.append(timed(base_cmd)[0])
            o, b = statistics.median(ours), statistics.median(base)
            verdict = "ok" if o <= TARGET_SECONDS else "SLOW"
            print(f"{size:>8} {o:>10.3f} {b:>10.3f} {o / b:>6.2f} {verdict:>7}")


if __name__ == "__main__":
    main()
