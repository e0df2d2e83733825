"""The electron planner's input error: a case or request that cannot be planned, and why."""

from __future__ import annotations

from openiort.errors import OpenIortInputError


class ElectronPlanningError(OpenIortInputError):
    """A case or request that cannot be planned with the electron device, with the reason."""
