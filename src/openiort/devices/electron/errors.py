"""Errors of the electron device data: data missing or corrupt, a setting not in them."""

from __future__ import annotations

from openiort.errors import OpenIortInputError


class ElectronDataError(OpenIortInputError):
    """Electron device data that are missing, corrupt or malformed."""


class ElectronSettingError(OpenIortInputError):
    """An applicator, bevel or energy that the device data do not contain."""
