"""Request deadlines: GDPR Art. 12(3) counted by Regulation 1182/71 with Finnish holidays."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sheetreg.deadlines import (
    add_months,
    deadline,
    due_date,
    is_working_day,
    next_working_day,
    non_working_reason,
)

D = dt.date

# (received, due without extension, why the case is here). Every expected date was worked out
# by hand from a calendar, not by running the code.
ONE_MONTH = [
    (D(2026, 4, 15), D(2026, 5, 15), "PRODUCT.md example: same date next month"),
    (D(2026, 1, 31), D(2026, 3, 2), "PRODUCT.md example: 28.2. is a Saturday"),
    (D(2028, 1, 31), D(2028, 2, 29), "31 January, leap year: 29.2.2028 is a Tuesday"),
    (D(2024, 1, 30), D(2024, 2, 29), "30 January, leap year: 29.2.2024 is a Thursday"),
    (D(2027, 1, 29), D(2027, 3, 1), "29 January, non-leap: 28.2.2027 is a Sunday"),
    (D(2025, 1, 31), D(2025, 2, 28), "31 January, non-leap: 28.2.2025 is a Friday"),
    (D(2026, 2, 15), D(2026, 3, 16), "ends on a Sunday"),
    (D(2026, 3, 14), D(2026, 4, 14), "received on a Saturday: receipt day not counted"),
    (D(2026, 12, 1), D(2027, 1, 4), "New Year's Day (Fri), then the weekend"),
    (D(2026, 12, 6), D(2027, 1, 7), "Epiphany (Wed)"),
    (D(2026, 3, 3), D(2026, 4, 7), "Good Friday, the Easter weekend, Easter Monday"),
    (D(2026, 3, 6), D(2026, 4, 7), "Easter Monday"),
    (D(2026, 4, 1), D(2026, 5, 4), "May Day (Fri), then the weekend"),
    (D(2026, 4, 14), D(2026, 5, 15), "Ascension Day (Thu)"),
    (D(2026, 5, 19), D(2026, 6, 22), "Midsummer Eve (Fri) and Midsummer Day (Sat)"),
    (D(2027, 10, 6), D(2027, 11, 8), "All Saints' Day (Sat 6.11.2027)"),
    (D(2027, 11, 6), D(2027, 12, 7), "Independence Day (Mon 6.12.2027)"),
    (D(2026, 11, 24), D(2026, 12, 28), "Christmas Eve, Christmas Day, Boxing Day, Sunday"),
    (D(2025, 11, 25), D(2025, 12, 29), "Christmas Day, St Stephen's Day, weekend"),
]

EXTENDED = [
    (D(2026, 4, 15), D(2026, 7, 15), "same date three months later"),
    (D(2026, 1, 31), D(2026, 4, 30), "31 January: 30 April exists, a Thursday"),
    (D(2027, 11, 30), D(2028, 2, 29), "to a leap February: its last day"),
    (D(2026, 11, 30), D(2027, 3, 1), "to a non-leap February: 28.2.2027 is a Sunday"),
    (D(2026, 10, 1), D(2027, 1, 4), "New Year's Day"),
    (D(2026, 10, 6), D(2027, 1, 7), "Epiphany"),
    (D(2026, 1, 3), D(2026, 4, 7), "Good Friday through Easter Monday"),
    (D(2026, 2, 1), D(2026, 5, 4), "May Day"),
    (D(2026, 2, 14), D(2026, 5, 15), "Ascension Day"),
    (D(2026, 3, 19), D(2026, 6, 22), "Midsummer Eve and Day"),
    (D(2026, 7, 31), D(2026, 11, 2), "All Saints' Day (Sat 31.10.2026)"),
    (D(2027, 9, 6), D(2027, 12, 7), "Independence Day"),
    (D(2026, 9, 24), D(2026, 12, 28), "Christmas"),
]


@pytest.mark.parametrize(("received", "due", "why"), ONE_MONTH, ids=[c[2] for c in ONE_MONTH])
def test_one_month_deadline(received, due, why):
    """One month from receipt, moved past weekends and Finnish holidays."""
    assert due_date(received) == due, why


@pytest.mark.parametrize(("received", "due", "why"), EXTENDED, ids=[c[2] for c in EXTENDED])
def test_extended_deadline(received, due, why):
    """Extended: three months from receipt, counted the same way."""
    assert due_date(received, extended=True) == due, why


def test_product_example_reports_the_nominal_day_and_why_it_moved():
    """31.1.2026: nominal 28.2.2026 (Saturday), skipped Saturday and Sunday, due 2.3.2026."""
    found = deadline(D(2026, 1, 31))
    assert found.nominal == D(2026, 2, 28)
    assert found.due == D(2026, 3, 2)
    assert found.moved
    assert [(d, en) for d, _fi, en in found.skipped] == [
        (D(2026, 2, 28), "Saturday"),
        (D(2026, 3, 1), "Sunday"),
    ]
    assert found.days_left(D(2026, 3, 3)) == -1
    assert found.to_dict()["due"] == "2026-03-02"


@pytest.mark.parametrize(
    ("day", "name_en"),
    [
        (D(2026, 1, 1), "New Year's Day"),
        (D(2026, 1, 6), "Epiphany"),
        (D(2026, 4, 3), "Good Friday"),
        (D(2026, 4, 6), "Easter Monday"),
        (D(2026, 5, 1), "May Day"),
        (D(2026, 5, 14), "Ascension Day"),
        (D(2026, 6, 19), "Midsummer Eve"),
        (D(2026, 6, 20), "Midsummer Day"),
        (D(2026, 10, 31), "All Saints' Day"),
        (D(2026, 12, 6), "Independence Day"),
        (D(2026, 12, 24), "Christmas Eve"),
        (D(2026, 12, 25), "Christmas Day"),
        (D(2026, 12, 26), "Second Day of Christmas"),
    ],
)
def test_finnish_holidays_are_not_working_days(day, name_en):
    """Every holiday the issue names is a non-working day, with its name in fi and en."""
    assert not is_working_day(day)
    fi, en = non_working_reason(day)
    assert en == name_en
    assert fi and fi != en


@pytest.mark.parametrize("eve", [D(2025, 6, 20), D(2027, 6, 25), D(2028, 6, 23), D(2030, 6, 21)])
def test_midsummer_eve_is_the_friday_before_midsummer_day(eve):
    """Midsummer Eve (the Friday 19-25 June) is non-working in any year (Act 150/1930, §5)."""
    assert eve.weekday() == 4
    assert not is_working_day(eve)
    assert is_working_day(eve - dt.timedelta(days=1))


def test_ordinary_days_and_next_working_day():
    """Weekdays that are not holidays are working days; next_working_day skips the rest."""
    assert is_working_day(D(2026, 11, 25))
    assert next_working_day(D(2026, 11, 25)) == D(2026, 11, 25)
    assert next_working_day(D(2026, 12, 24)) == D(2026, 12, 28)
    assert non_working_reason(D(2026, 11, 28)) == ("lauantai", "Saturday")


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (D(2026, 1, 31), 1, D(2026, 2, 28)),
        (D(2028, 1, 31), 1, D(2028, 2, 29)),
        (D(2026, 3, 31), 1, D(2026, 4, 30)),
        (D(2026, 11, 30), 3, D(2027, 2, 28)),
        (D(2026, 12, 15), 1, D(2027, 1, 15)),
    ],
)
def test_add_months_uses_the_last_day_when_the_date_does_not_exist(start, months, end):
    """Reg. 1182/71 Art. 3(2)(c): same date, or the last day of a shorter month."""
    assert add_months(start, months) == end


@given(st.dates(min_value=D(2000, 1, 1), max_value=D(2090, 12, 31)), st.booleans())
def test_deadline_properties(received, extended):
    """The due day is the first working day on or after the nominal end, never before it."""
    found = deadline(received, extended=extended)
    assert found.nominal == add_months(received, 3 if extended else 1)
    assert found.due >= found.nominal > received
    assert is_working_day(found.due)
    day = found.nominal
    while day < found.due:
        assert not is_working_day(day)
        day += dt.timedelta(days=1)
    assert due_date(received, extended=True) >= due_date(received)


def test_holiday_tables_are_cached_for_the_package_version(tmp_path, monkeypatch):
    """A year's holidays, as the holidays package lists them, are kept in the user's cache
    folder and read from there; a table of another version of the package, or a damaged
    one, is made afresh."""
    import json

    from sheetreg import deadlines

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = deadlines._public_holidays(2031)
    assert fresh[dt.date(2031, 12, 6)] == ("Itsenäisyyspäivä", "Independence Day")
    cache = tmp_path / "sheetreg" / "holidays-FI-2031.json"
    stored = json.loads(cache.read_text(encoding="utf-8"))
    assert deadlines._public_holidays(2031) == fresh
    stored["days"].append(["2031-03-03", "Testipäivä", "Test day"])
    cache.write_text(json.dumps(stored), encoding="utf-8")
    assert deadlines._public_holidays(2031)[dt.date(2031, 3, 3)] == ("Testipäivä", "Test day")
    stored["version"] = "another"
    cache.write_text(json.dumps(stored), encoding="utf-8")
    assert deadlines._public_holidays(2031) == fresh
    cache.write_text("{damaged", encoding="utf-8")
    assert deadlines._public_holidays(2031) == fresh
    assert json.loads(cache.read_text(encoding="utf-8"))["days"] == [
        [d.isoformat(), *names] for d, names in sorted(fresh.items())
    ]
