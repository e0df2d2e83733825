"""Errors raised by the radiobiology package."""

from __future__ import annotations


class RadiobiologyError(ValueError):
    """Bad radiobiological input: names the parameter, its value and what is allowed."""
