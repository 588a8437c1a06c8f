"""Legal deadlines of data-subject requests: GDPR Art. 12(3) counted by Regulation 1182/71.

A request is answered within one month of receipt; the controller may extend that by two further
months (three in all) if it tells the person within the first month. Regulation (EEC, Euratom)
No 1182/71 says how such a period is counted:

- Art. 3(1): the day of the event (here: receipt) is not counted;
- Art. 3(2)(c): a period in months ends on the same date of the last month, or on that month's
  last day when the date does not exist (received 31 January: nominal end 28/29 February);
- Art. 3(4): a period ending on a Saturday, Sunday or public holiday ends on the next working
  day instead.

The public holidays are Finland's (``holidays.country_holidays("FI")``). Midsummer Eve and
Christmas Eve are added as non-working days, as the Finnish Act on computing time limits
(Laki säädettyjen määräaikain laskemisesta 150/1930, §5) treats them. Pure functions only,
but for one cache: importing ``holidays`` and building a year's table costs a fifth of a
second (the package imports every country), so a year's table is kept as the package made
it in the user's cache folder (platformdirs), for that version of the package only.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ONE_MONTH = 1
EXTENDED_MONTHS = 3  # one month plus the two further months of Art. 12(3)

# Days the Finnish calendar counts as non-working beyond holidays' public list, with their
# names; the `holidays` package lists them too in recent versions, older ones did not.
_EVES = {
    "midsummer-eve": ("Juhannusaatto", "Midsummer Eve"),
    "christmas-eve": ("Jouluaatto", "Christmas Eve"),
}


@dataclass(frozen=True)
class Deadline:
    """A request's deadline: the nominal end of the period and the working day it moves to."""

    received: dt.date
    months: int
    nominal: dt.date  # same date N months later (or that month's last day)
    due: dt.date  # nominal, moved past Saturdays, Sundays and holidays
    skipped: tuple[tuple[dt.date, str, str], ...] = ()  # (day, why in fi, why in en)

    @property
    def moved(self) -> bool:
        """True when the nominal end fell on a non-working day."""
        return self.due != self.nominal

    def days_left(self, today: dt.date) -> int:
        """Days from ``today`` to the due date; negative when overdue, 0 on the due date."""
        return (self.due - today).days

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "received": self.received.isoformat(),
            "months": self.months,
            "nominal": self.nominal.isoformat(),
            "due": self.due.isoformat(),
            "skipped": [{"date": d.isoformat(), "fi": fi, "en": en} for d, fi, en in self.skipped],
        }


def add_months(start: dt.date, months: int) -> dt.date:
    """The same date ``months`` later, or that month's last day (Reg. 1182/71 Art. 3(2)(c))."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(start.day, last_day))


def _midsummer_eve(year: int) -> dt.date:
    # Midsummer Day is the Saturday between 20 and 26 June; its eve the Friday before.
    june19 = dt.date(year, 6, 19)
    return june19 + dt.timedelta(days=(4 - june19.weekday()) % 7)


@functools.cache
def _holidays_of(year: int) -> dict[dt.date, tuple[str, str]]:
    """Finland's non-working days of ``year`` other than weekends: date -> (fi name, en name)."""
    days = _public_holidays(year)
    days.setdefault(_midsummer_eve(year), _EVES["midsummer-eve"])
    days.setdefault(dt.date(year, 12, 24), _EVES["christmas-eve"])
    return days


def _public_holidays(year: int) -> dict[dt.date, tuple[str, str]]:
    """Finland's public holidays of ``year`` as the ``holidays`` package lists them, from the
    cache when the same version of the package made it."""
    version = _holidays_version()
    cache = _holiday_cache(year)
    if version is not None and cache is not None:
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            stored = json.loads(cache.read_text(encoding="utf-8"))
            if stored["version"] == version:
                return {dt.date.fromisoformat(d): (fi, en) for d, fi, en in stored["days"]}
    import holidays

    names_fi = holidays.country_holidays("FI", years=year, language="fi")
    names_en = holidays.country_holidays("FI", years=year, language="en_US")
    days = {day: (str(names_fi.get(day)), str(name)) for day, name in sorted(names_en.items())}
    if version is not None and cache is not None:
        stored = {"version": version, "days": [(d.isoformat(), *n) for d, n in days.items()]}
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")
            tmp.replace(cache)
    return days


def _holiday_cache(year: int) -> Path | None:
    """Where the table of ``year`` is cached (None: no user cache folder here)."""
    try:
        import platformdirs

        return platformdirs.user_cache_path("sheetreg") / f"holidays-FI-{year}.json"
    except Exception:
        return None


def _holidays_version() -> str | None:
    """A fingerprint of the installed ``holidays`` package (its version module, read without
    importing the package); None when it cannot be found."""
    import importlib.util

    with contextlib.suppress(ImportError, ValueError, OSError):
        spec = importlib.util.find_spec("holidays")
        if spec is not None and spec.origin is not None:
            version_file = Path(spec.origin).with_name("version.py")
            return hashlib.sha256(version_file.read_bytes()).hexdigest()[:16]
    return None


def non_working_reason(day: dt.date) -> tuple[str, str] | None:
    """Why ``day`` is not a working day, as (fi, en), or None for a working day."""
    holiday = _holidays_of(day.year).get(day)
    if holiday is not None:
        return holiday
    if day.weekday() == 5:
        return ("lauantai", "Saturday")
    if day.weekday() == 6:
        return ("sunnuntai", "Sunday")
    return None


def is_working_day(day: dt.date) -> bool:
    """True for a Finnish working day: not a weekend, public holiday, Midsummer or Christmas Eve."""
    return non_working_reason(day) is None


def next_working_day(day: dt.date) -> dt.date:
    """``day`` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def deadline(received: dt.date, *, extended: bool = False) -> Deadline:
    """The deadline of a request received on ``received`` (GDPR Art. 12(3), Reg. 1182/71).

    One month from receipt, or three months when the deadline was extended; the end moves to
    the next Finnish working day when it falls on a Saturday, Sunday or holiday.
    """
    months = EXTENDED_MONTHS if extended else ONE_MONTH
    nominal = add_months(received, months)
    skipped: list[tuple[dt.date, str, str]] = []
    day = nominal
    while (reason := non_working_reason(day)) is not None:
        skipped.append((day, *reason))
        day += dt.timedelta(days=1)
    return Deadline(received, months, nominal, day, tuple(skipped))


def due_date(received: dt.date, *, extended: bool = False) -> dt.date:
    """The due date of a request received on ``received``; see :func:`deadline`."""
    return deadline(received, extended=extended).due
