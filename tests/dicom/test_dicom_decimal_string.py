"""Decimal Strings (DS) written by the exporters: at most 16 characters (PS3.5 6.2), as close
to the value as that allows, and the full value where its shortest text fits."""

from __future__ import annotations

import math

import pytest
from pydicom.valuerep import DSfloat

from openiort.io.dicom_common import DS_MAX_CHARS, ds

AWKWARD = [
    1e-7,
    -123456.789012345,
    10.000000000000002,
    1e20,
    0.000123456789012345,
    -1.2345678901234567e-100,
    1.2345678901234567e300,
    0.30000000000000004,
    1 / 3,
    5e-324,
    -0.0,
]


@pytest.mark.parametrize("value", AWKWARD)
def test_ds_fits_and_reads_back_close(value: float) -> None:
    text = ds(value)
    assert len(text) <= DS_MAX_CHARS
    # pydicom validates the DS grammar and length when strict.
    DSfloat(text, validation_mode=2)
    # 16 characters leave at least 9 significant digits, even with a 3-digit negative exponent.
    assert math.isclose(float(text), value, rel_tol=1e-9, abs_tol=0.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e-7, "1e-7"),  # exact, in the fewest characters
        (1e20, "1e20"),
        (10.000000000000002, "10"),  # the nearest value that 16 characters can hold
        (-123456.789012345, "-123456.78901235"),  # 14 significant digits, the most that fit
        (0.000123456789012345, "1.23456789012e-4"),  # scientific keeps 12 digits, fixed 11
        (355.123456789, "355.123456789"),  # full precision where it fits
        (0.1, "0.1"),
    ],
)
def test_ds_text(value: float, expected: str) -> None:
    assert ds(value) == expected


def test_ds_keeps_every_value_whose_shortest_text_fits() -> None:
    for value in (0.1, 2.5, 355.0, 1e-7, 123456.789, -0.001234, 6.02214076e23):
        assert float(ds(value)) == value


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_ds_refuses_non_finite(value: float) -> None:
    with pytest.raises(ValueError, match="Decimal String"):
        ds(value)
