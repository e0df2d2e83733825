"""Make the test department's x-ray source data (synthetic: NOT a real source's measurements).

The web, records and DICOM tests need plans that may be approved, so they plan with department
data rather than the built-in example source. These tables reproduce the example source
(AAPM TG-292 Table IV rates with openiort's commissioned water depth-dose) in the department
format of openiort.devices.xray.load_commissioning: a bare-probe table falling as r^-3 and, per
applicator, the transfer coefficient that turns it into the example's V4.0 dose rate.

    python tests/data/department_xray_source/make_department_source.py
    iort devices manifest tests/data/department_xray_source
"""

from pathlib import Path

import numpy as np

from openiort.devices.xray import load_example_source
from openiort.devices.xray_second_check import load_model

HERE = Path(__file__).parent
HEADER = "# Synthetic test data (openiort tests), not measured: see make_department_source.py\n"

source = load_example_source()
distances_mm = np.arange(5.0, 76.0, 0.5)
bare = 10.0 * (10.0 / distances_mm) ** 3  # Gy/min, any smooth positive shape will do
(HERE / "bare_probe.csv").write_text(
    HEADER
    + "distance_from_source_mm,dose_rate_gy_min\n"
    + "".join(f"{r:.1f},{g:.8g}\n" for r, g in zip(distances_mm, bare, strict=True))
)
rows = []
for diameter in source.diameters_cm:
    depth = np.arange(0.0, 40.5, 0.5)
    rate = source.dose_rate_gy_min(diameter, depth, "V4.0")
    at = np.interp(source.applicator(diameter).radius_mm + depth, distances_mm, bare)
    rows += [f"{diameter:g},{z:.1f},{t:.8g}\n" for z, t in zip(depth, rate / at, strict=True)]
(HERE / "transfer.csv").write_text(
    HEADER + "applicator_diameter_cm,depth_mm,transfer_coefficient\n" + "".join(rows)
)
(HERE / "source.yaml").write_text(
    HEADER
    + 'source_serial: "TEST-XRS-0001"\n'
    + 'version: "test-1"\n'
    + "effective_date: 2026-01-20\n"
    + 'commissioned_by: "openiort test suite"\n'
    + "measured_on: 2026-01-15\n"
    + "dose_definition: V4.0\n"
    + "bare_probe_csv: bare_probe.csv\n"
    + "transfer_coefficients_csv: transfer.csv\n"
    + "second_check_reference:\n"
    + "  distance_from_source_mm: 10.0\n"
    + f"  dose_rate_gy_min: {load_model().nominal_output_v40_gy_min}\n"
    + "  dose_definition: V4.0\n"
    + '  source: "synthetic: the second-check model\'s nominal output"\n'
)
print(f"wrote {HERE}")
