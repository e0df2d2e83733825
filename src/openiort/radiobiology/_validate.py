"""Input checks shared by the radiobiology modules; each failure names the parameter."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort.radiobiology.errors import RadiobiologyError

FloatArray = NDArray[np.float64]


def dose_array(value: ArrayLike, name: str = "total_dose_gy", unit: str = "Gy") -> FloatArray:
    """Non-negative float array (a dose, a time); rejects NaN, infinities and negatives."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RadiobiologyError(f"{name} must be a number or an array of numbers") from exc
    if arr.size and not np.all(np.isfinite(arr)):
        raise RadiobiologyError(f"{name} contains NaN or infinite values")
    if arr.size and np.min(arr) < 0.0:
        raise RadiobiologyError(f"{name} must not be negative (minimum {np.min(arr):g} {unit})")
    return arr


def n_fractions(value: object) -> int:
    """A whole number of fractions, at least 1."""
    if isinstance(value, bool) or not isinstance(value, Integral | Real):
        raise RadiobiologyError(f"n_fractions must be a whole number >= 1, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x != math.floor(x):
        raise RadiobiologyError(f"n_fractions must be a whole number >= 1, got {value!r}")
    if x < 1:
        raise RadiobiologyError(f"n_fractions must be >= 1, got {int(x)}")
    return int(x)


def positive(value: object, name: str, unit: str) -> float:
    """A finite number > 0."""
    x = _finite(value, name)
    if x <= 0.0:
        raise RadiobiologyError(f"{name} must be > 0 {unit}, got {x:g}")
    return x


def non_negative(value: object, name: str, unit: str) -> float:
    """A finite number >= 0."""
    x = _finite(value, name)
    if x < 0.0:
        raise RadiobiologyError(f"{name} must be >= 0 {unit}, got {x:g}")
    return x


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise RadiobiologyError(f"{name} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise RadiobiologyError(f"{name} must be finite, got {x}")
    return x


def as_output(arr: FloatArray, scalar: bool) -> float | FloatArray:
    """A float for scalar input, an array otherwise."""
    return float(arr) if scalar else arr
