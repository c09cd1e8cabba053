"""Date shifting keeps each date's own format and every interval between dates."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from deid.anonymize.date_shift import _matches, shift_dates_in, shift_fhir_date


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("03/14/2021", 20, "04/03/2021"),
        ("3/14/21", 20, "4/3/21"),
        ("14 Mar 2021", 20, "3 Apr 2021"),
        ("2021-03-14", 20, "2021-04-03"),
        ("MARCH 14TH, 2021", 20, "APRIL 3RD, 2021"),
        ("march 14", -14, "february 28"),
        ("14-Mar-2021", 300, "8-Jan-2022"),
        ("31/12/2020", 1, "01/01/2021"),
        ("2017-03-08T10:09:01", -7, "2017-03-01T10:09:01"),
        ("Mar. 2021", 31, "Apr. 2021"),
        ("seen 12/30/99, again 1/2/00", 3, "seen 01/02/00, again 1/5/00"),
    ],
)
def test_shift_keeps_the_written_format(text: str, offset: int, expected: str) -> None:
    assert shift_dates_in(text, offset) == expected


def test_text_without_a_date_is_reported_as_such() -> None:
    assert shift_dates_in("Christmas morning", 10) is None
    assert shift_dates_in("BP 132/76, HR 88", 10) is None


@pytest.mark.parametrize("offset", [-365, -31, -1, 1, 29, 200, 365])
def test_intervals_between_dates_are_preserved(offset: int) -> None:
    text = "Admitted 02/27/2020, echo 2020-03-02, discharged 9 Mar 2020."
    before = [parsed.value for _, parsed in _matches(text)]
    after = [parsed.value for _, parsed in _matches(shift_dates_in(text, offset) or "")]
    assert len(before) == len(after) == 3
    assert [(b - a).days for a, b in itertools.pairwise(before)] == [(b - a).days for a, b in itertools.pairwise(after)]
    assert all((new - old).days == offset for old, new in zip(before, after, strict=True))


def test_fhir_dates_keep_their_precision_and_time() -> None:
    assert shift_fhir_date("2017-03-08T10:09:01.500-05:00", -400) == "2016-02-02T10:09:01.500-05:00"
    assert shift_fhir_date("2017-03", 20) == "2017-04"
    assert shift_fhir_date("2017-12-31", 1) == "2018-01-01"
    assert date.fromisoformat(shift_fhir_date("2020-02-28", 1)) == date(2020, 2, 29)
