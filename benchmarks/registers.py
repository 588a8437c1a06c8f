"""Large synthetic registers for the benchmarks, saved the way Excel saves (shared strings).

XlsxWriter in its default mode writes a shared-string table, dates as styled serial numbers and
one worksheet part per sheet, as Excel does. Values come from small pools plus counters, so
100,000 clients take seconds to make; a handful of planted problems keep validation honest.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import xlsxwriter

from sheetreg.schema import CLIENTS, DISCLOSURES, ERASURE_LOG, INVOICES, REQUESTS

FIRST = ["Aino", "Eero", "Helmi", "Juho", "Kaisa", "Lauri", "Minna", "Olli", "Sanna", "Veikko"]
LAST = ["Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Heikkinen"]
CITIES = [("33100", "Tampere"), ("00100", "Helsinki"), ("20100", "Turku"), ("40100", "Jyväskylä")]
APPROVE_COLUMN = [c.key for c in CLIENTS.columns].index("approve_erasure")
STREETS = ["Hämeenkatu", "Satakunnankatu", "Pirkankatu", "Kauppakatu", "Rautatienkatu"]


# A bare Python process that only imports python_calamine and reads every sheet: the
# baseline each benchmark measures in the same run.
BASELINE = (
    "import sys, python_calamine\n"
    "wb = python_calamine.CalamineWorkbook.from_path(sys.argv[1])\n"
    "for name in wb.sheet_names:\n"
    "    wb.get_sheet_by_name(name).to_python()\n"
)


# The openpyxl load + save of the benchmark register, in seconds, on the machine where the
# issues' absolute targets were set and first measured (the median of the figures published in
# the closing notes of issues 4 and 6). Machines here differ by 2x from one session to the
# next; a target scaled by this run's own openpyxl time lets figures from two machines be
# compared. It is printed beside the absolute target, never instead of it.
REFERENCE_OPENPYXL_S = {20_000: 8.4, 100_000: 42.7}


def verdict(
    wall: float,
    target: float,
    clients: int,
    openpyxl_wall: float,
    peak: float | None = None,
) -> str:
    """A timed case's note: its time against the absolute ``target`` as measured here, then
    (where a reference exists) scaled to the reference machine by this run's openpyxl time,
    which decides; with ``peak``, memory (not scaled) against 400 MiB."""
    note = f"{'within' if wall <= target else 'over'} {target:.0f} s here"
    reference = REFERENCE_OPENPYXL_S.get(clients)
    met = wall <= target
    if reference is not None and openpyxl_wall > 0:
        scaled = wall * reference / openpyxl_wall
        met = scaled <= target
        note += f"; {scaled:.2f} s scaled"
    if peak is not None and peak > 400:
        met = False
        note += f"; {peak:.0f} MiB over 400"
    return f"{note}: {'within target' if met else 'OVER TARGET'}"


def scaled_target(target: float, clients: int, openpyxl_wall: float) -> str:
    """A note: ``target`` scaled to this machine by the openpyxl baseline of the same run."""
    reference = REFERENCE_OPENPYXL_S.get(clients)
    if reference is None:
        return ""
    scaled = target * openpyxl_wall / reference
    return (
        f"this machine's openpyxl round trip takes {openpyxl_wall / reference:.2f}x the "
        f"reference machine's ({reference:.1f} s): the {target:.0f} s target scales to "
        f"{scaled:.2f} s here"
    )


# Measured processes run as installed code does: with compiled bytecode. (A development
# shell may set PYTHONDONTWRITEBYTECODE, which makes every start recompile from source.)
RUN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_package() -> None:
    """Write sheetreg's bytecode once, as an installer does, before anything is timed."""
    import sheetreg

    package = str(Path(sheetreg.__file__).resolve().parent)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True, env=RUN_ENV)


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit code of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=RUN_ENV
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1) and proc.stderr is not None:
        print(proc.stderr.read().decode(errors="replace"), file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, code


def make_register_elsewhere(
    path: Path, clients: int, *, erasure_log: bool = False, approvals: int = 0
) -> Path:
    """:func:`make_register` in a child process, so the benchmark itself stays small.

    A child forked from a big parent starts with the parent's pages, and ru_maxrss would
    count them in the measured command's peak.
    """
    code = "import sys, pathlib; from registers import make_register as m; "
    code += "m(pathlib.Path(sys.argv[1]), int(sys.argv[2]), erasure_log=sys.argv[3] == '1', "
    code += "approvals=int(sys.argv[4]))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    args = [str(path), str(clients), "1" if erasure_log else "0", str(approvals)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, env=env)
    return path


def make_register(
    path: Path, clients: int, *, seed: int = 1, erasure_log: bool = False, approvals: int = 0
) -> Path:
    """Write a register of ``clients`` clients, ~2 invoices each, to ``path``.

    ``approvals``: about this many ended clients get Kyllä in Approve erasure (the weekly job
    then erases those no open invoice holds).
    """
    rnd = random.Random(seed)
    wb = xlsxwriter.Workbook(str(path))
    date_fmt = wb.add_format({"num_format": "d.m.yyyy"})
    sheets = {}
    for spec in (CLIENTS, INVOICES, REQUESTS, DISCLOSURES):
        ws = wb.add_worksheet(spec.fi)
        ws.write_row(0, 0, [c.fi for c in spec.columns])
        sheets[spec.key] = ws
    ws = sheets["clients"]
    base = dt.date(2019, 1, 1)
    for i in range(clients):
        r = i + 1
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        postal, city = rnd.choice(CITIES)
        start = base + dt.timedelta(days=rnd.randrange(2500))
        ended = rnd.random() < 0.3
        phone = f"040 {1000000 + i:07d}"
        ws.write_string(r, 0, f"A{100000 + i}")
        ws.write_string(r, 1, first)
        ws.write_string(r, 2, last)
        ws.write_string(r, 3, phone if i % 997 else "040 12")
        ws.write_string(r, 4, f"{first.lower()}.{last.lower()}{i}@example.fi".replace("ä", "a"))
        ws.write_string(r, 5, f"{rnd.choice(STREETS)} {rnd.randrange(1, 80)}")
        ws.write_string(r, 6, postal)
        ws.write_string(r, 7, city)
        ws.write_string(r, 8, rnd.choice(["Sähköposti", "Paperilasku", "Verkkolasku"]))
        ws.write_datetime(r, 9, dt.datetime.combine(start, dt.time()), date_fmt)
        if ended:
            end = start + dt.timedelta(days=rnd.randrange(30, 900))
            ws.write_datetime(r, 10, dt.datetime.combine(end, dt.time()), date_fmt)
        ws.write_string(r, 11, rnd.choice(["Kyllä", "Ei"]))
        ws.write_string(r, 12, rnd.choice(["Kyllä", "Ei", "Ei", "Ei"]))
        if ended and approvals and i % max(1, int(clients * 0.3 / approvals)) == 0:
            ws.write_string(r, APPROVE_COLUMN, "Kyllä")
    inv = sheets["invoices"]
    for j in range(clients * 2):
        r = j + 1
        day = base + dt.timedelta(days=rnd.randrange(2500))
        inv.write_string(r, 0, str(10000 + j))
        inv.write_string(r, 1, f"A{100000 + j // 2}")
        inv.write_datetime(r, 2, dt.datetime.combine(day, dt.time()), date_fmt)
        inv.write_datetime(r, 3, dt.datetime.combine(day, dt.time()) + dt.timedelta(14), date_fmt)
        inv.write_number(r, 4, rnd.choice([65.0, 85.5, 120.0]))
        if rnd.random() < 0.95:
            inv.write_datetime(
                r, 5, dt.datetime.combine(day, dt.time()) + dt.timedelta(10), date_fmt
            )
        inv.write_string(r, 6, "Ei")
    req = sheets["requests"]
    for k in range(max(10, clients // 1000)):
        r = k + 1
        req.write_string(r, 0, f"P{k + 1}")
        req.write_datetime(r, 1, dt.datetime(2026, 10, 1) + dt.timedelta(k % 50), date_fmt)
        req.write_string(r, 2, f"A{100000 + k * 7}")
        req.write_string(r, 3, rnd.choice(["Tarkastus", "Poisto", "Oikaisu", "Siirto"]))
        req.write_string(r, 4, rnd.choice(["Kirjallinen", "Sähköposti"]))
    dis = sheets["disclosures"]
    for k in range(max(10, clients // 500)):
        r = k + 1
        dis.write_datetime(r, 0, dt.datetime(2025, 3, 1) + dt.timedelta(k % 200), date_fmt)
        dis.write_string(r, 1, f"A{100000 + k * 3}")
        dis.write_string(r, 2, "Perintätoimisto Oy")
        dis.write_string(r, 3, "Perintä")
        dis.write_string(r, 4, "Nimi, osoite, laskut")
    if erasure_log:  # an empty Poistoloki sheet with its header row, as the template has
        log = wb.add_worksheet(ERASURE_LOG.fi)
        log.write_row(0, 0, [c.fi for c in ERASURE_LOG.columns])
    wb.close()
    return path
