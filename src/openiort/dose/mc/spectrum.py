"""The 50 kV source spectrum: generated once with SpekPy, stored as a versioned CSV.

SpekPy (Poludniowski et al., Med Phys 2021;48:3630; v2.5) models thin *transmission* targets
of gold ("kqp" physics model), which is what the INTRABEAM-type source has (a thin gold target
on a beryllium thermal buffer, TG-292). The model parameters live in
data/xray50_source_model.yaml; :func:`regenerate_spectrum_csv` writes the CSV the engine reads,
so SpekPy is needed only to regenerate it.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort import __version__
from openiort.datafiles import data_folder, read_data, record_file
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]
MODEL_FILE = "data/xray50_source_model.yaml"


class SpectrumError(OpenIortInputError):
    """A missing, malformed or inconsistent source spectrum."""


@cache
def source_model() -> dict[str, Any]:
    """The source and applicator model parameters (data/xray50_source_model.yaml)."""
    model: dict[str, Any] = read_data("openiort.dose.mc", MODEL_FILE).yaml()
    return model


def spekpy_spectrum(model: dict[str, Any] | None = None) -> tuple[FloatArray, FloatArray]:
    """Bin edges (keV) and photon probabilities per bin from SpekPy for the source model."""
    try:
        import spekpy
    except ImportError as exc:  # pragma: no cover - spekpy is optional at run time
        raise SpectrumError("regenerating the spectrum needs the 'spekpy' package") from exc
    m = model or source_model()
    s = m["spectrum"]
    spek = spekpy.Spek(
        kvp=float(s["tube_voltage_kv"]),
        targ=str(s["target_material"]),
        trans=True,
        thick=float(s["target_thickness_um"]),
        th=float(s["emission_angle_deg"]),
        dk=float(s["bin_width_kev"]),
        physics=str(s["spekpy_physics"]),
    )
    for f in s["filters"]:
        spek.filter(str(f["material"]), float(f["thickness_mm"]))
    centres, fluence = spek.get_spectrum()
    half = float(s["bin_width_kev"]) / 2.0
    edges = np.concatenate((centres - half, [centres[-1] + half]))
    keep = edges[:-1] >= float(s["min_energy_kev"]) - 1e-9
    probs = np.asarray(fluence, dtype=np.float64)[keep]
    edges = edges[np.concatenate((keep, [True]))]
    return edges, probs / probs.sum()


def regenerate_spectrum_csv(path: str | Path | None = None) -> Path:
    """Write the SpekPy spectrum of the source model to the package's spectrum CSV."""
    m = source_model()
    out = (
        Path(path)
        if path is not None
        else data_folder("openiort.dose.mc", "data") / m["spectrum"]["csv"]
    )
    edges, probs = spekpy_spectrum(m)
    s = m["spectrum"]
    filters = ", ".join(f"{f['material']} {f['thickness_mm']} mm" for f in s["filters"])
    mean = float(np.sum(probs * 0.5 * (edges[1:] + edges[:-1])))
    lines = [
        "# Photon spectrum of the 50 kV miniature x-ray source (INTRABEAM-type), emitted at the probe tip.",
        f"# Generated {date.today().isoformat()} by openiort {__version__} (openiort.dose.mc.spectrum) with",
        "#   SpekPy v2 (Poludniowski G, Omar A, Bujila R, Andreo P. Med Phys 2021;48:3630-3637):",
        f"#   {s['tube_voltage_kv']} kV, {s['target_material']} transmission target "
        f"{s['target_thickness_um']} um, emission angle {s['emission_angle_deg']} deg, "
        f"physics '{s['spekpy_physics']}', filters: {filters}.",
        "#   Parameters and their sources: data/xray50_source_model.yaml.",
        f"# Probabilities of a photon in each bin (uniform within the bin); mean energy {mean:.2f} keV.",
        "bin_low_kev,bin_high_kev,probability",
    ]
    lines += [
        f"{lo:.3f},{hi:.3f},{p:.8e}" for lo, hi, p in zip(edges[:-1], edges[1:], probs, strict=True)
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    record_file(out)  # a package data file: its manifest records the new spectrum
    load_spectrum.cache_clear()
    return out


@cache
def load_spectrum() -> tuple[FloatArray, FloatArray, str]:
    """Stored spectrum: bin edges (keV), probabilities, and the file's SHA-256."""
    file = read_data("openiort.dose.mc", "data/" + source_model()["spectrum"]["csv"])
    rows = file.rows()
    if not rows:
        raise SpectrumError(f"source spectrum {file.name} has no rows")
    lo = np.array([float(r["bin_low_kev"]) for r in rows])
    hi = np.array([float(r["bin_high_kev"]) for r in rows])
    p = np.array([float(r["probability"]) for r in rows])
    if (
        np.any(np.abs(lo[1:] - hi[:-1]) > 1e-6)
        or np.any(hi <= lo)
        or np.any(p < 0)
        or abs(p.sum() - 1) > 1e-6
    ):
        raise SpectrumError(f"source spectrum {file.name} is not a contiguous normalised histogram")
    edges = np.concatenate((lo, [hi[-1]]))
    return edges, p, file.sha256
