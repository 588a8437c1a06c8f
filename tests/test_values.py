"""Cell value readers: dates, amounts, choices, phones, e-mails, HETU."""

from __future__ import annotations

import datetime as dt
import random

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from sheetreg import values
from sheetreg.schema import YES_NO


def reference_phone(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, "FI"))
    except phonenumbers.NumberParseException:
        return False


def test_phone_fast_path_agrees_with_phonenumbers():
    """The compiled +358 rule gives phonenumbers' verdict on 60,000 varied numbers."""
    rnd = random.Random(7)
    for _ in range(20_000):
        n = str(rnd.randrange(10**3, 10**12))
        for text in ("0" + n, "+358 " + n, f"00358{n}", f"0{n[:2]} {n[2:]}"):
            assert values.phone_is_valid(text) == reference_phone(text), text


@given(st.text(alphabet="0123456789 +-()", min_size=1, max_size=16))
def test_phone_agrees_on_arbitrary_input(text):
    """Property: for any digits-and-punctuation text the verdict is phonenumbers'."""
    assert values.phone_is_valid(text) == reference_phone(text)


@pytest.mark.parametrize(
    "text", ["040 123 4567", "+358 40 1234567", "0401234567", "03 1234567", "018 123456"]
)
def test_common_finnish_numbers_valid(text):
    """Mobile, landline and Åland numbers in the ways people write them."""
    assert values.phone_is_valid(text)


@given(st.emails())
def test_email_fast_path_never_accepts_what_email_validator_rejects(address):
    """Property: whatever the fast path accepts, email-validator accepts too."""
    try:
        validate_email(address, check_deliverability=False)
        expected = True
    except EmailNotValidError:
        expected = False
    assert values.email_is_valid(address) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20.10.2020", dt.date(2020, 10, 20)),
        ("2020-10-20", dt.date(2020, 10, 20)),
        ("1.2.2021.", dt.date(2021, 2, 1)),
        (dt.datetime(2020, 10, 20, 0, 0), dt.date(2020, 10, 20)),
        (44124.0, dt.date(2020, 10, 20)),
        ("", None),
    ],
)
def test_dates(raw, expected):
    """Dates as real Excel dates, serial numbers or typed text."""
    assert values.as_date(raw) == expected


@pytest.mark.parametrize("raw", ["31.2.2021", "ensi viikolla", "20/10/2020", True])
def test_bad_dates(raw):
    """Impossible or unreadable dates raise ValueError."""
    with pytest.raises(ValueError):
        values.as_date(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("85,50", 85.5), ("1 234,50 €", 1234.5), ("1.234,50", 1234.5), (85, 85.0), ("12.5", 12.5)],
)
def test_amounts(raw, expected):
    """Amounts with a decimal comma, spaces, thousands dots and a euro sign."""
    assert values.as_money(raw) == expected


@pytest.mark.parametrize("raw", ["12,5,0", "kaksikymmentä", "€"])
def test_bad_amounts(raw):
    """Unreadable amounts raise ValueError."""
    with pytest.raises(ValueError):
        values.as_money(raw)


def test_yes_no_in_both_languages():
    """Kyllä/Yes/TRUE are yes; Ei/No are no; case and spaces ignored."""
    assert values.as_yes(" kyllä ") and values.as_yes("YES") and values.as_yes(True)
    assert not values.as_yes("Ei") and not values.as_yes("") and not values.as_yes("Ehkä")
    assert values.as_choice("no", YES_NO) == YES_NO[1]


def hetu(dd_mm_yy: str, sign: str, zzz: str) -> str:
    return dd_mm_yy + sign + zzz + values.HETU_CHECK[int(dd_mm_yy + zzz) % 31]


@pytest.mark.parametrize("sign", ["+", "-", "Y", "X", "W", "V", "U", "A", "B", "C", "D", "E", "F"])
def test_hetu_every_century_sign(sign):
    """A HETU with any century sign and a right check character is found in text."""
    code = hetu("131052", sign, "308")
    assert [m[0] for m in values.find_hetus(f"syntynyt {code}, soita")] == [code]


def test_hetu_rejects_wrong_check_impossible_date_and_embedded():
    """Wrong check character, 31.2. and codes inside longer tokens are not HETUs."""
    good = hetu("131052", "-", "308")
    wrong = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert values.find_hetus(wrong) == []
    assert values.find_hetus(hetu("310252", "-", "308")) == []
    assert values.find_hetus("X" + good) == []


@pytest.mark.parametrize("sign", ["+", "-", "Y", "A", "F", "U"])
def test_hetu_shape_is_seen_before_the_pattern_reads(sign):
    """The quick look that spares a column the HETU pattern sees every code the pattern
    could match, with ASCII digits or another script's, and passes text without one."""
    code = hetu("131052", sign, "308")
    assert values.may_hold_hetu(f"Aino Hämäläinen\nsyntynyt {code}, soita\n")
    assert values.may_hold_hetu("١٣١٠٥٢-٣٠٨H")  # Arabic-Indic digits are \d too
    for text in ("Aino Hämäläinen", "040 123 4567", "13.10.1952", "A1001-2026", "131052 308X"):
        assert not values.may_hold_hetu(text)


_AROUND = "0123456789-+AFUYZaä٣３ \n"
_DIGITS = "0123456789٣３"


@given(
    st.text(alphabet=_AROUND, max_size=12),
    st.text(alphabet=_DIGITS, min_size=6, max_size=6),
    st.sampled_from("-+ABCDEFUVWXY"),
    st.text(alphabet=_DIGITS, min_size=3, max_size=3),
    st.sampled_from("0123456789AHY"),
    st.text(alphabet=_AROUND, max_size=12),
)
def test_hetu_shape_never_misses_what_the_pattern_matches(before, date, sign, zzz, check, after):
    """Property: where the HETU pattern matches, the quick look says the text may hold one."""
    text = before + date + sign + zzz + check + after
    if values.HETU_PATTERN.search(text):
        assert values.may_hold_hetu(text)


@given(st.lists(st.text(alphabet="0123456789 +-()./\u00a0\nä", max_size=16), max_size=30))
def test_phones_compacted_together_as_each_alone(texts):
    """Property: a column's numbers without separators, made in one pass (or, where a text
    has a line break of its own, one by one), are each number's own."""
    assert values.compact_phones(texts) == [t.translate(values.PHONE_JUNK) for t in texts]


@given(st.lists(st.text(alphabet="0123456789 +-()\n", max_size=16), max_size=30))
def test_column_phone_check_agrees_with_per_cell(texts):
    """Property: the whole-column phone check flags exactly what the per-cell check does."""
    expected = {t for t in texts if not values.phone_is_valid(t.strip())}
    assert values.invalid_phones(texts) == expected


@given(st.lists(st.one_of(st.emails(), st.text(max_size=20)), max_size=30))
def test_column_email_check_agrees_with_per_cell(texts):
    """Property: the whole-column e-mail check flags exactly what the per-cell check does."""
    expected = {t for t in texts if not values.email_is_valid(t.strip())}
    assert values.invalid_emails(texts) == expected


def test_fold_is_casefold_in_pieces():
    """A long text is folded 64k characters at a time, with the same result as one fold:
    characters that fold to several (ß, ﬁ, İ), a final sigma and non-Latin-1 text across the
    pieces' seams."""
    alphabet = "aAäÄöÖßẞİΣσςﬁ–\n x"
    text = "".join(alphabet[(n * 7919) % len(alphabet)] for n in range(3 * (1 << 16) + 17))
    assert values.fold(text) == text.casefold()
    assert values.fold("Hämeenkatu") == "hämeenkatu" and values.fold("") == ""
