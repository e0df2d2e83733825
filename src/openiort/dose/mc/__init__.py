"""kV photon Monte Carlo for 50 kV x-ray IORT: physics, sources, transport, scoring.

Public entry points: :func:`radial_dose` (point source in a homogeneous sphere, the validation
API), :func:`openiort.dose.mc.engine.compute` (3D dose in a voxel phantom) and
:func:`openiort.dose.mc.commissioning.regenerate_depth_dose_table`.
"""

from openiort.dose.mc.sphere import radial_dose

__all__ = ["radial_dose"]
