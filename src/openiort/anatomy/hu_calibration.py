"""The HU calibration: CT numbers <-> (material, mass density), replaceable by a department's file.

The calibration (``data/hu_calibration.csv``, documented in its header) maps CT numbers to a
material of the library and a mass density, and the materials back to CT numbers for export:

- a material row owns an HU bin ``[hu_min, next hu_min)``; its density is either nominal or
  proportional to ``1000 + HU`` (fixed composition, so the attenuation scales with density);
- the ``breast_gNN`` row is the gland/adipose mixture family: the HU gives the gland mass
  fraction in 1 % steps and the density is that mixture's nominal density;
- a row with a ``structure`` assigns its material to the voxels of that RTSTRUCT structure
  whatever their HU (the applicator).

The DICOM export (``openiort.io.dicom_export``) writes CT numbers through :func:`phantom_hu`;
the CT import (``openiort.inputs.ct``) assigns materials through :meth:`HuCalibration.assign`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.datafiles import parse_commented_csv, read_data, read_path
from openiort.errors import OpenIortInputError

MIXTURE = "breast_gNN"
DENSITY_RULES = ("nominal", "proportional", "mixture")


def composition_hu(material: str, energy_kev: float) -> float:
    """1000 (mu / mu_water - 1) of a library material at ``energy_kev`` (the rule of the CSV's
    hu_nominal), from its composition and density with xraydb's total cross sections."""
    import xraydb

    def mu_cm(name: str) -> float:
        m = get_material(name)
        return m.density_g_cm3 * sum(
            w * float(xraydb.mu_elam(el, energy_kev * 1000.0, kind="total"))
            for el, w in m.composition.items()
        )

    return 1000.0 * (mu_cm(material) / mu_cm("water") - 1.0)


class CalibrationError(OpenIortInputError):
    """A malformed HU calibration file (the message names the file and the row)."""


@dataclass(frozen=True)
class CalibrationRow:
    material: str
    hu_min: float | None
    hu_nominal: float | None
    density_rule: str
    structure: str | None


@dataclass(frozen=True)
class HuCalibration:
    """HU <-> (material, density) rules; see the module docstring and the CSV header."""

    rows: tuple[CalibrationRow, ...]
    source: str
    sha256: str
    effective_energy_kev: float | None = None

    def __post_init__(self) -> None:
        self._validate()

    # -- validation -------------------------------------------------------------------------
    def _fail(self, message: str) -> CalibrationError:
        return CalibrationError(f"HU calibration {self.source}: {message}")

    def _validate(self) -> None:
        seen: set[str] = set()
        for row in self.rows:
            if row.material in seen:
                raise self._fail(f"material {row.material!r} listed twice")
            seen.add(row.material)
            if row.density_rule not in DENSITY_RULES:
                raise self._fail(
                    f"{row.material}: density_rule {row.density_rule!r} not one of {DENSITY_RULES}"
                )
            if row.material == MIXTURE:
                if row.density_rule != "mixture" or row.hu_min is None:
                    raise self._fail(f"{MIXTURE} needs density_rule mixture and an hu_min")
                continue
            if row.density_rule == "mixture":
                raise self._fail(f"{row.material}: only {MIXTURE} may use density_rule mixture")
            try:
                get_material(row.material)
            except KeyError as exc:
                raise self._fail(str(exc.args[0])) from exc
            if row.hu_nominal is None:
                raise self._fail(f"{row.material}: hu_nominal is required")
            if row.density_rule == "proportional" and row.hu_nominal <= -1000.0:
                raise self._fail(f"{row.material}: proportional density needs hu_nominal > -1000")
        binned = self.binned_rows
        if not binned or binned[0].hu_min != -math.inf:
            raise self._fail("the first HU bin must start at -inf")
        edges = [float(r.hu_min) for r in binned if r.hu_min is not None]
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise self._fail("hu_min must increase from row to row")
        for i, row in enumerate(binned):
            if row.material == MIXTURE:
                if "adipose" not in seen or "gland" not in seen:
                    raise self._fail(f"{MIXTURE} needs adipose and gland rows (its end members)")
                if self._hu0("gland") <= self._hu0("adipose"):
                    raise self._fail("gland must have a higher hu_nominal than adipose")
                continue
            following = binned[i + 1].hu_min if i + 1 < len(binned) else None
            upper = following if following is not None else math.inf
            lower = row.hu_min if row.hu_min is not None else -math.inf
            if not lower <= self._hu0(row.material) < upper:
                raise self._fail(f"{row.material}: hu_nominal lies outside its own HU bin")

    # -- accessors ----------------------------------------------------------------------------
    @property
    def binned_rows(self) -> tuple[CalibrationRow, ...]:
        return tuple(r for r in self.rows if r.hu_min is not None)

    def _row(self, material: str) -> CalibrationRow:
        for row in self.rows:
            if row.material == material:
                return row
        raise KeyError(material)

    @property
    def has_mixture(self) -> bool:
        return any(r.material == MIXTURE for r in self.rows)

    @property
    def structure_overrides(self) -> dict[str, str]:
        """structure name -> material assigned to its voxels on import."""
        return {r.structure: r.material for r in self.rows if r.structure}

    def _hu0(self, material: str) -> float:
        """hu_nominal of a material row (validated to be present for every non-family row)."""
        value = self._row(material).hu_nominal
        if value is None:
            raise self._fail(f"{material}: hu_nominal is required")
        return float(value)

    def _mixture_constants(self) -> tuple[float, float, float, float]:
        """(rho_adipose, rho_gland, (1000 + HU)/rho for adipose, same for gland)."""
        rho_a = get_material("adipose").density_g_cm3
        rho_g = get_material("gland").density_g_cm3
        return (
            rho_a,
            rho_g,
            (1000.0 + self._hu0("adipose")) / rho_a,
            (1000.0 + self._hu0("gland")) / rho_g,
        )

    def mixture_hu(self, gland_fraction: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """CT number of the gland/adipose mixture at its nominal density.

        The mass attenuation coefficient mixes by mass and the specific volume additively, so
        1000 + HU = rho(f) [f k_g + (1 - f) k_a] with k = (1000 + HU) / rho of each end member.
        """
        f = np.asarray(gland_fraction, dtype=np.float64)
        rho_a, rho_g, k_a, k_g = self._mixture_constants()
        rho = 1.0 / (f / rho_g + (1.0 - f) / rho_a)
        return np.asarray(rho * (f * k_g + (1.0 - f) * k_a) - 1000.0, dtype=np.float64)

    def mixture_fraction(self, hu: NDArray[np.float64]) -> NDArray[np.float64]:
        """Gland mass fraction of the mixture with CT number ``hu`` (inverse of mixture_hu,
        unclipped)."""
        rho_a, rho_g, k_a, k_g = self._mixture_constants()
        h = np.asarray(hu, dtype=np.float64) + 1000.0
        return np.asarray(
            (h / rho_a - k_a) / ((k_g - k_a) - h * (1.0 / rho_g - 1.0 / rho_a)), dtype=np.float64
        )

    # -- export: material -> HU -----------------------------------------------------------------
    def material_hu(
        self, material: str, density_g_cm3: NDArray[np.float32] | NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """CT numbers of voxels of ``material`` with the given densities.

        Raises CalibrationError for a material the calibration does not know.
        """
        rho = np.asarray(density_g_cm3, dtype=np.float64)
        for row in self.rows:
            if row.material == material and row.material != MIXTURE:
                hu0 = self._hu0(material)
                if row.density_rule == "nominal":
                    return np.full(rho.shape, hu0)
                rho0 = get_material(material).density_g_cm3
                return (1000.0 + hu0) * rho / rho0 - 1000.0
        digits = material.removeprefix("breast_g")
        if material.startswith("breast_g") and digits.isdigit() and self.has_mixture:
            fraction = int(digits) / 100.0
            return np.full(rho.shape, float(self.mixture_hu(fraction)))
        if material.startswith("balloon_c") and self.effective_energy_kev is not None:
            # A balloon fill with contrast is never read back from HU (it is placed from the
            # balloon's contour); its CT number follows the file's own rule for hu_nominal.
            return np.full(rho.shape, composition_hu(material, self.effective_energy_kev))
        raise self._fail(f"no CT number for material {material!r}; add a row for it")

    # -- import: HU -> material, density ---------------------------------------------------------
    def material_density(self, material: str, hu: NDArray[np.float64]) -> NDArray[np.float64]:
        """Densities of voxels of a (non-family) material from their HU, by its density rule."""
        rho0 = get_material(material).density_g_cm3
        if self._row(material).density_rule == "nominal":
            return np.full(hu.shape, rho0)
        return rho0 * np.maximum(1000.0 + hu, 0.0) / (1000.0 + self._hu0(material))

    def assign(
        self, hu: NDArray[np.float64]
    ) -> tuple[NDArray[np.int32], list[str], NDArray[np.float32]]:
        """(material code per voxel, material names indexed by code, density in g/cm3)."""
        binned = self.binned_rows
        edges = np.array([r.hu_min for r in binned], dtype=np.float64)
        which = np.searchsorted(edges, hu, side="right") - 1
        names: list[str] = []
        codes = np.zeros(hu.shape, dtype=np.int32)
        density = np.zeros(hu.shape, dtype=np.float64)

        def code_of(name: str) -> int:
            if name not in names:
                names.append(name)
            return names.index(name)

        def proportional(sel: NDArray[np.bool_], name: str) -> None:
            density[sel] = self.material_density(name, hu[sel])
            codes[sel] = code_of(name)

        for i, row in enumerate(binned):
            sel = which == i
            if not sel.any():
                continue
            if row.material != MIXTURE:
                proportional(sel, row.material)
                continue
            fraction = self.mixture_fraction(hu[sel])
            percent = np.rint(fraction * 100.0).astype(np.int64)
            sub = np.flatnonzero(sel.ravel())
            for end, name in ((percent <= 0, "adipose"), (percent >= 100, "gland")):
                if end.any():
                    mask = np.zeros(hu.size, dtype=bool)
                    mask[sub[end]] = True
                    proportional(mask.reshape(hu.shape), name)
            inner = (percent > 0) & (percent < 100)
            for pct in np.unique(percent[inner]):
                name = f"breast_g{int(pct):02d}"
                idx = sub[inner & (percent == pct)]
                codes.ravel()[idx] = code_of(name)
                density.ravel()[idx] = get_material(name).density_g_cm3
        return codes, names, density.astype(np.float32)


def _parse_float(text: str, source: str, row: int, column: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise CalibrationError(
            f"HU calibration {source}: row {row}: {column} {text!r} is not a number"
        ) from exc


def load_calibration(path: str | Path | None = None) -> HuCalibration:
    """Read an HU calibration CSV (the packaged default when ``path`` is None)."""
    if path is None:
        file = read_data("openiort.anatomy", "data/hu_calibration.csv")
        text = file.text
        source = "openiort/anatomy/data/hu_calibration.csv"
    else:
        try:
            file = read_path(path)
            text = file.text
        except (OSError, UnicodeDecodeError) as exc:
            raise CalibrationError(f"HU calibration {path}: cannot read ({exc})") from exc
        source = str(path)
    energy: float | None = None
    for line in text.splitlines():
        stripped = line.lstrip("# ").strip()
        if line.lstrip().startswith("#") and stripped.startswith("effective_energy_kev:"):
            energy = _parse_float(stripped.split(":", 1)[1], source, 0, "effective_energy_kev")
    required = {"material", "hu_min", "hu_nominal", "density_rule", "structure"}
    rows: list[CalibrationRow] = []
    for n, raw in enumerate(parse_commented_csv(text), start=1):
        if not required <= set(raw):
            raise CalibrationError(f"HU calibration {source}: columns must be {sorted(required)}")
        rows.append(
            CalibrationRow(
                material=raw["material"].strip(),
                hu_min=_parse_float(raw["hu_min"], source, n, "hu_min"),
                hu_nominal=_parse_float(raw["hu_nominal"], source, n, "hu_nominal"),
                density_rule=raw["density_rule"].strip(),
                structure=(raw["structure"] or "").strip() or None,
            )
        )
    return HuCalibration(
        rows=tuple(rows),
        source=source,
        sha256=file.sha256,
        effective_energy_kev=energy,
    )


def as_calibration(calibration: HuCalibration | str | Path | None) -> HuCalibration:
    """The calibration itself, or the one read from a CSV path (the packaged one for None)."""
    if isinstance(calibration, HuCalibration):
        return calibration
    return load_calibration(calibration)


def phantom_hu(
    phantom: Phantom, calibration: HuCalibration | str | Path | None = None
) -> NDArray[np.float64]:
    """CT numbers of every voxel of ``phantom`` through the calibration (for CT export)."""
    cal = as_calibration(calibration)
    hu = np.zeros(phantom.grid.shape, dtype=np.float64)
    for material_id in np.unique(phantom.material_ids):
        if int(material_id) >= len(phantom.materials):
            raise ValueError(f"material id {int(material_id)} has no name in phantom.materials")
        sel = phantom.material_ids == material_id
        hu[sel] = cal.material_hu(phantom.materials[int(material_id)], phantom.density_g_cm3[sel])
    return hu
