"""Write the Mobetron 1000 example machine (openiort machine-data format) from its estimates.

EXAMPLE DATA, NOT A MEASURED MACHINE. What was retrieved for the Mobetron (IntraOp Medical) is
its settings (energies, applicator diameters and bevels: AAPM TG-72, Beddar AS et al., Med Phys
2006;33:1476-1489, as recalled in shared/reference/electron_iort_machines.csv); no published
PDD, R90 or output-factor table of the Mobetron could be retrieved in this project's sources.
Every beam figure below is therefore an ESTIMATE from general electron-beam relations, named
where it is made, so that the format is proven on a second real design (a 4-12 MeV machine with
measured-style PDD and profile tables, where the LIAC example carries 3D Monte Carlo dose). A
department replaces all of it with its own measurements.

    python scripts/make_mobetron_example.py
    python -m openiort.datafiles
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import erfc

OUT = Path(__file__).resolve().parents[1] / "src/openiort/devices/data/electron"
STEM = "mobetron_1000"
APPLICATORS_CM = (3, 4, 5, 6, 7, 8, 9, 10)  # TG-72: 3-10 cm in 0.5 cm steps (whole cm kept)
BEVELS_DEG = (0, 15, 30)  # TG-72 (recall): 0, 15, 30 deg
ENERGIES_MEV = (4, 6, 9, 12)  # TG-72 (recall): Mobetron 1000 nominal energies

# ESTIMATES, flat 10 cm applicator (cm): R90 ~ E/3.2, R50 ~ E/2.33 (E0 = 2.33 R50, IAEA
# TRS-398 / ICRU 35, UNVERIFIED_recall), surface dose rising with energy (textbook behaviour).
R90_CM = {4: 4 / 3.2, 6: 6 / 3.2, 9: 9 / 3.2, 12: 12 / 3.2}
R50_CM = {e: e / 2.33 for e in ENERGIES_MEV}
SURFACE_PCT = {4: 76.0, 6: 80.0, 9: 85.0, 12: 89.0}
BACKGROUND_PCT = 0.5  # ESTIMATE: bremsstrahlung tail of a scattering-foil-free IORT beam
# ESTIMATE: clinical-axis R90 of a bevelled applicator relative to the flat one, taken from the
# LIAC HWL measured R90 table of this package (mean over applicators and energies).
BEVEL_R90_RATIO = {0: 1.0, 15: 0.93, 30: 0.76}
# ESTIMATE: output of a bevelled applicator relative to the flat one (LIAC HWL table, mean).
BEVEL_OF_RATIO = {0: 1.0, 15: 1.01, 30: 1.03}
HEADER = (
    "# Mobetron 1000 (IntraOp Medical) EXAMPLE machine data: ESTIMATED, NOT MEASURED.\n"
    "# Settings from AAPM TG-72 (Beddar AS et al. Med Phys 2006;33:1476-1489, UNVERIFIED_recall);\n"
    "# every number in this table is an estimate written by scripts/make_mobetron_example.py\n"
    "# (general electron-beam relations, bevel effects by analogy with the LIAC HWL data of this\n"
    "# package). No published Mobetron table was retrieved. Format: docs/electron-machine-data.md.\n"
)


def field_factor(a_cm: int, e: int) -> float:
    """ESTIMATE: R90 shrinks in small applicators at high energy (no lateral equilibrium)."""
    return 1.0 - 0.12 * (e / 12.0) * max(0.0, (6.0 - a_cm) / 3.0)


def pdd(a_cm: int, b: int, e: int) -> tuple[np.ndarray, np.ndarray]:
    """ESTIMATE: build-up to zmax times an erfc fall-off through R90 and R50, plus a tail."""
    scale = BEVEL_R90_RATIO[b] * field_factor(a_cm, e)
    r90 = 10.0 * R90_CM[e] * scale
    r50 = 10.0 * R50_CM[e] * scale
    sigma = (r50 - r90) / 0.9062  # erfc(-0.9062) = 1.8: 90 % at R90, 50 % at R50
    depth = np.arange(0.0, r50 + 4.0 * sigma + 10.0, 1.0)
    fall = 0.5 * erfc((depth - r50) / sigma)
    ds = SURFACE_PCT[e] / 100.0
    build = ds + (1.0 - ds) * (1.0 - np.exp(-depth / (0.25 * r90)))
    d = build * fall
    d = 100.0 * d / d.max()
    d = BACKGROUND_PCT + (100.0 - BACKGROUND_PCT) * d / 100.0
    return depth, 100.0 * d / d.max()


def profile(a_cm: int, b: int, depth_mm: float, x_mm: np.ndarray) -> np.ndarray:
    """ESTIMATE: flat field to the applicator edge, penumbra widening with depth; a bevelled
    beam's field leans to +x by half the bevel's offset at that depth."""
    r = 5.0 * a_cm
    sigma = 2.0 + 0.15 * depth_mm
    shift = 0.5 * depth_mm * np.tan(np.radians(b))
    s = np.abs(x_mm - shift)
    p = 0.5 * erfc((s - r) / (sigma * np.sqrt(2.0)))
    centre = 0.5 * erfc((abs(shift) - r) / (sigma * np.sqrt(2.0)))
    return 100.0 * p / centre


def output_factor(a_cm: int, b: int, e: int) -> float:
    """ESTIMATE: 1.000 cGy/MU for the 10 cm flat applicator; smaller applicators lose scatter
    from the applicator wall, more at low energy; bevel ratios from the LIAC HWL table."""
    flat = 1.0 - 0.012 * (10 - a_cm) * (1.0 + (12 - e) / 24.0)
    return round(flat * BEVEL_OF_RATIO[b], 3)


def main() -> None:
    pdd_rows, prof_rows, of_rows = [], [], []
    for a in APPLICATORS_CM:
        for b in BEVELS_DEG:
            for e in ENERGIES_MEV:
                depth, values = pdd(a, b, e)
                pdd_rows += [
                    f"{a},{b},{e},{z:g},{v:.2f}\n" for z, v in zip(depth, values, strict=True)
                ]
                r90 = float(
                    np.interp(
                        90.0, values[np.argmax(values) :][::-1], depth[np.argmax(values) :][::-1]
                    )
                )
                for z in (round(0.5 * r90), round(r90), round(1.4 * r90)):
                    half = 5.0 * a + 4.0 * (2.0 + 0.15 * z) + 0.5 * z * np.tan(np.radians(b)) + 6.0
                    x = np.arange(-np.ceil(half / 2) * 2, np.ceil(half / 2) * 2 + 1, 2.0)
                    prof = profile(a, b, float(z), x)
                    prof_rows += [
                        f"{a},{b},{e},{z:g},x,{s:g},{v:.2f}\n" for s, v in zip(x, prof, strict=True)
                    ]
                of_rows.append(f"{a},{b},{e},{output_factor(a, b, e):.3f}\n")
    (OUT / f"{STEM}_pdd.csv").write_text(
        HEADER + "applicator_cm,bevel_deg,energy_mev,depth_mm,pdd_pct\n" + "".join(pdd_rows)
    )
    (OUT / f"{STEM}_profiles.csv").write_text(
        HEADER
        + "# x: the direction a bevelled beam leans to; y (not given): the x profile made symmetric.\n"
        + "applicator_cm,bevel_deg,energy_mev,depth_mm,axis,off_axis_mm,relative_pct\n"
        + "".join(prof_rows)
    )
    (OUT / f"{STEM}_output_factors.csv").write_text(
        HEADER
        + "# cGy/MU at the clinical-axis dose maximum; 1.000 for the 10 cm flat applicator.\n"
        + "applicator_cm,bevel_deg,energy_mev,cgy_per_mu\n"
        + "".join(of_rows)
    )
    print(f"wrote {len(pdd_rows)} PDD rows, {len(prof_rows)} profile rows, {len(of_rows)} beams")


if __name__ == "__main__":
    main()
