"""Electron IORT planning (ELIOT technique): applicator, bevel, energy, monitor units, dose.

In ELIOT-style breast IORT the gland around the tumour bed is mobilised, the skin retracted out
of the beam and a shielding disc slipped between the gland and the pectoral muscle; the target
is the gland layer, of thickness ``anatomy.target_thickness_mm`` (measured with a needle) and
extent ``anatomy.target_width_mm``. The planner

* takes the bevel closest to the inclination of the gland surface to the applicator axis;
* takes the smallest applicator whose 90 % isodose, at the depth of maximum dose, is at least as
  wide as the target (plus an optional lateral margin), using for each applicator the lowest
  energy whose measured R90 (less any bolus) covers the water-equivalent target thickness;
* prescribes to the 90 % isodose (21 Gy by default, ELIOT) and computes monitor units with the
  air-pressure correction of the device worksheet, plus an independent second calculation from
  the Monte Carlo output factor;
* lists the alternatives it rejected and why, and, given a phantom, places the beam and the disc
  in it and reports target coverage and lung, heart, rib, chest-wall and skin doses.

Every default and literature constant is in ``devices/data/electron/planning_defaults.yaml``.

The package, by stage: :mod:`.selection` (bevel, applicator, energy, and the alternatives
rejected), :mod:`.mu` (monitor units and the second check, from one :class:`MuRequest`),
:mod:`.placement` (the beam in the phantom, the shielding disc), :mod:`.dose` (depth profile,
3D and organ doses), :mod:`.result` (:class:`ElectronPlanResult` and its ``plan.json`` summary)
and :mod:`.plan` (:func:`plan_electron` and its :class:`ElectronPlanSettings`).
"""

from openiort.devices.electron import ElectronSettingError
from openiort.planning.electron.errors import ElectronPlanningError
from openiort.planning.electron.mu import (
    MuCalculation,
    MuRequest,
    SecondCheck,
    calculate_mu,
    chamber_correction,
    monitor_units,
    monitor_units_exact,
    second_check,
)
from openiort.planning.electron.placement import PhantomOptions
from openiort.planning.electron.plan import ElectronPlanSettings, plan_electron
from openiort.planning.electron.result import ElectronPlanResult, StructureDose, structure_dose
from openiort.planning.electron.selection import RejectedAlternative

__all__ = [
    "ElectronPlanResult",
    "ElectronPlanSettings",
    "ElectronPlanningError",
    "ElectronSettingError",
    "MuCalculation",
    "MuRequest",
    "PhantomOptions",
    "RejectedAlternative",
    "SecondCheck",
    "StructureDose",
    "calculate_mu",
    "chamber_correction",
    "monitor_units",
    "monitor_units_exact",
    "plan_electron",
    "second_check",
    "structure_dose",
]
