"""Report figures as inline SVG strings (self-contained HTML, no network)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import Dvh
from openiort.planning.engine_comparison import DifferenceSlice, DvhPair

STRUCTURE_COLOURS = {
    "target": "#d62728",
    "skin": "#8c564b",
    "breast": "#ff7f0e",
    "chest_wall": "#9467bd",
    "ribs": "#7f7f7f",
    "lung": "#17becf",
    "heart": "#e377c2",
    "applicator": "#2ca02c",
}


def svg_of(fig: Figure) -> str:
    """The figure as an inline SVG element (closes the figure)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def depth_dose_figure(
    depth_mm: list[float],
    water_gy: list[float],
    definition_gy: list[float] | None,
    definition: str | None,
    prescription_gy: float,
    depth_label: str = "depth from applicator surface (mm)",
    band: tuple[list[float], list[float]] | None = None,
) -> str:
    """``band``: depths (mm) and the relative uncertainty (%) of the dose there, drawn about
    the water curve."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    water_label = "dose to water (V4.0)" if definition in ("TARGIT", "V4.0") else "dose to water"
    ax.plot(depth_mm, water_gy, label=water_label, color="#1f77b4")
    if band is not None:
        rel = np.interp(depth_mm, band[0], band[1]) / 100.0
        water = np.asarray(water_gy)
        ax.fill_between(
            depth_mm,
            water * (1 - rel),
            water * (1 + rel),
            color="#1f77b4",
            alpha=0.2,
            label="depth-dose uncertainty band (estimate)",
        )
    if definition_gy is not None and definition and definition != "V4.0":
        ax.plot(
            depth_mm[: len(definition_gy)],
            definition_gy,
            label=f"{definition} definition",
            color="#d62728",
            ls="--",
        )
    ax.axhline(prescription_gy, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(depth_label)
    ax.set_ylabel("dose per session (Gy)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return svg_of(fig)


def dvh_figure(dvhs: dict[str, Dvh], max_dose_gy: float) -> str:
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for name, dvh in dvhs.items():
        dose, vol = dvh.curve(300, max_dose_gy)
        ax.plot(dose, vol, label=name, color=STRUCTURE_COLOURS.get(name))
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_xlim(0, max_dose_gy)
    ax.set_ylim(0, 102)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return svg_of(fig)


def dose_slices_figure(
    phantom: Phantom,
    dose: DoseGrid,
    isodoses_gy: tuple[float, ...],
    centre_mm: tuple[float, float, float],
) -> str:
    """Axial, coronal and sagittal slices through ``centre_mm`` with isodose lines over anatomy."""
    grid = phantom.grid
    iz, iy, ix = np.round(grid.position_to_index(np.array(centre_mm))).astype(int)
    z, y, x = grid.axes_mm()
    # Only tissue is drawn: no isodose lines inside the applicator or in the air around the body.
    air = phantom.material_ids == phantom.materials.index("air")
    shown = np.where(phantom.structures["applicator"] | air, np.nan, dose.dose_gy)
    anatomy_cmap = ListedColormap(
        ["#ffffff", "#f2e6d9", "#d9b38c", "#c99", "#eeeeee", "#cce6ff", "#f4c2c2", "#9c9"]
    )
    views = [
        (
            f"axial (z = {z[iz]:.0f} mm)",
            phantom.material_ids[iz],
            shown[iz],
            x,
            y,
            "x (mm, patient left +)",
            "y (mm, posterior +)",
            {k: m[iz] for k, m in phantom.structures.items()},
        ),
        (
            f"coronal (y = {y[iy]:.0f} mm)",
            phantom.material_ids[:, iy, :],
            shown[:, iy, :],
            x,
            z,
            "x (mm)",
            "z (mm, superior +)",
            {k: m[:, iy, :] for k, m in phantom.structures.items()},
        ),
        (
            f"sagittal (x = {x[ix]:.0f} mm)",
            phantom.material_ids[:, :, ix],
            shown[:, :, ix],
            y,
            z,
            "y (mm)",
            "z (mm)",
            {k: m[:, :, ix] for k, m in phantom.structures.items()},
        ),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    colours = matplotlib.colormaps["jet"](np.linspace(0.1, 0.95, len(isodoses_gy)))
    for ax, (title, mat, dslice, h, v, hl, vl, masks) in zip(axes, views, strict=True):
        extent = (h[0], h[-1], v[-1], v[0]) if vl.startswith("y") else (h[0], h[-1], v[0], v[-1])
        origin = "upper" if vl.startswith("y") else "lower"
        ax.imshow(
            mat,
            cmap=anatomy_cmap,
            vmin=0,
            vmax=7,
            extent=extent,
            origin=origin,
            interpolation="nearest",
        )
        for name in ("target", "skin", "heart", "ribs"):
            if name in masks and masks[name].any():
                ax.contour(
                    h,
                    v,
                    masks[name].astype(float),
                    levels=[0.5],
                    colors=[STRUCTURE_COLOURS[name]],
                    linewidths=0.8,
                )
        cs = ax.contour(
            h, v, np.nan_to_num(dslice), levels=sorted(isodoses_gy), colors=colours, linewidths=1.1
        )
        ax.clabel(cs, fmt="%g Gy", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(hl, fontsize=8)
        ax.set_ylabel(vl, fontsize=8)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    return svg_of(fig)


def comparison_difference_figure(diff: DifferenceSlice, plan: str, reference: str) -> str:
    """Map of (plan - reference) / reference on the axial slice of an engine comparison."""
    x, y = diff.x_mm, diff.y_mm
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    im = ax.imshow(
        diff.difference_pct,
        cmap="RdBu_r",
        vmin=-40,
        vmax=40,
        extent=(x[0], x[-1], y[-1], y[0]),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label=f"({plan} - {reference}) / {reference} (%)")
    ax.set_title(f"axial z = {diff.z_mm:.0f} mm: {plan} vs {reference}", fontsize=10)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm, posterior +)")
    return svg_of(fig)


def comparison_dvh_figure(
    pairs: tuple[DvhPair, ...], max_dose_gy: float, plan: str, reference: str
) -> str:
    """DVHs of the plan's engine (solid) and the compared engine (dashed), by structure."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for pair in pairs:
        colour = STRUCTURE_COLOURS.get(pair.structure)
        ax.plot(*pair.reference.curve(300, max_dose_gy), color=colour, ls="--", lw=1)
        ax.plot(*pair.plan.curve(300, max_dose_gy), color=colour, label=pair.structure)
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_title(f"solid: {plan}; dashed: {reference}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return svg_of(fig)
