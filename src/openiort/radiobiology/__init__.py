"""Radiobiology: IORT expressed in the currency of external beam (BED, EQD2).

LQ, LQ-L and USC models vectorised over dose, taking parameter objects (``LqModel`` or
``ModelChoice``, ``Timing``, ``Repopulation``, ``Rbe``), the Lea-Catcheside protraction factor
for long x-ray deliveries, optional repopulation and RBE, a library of breast schedules and
tissue parameters with their sources (``data/``), EQD2 maps of dose grids and depth profiles,
and the plan-report section. Doses going in are doses to water, never the nominal TARGIT dose.
"""

from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.inputs import (
    MODELS,
    LqModel,
    ModelChoice,
    Rbe,
    Repopulation,
    Timing,
    USCParameters,
)
from openiort.radiobiology.lq import bed, eqd2
from openiort.radiobiology.maps import DepthEQD2, eqd2_map, eqd2_sum, eqd2_versus_depth
from openiort.radiobiology.parameters import Tissue, get_tissue, tissue_library
from openiort.radiobiology.protraction import protraction_factor
from openiort.radiobiology.repopulation import repopulation_bed_loss_gy
from openiort.radiobiology.response import TissueResponse, tissue_response
from openiort.radiobiology.schedules import (
    ScheduleResult,
    evaluate_schedule,
    get_schedule,
    schedule_library,
    targit_to_water,
)
from openiort.radiobiology.section import RadiobiologySection, build_radiobiology_section

__all__ = [
    "MODELS",
    "DepthEQD2",
    "LqModel",
    "ModelChoice",
    "RadiobiologyError",
    "RadiobiologySection",
    "Rbe",
    "Repopulation",
    "ScheduleResult",
    "Timing",
    "Tissue",
    "TissueResponse",
    "USCParameters",
    "bed",
    "build_radiobiology_section",
    "eqd2",
    "eqd2_map",
    "eqd2_sum",
    "eqd2_versus_depth",
    "evaluate_schedule",
    "get_schedule",
    "get_tissue",
    "protraction_factor",
    "repopulation_bed_loss_gy",
    "schedule_library",
    "targit_to_water",
    "tissue_library",
    "tissue_response",
]
