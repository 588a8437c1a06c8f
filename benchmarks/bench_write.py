"""Benchmark of the lossless writer (sheetreg.xlsxpatch) against an openpyxl round trip.

Generates registers of 20,000 and 100,000 clients with ``registers.make_register`` (the file
every benchmark uses: the Clients sheet with all 19 columns, two invoices per client, saved by
XlsxWriter with a shared-string table, the way Excel saves) in a temporary folder, then
measures, each case in its own subprocess so that peak memory (ru_maxrss) is the case's own:

  flag-all   patch_workbook + verify_patch + writing the result, one status text per row in
             the empty privacy-status column (the weekly job flagging every client)
  erase      emptying 10 cells of one client row, with shared-string garbage collection,
             residue search, verification and writing
  openpyxl   load_workbook + the same flag-all edits + save (what a naive writer costs)

Usage: .venv/bin/python benchmarks/bench_write.py [--sizes 20000,100000]
Targets: flag-all <= 1 s at 20,000 and <= 5 s at 100,000 rows, >= 4x faster than openpyxl,
peak <= 400 MiB at 100,000.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registers import make_register_elsewhere
from sheetreg.register import column_letter
from sheetreg.schema import CLIENTS

SHEET = CLIENTS.fi
# The privacy-status column: empty in the generated register, as before the first flag.
STATUS_COL = column_letter([c.key for c in CLIENTS.columns].index("privacy_status"))


def _flag_edits(clients: int) -> list:
    from sheetreg.xlsxpatch import CellEdit

    return [CellEdit(SHEET, f"{STATUS_COL}{r}", "Tarkista") for r in range(2, clients + 2)]


def run_case(case: str, path: Path, clients: int) -> dict[str, float]:
    """Run one case in this process; returns wall seconds and peak RSS in MiB."""
    out = path.with_name(f"{path.stem}.{case}.xlsx")
    t0 = time.perf_counter()
    if case == "openpyxl":
        import openpyxl

        wb = openpyxl.load_workbook(path)
        ws = wb[SHEET]
        for r in range(2, clients + 2):
            ws[f"{STATUS_COL}{r}"] = "Tarkista"
        wb.save(out)
    else:
        from sheetreg.xlsxpatch import CellEdit, patch_workbook, verify_patch

        data = path.read_bytes()
        if case == "flag-all":
            edits = _flag_edits(clients)
        else:
            row = clients // 2
            edits = [CellEdit(SHEET, f"{col}{row}", None) for col in "ABCDEFGHIJ"]
        result = patch_workbook(data, edits)
        verify_patch(data, result, edits)
        out.write_bytes(result.data)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"wall": wall, "peak_mib": peak, "size_mib": out.stat().st_size / 2**20}


def _in_subprocess(case: str, path: Path, clients: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--case", case, "--file", str(path), "--clients", str(clients)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate the registers, run every case in a subprocess and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--case")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--clients", type=int)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.file, args.clients)))
        return
    with tempfile.TemporaryDirectory(prefix="sheetreg-bench-") as tmp:
        print(f"{'clients':>8} {'case':<9} {'wall s':>8} {'peak MiB':>9} {'file MiB':>9}  note")
        for clients in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"register-{clients}.xlsx"
            make_register_elsewhere(path, clients)
            results = {}
            for case in ("flag-all", "erase", "openpyxl"):
                results[case] = res = _in_subprocess(case, path, clients)
                note = ""
                if case == "openpyxl":
                    ratio = res["wall"] / results["flag-all"]["wall"]
                    note = f"flag-all is {ratio:.1f}x faster"
                print(
                    f"{clients:>8} {case:<9} {res['wall']:>8.2f} {res['peak_mib']:>9.0f} "
                    f"{res['size_mib']:>9.1f}  {note}",
                    flush=True,
                )
            deflate_levels(path)


def deflate_levels(path: Path) -> None:
    """What each deflate level costs on the biggest part (why COMPRESS_LEVEL is what it is)."""
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
        raw = z.read(info)
    figures = []
    for level in (1, 3, 6):
        t0 = time.perf_counter()
        size = len(zlib.compress(raw, level))
        figures.append(f"level {level}: {time.perf_counter() - t0:.2f} s {size / 2**20:.1f} MiB")
    print(
        f"{'':>8} deflate   {info.filename} ({info.file_size / 2**20:.0f} MiB): "
        + ", ".join(figures)
    )


if __name__ == "__main__":
    main()
