"""Errors raised by the radiobiology package."""

from __future__ import annotations

from openiort.errors import OpenIortInputError


class RadiobiologyError(OpenIortInputError):
    """Bad radiobiological input: names the parameter, its value and what is allowed."""
