"""Large synthetic registers for the benchmarks, saved the way Excel saves (shared strings).

XlsxWriter in its default mode writes a shared-string table, dates as styled serial numbers and
one worksheet part per sheet, as Excel does. Values come from small pools plus counters, so
100,000 clients take seconds to make; a handful of planted problems keep validation honest.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import xlsxwriter

from sheetreg.schema import CLIENTS, DISCLOSURES, INVOICES, REQUESTS

FIRST = ["Aino", "Eero", "Helmi", "Juho", "Kaisa", "Lauri", "Minna", "Olli", "Sanna", "Veikko"]
LAST = ["Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Heikkinen"]
CITIES = [("33100", "Tampere"), ("00100", "Helsinki"), ("20100", "Turku"), ("40100", "Jyväskylä")]
STREETS = ["Hämeenkatu", "Satakunnankatu", "Pirkankatu", "Kauppakatu", "Rautatienkatu"]


def make_register(path: Path, clients: int, *, seed: int = 1) -> Path:
    """Write a register of ``clients`` clients, ~2 invoices each, to ``path``."""
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
    wb.close()
    return path
