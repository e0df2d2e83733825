"""CLI command of the kV Monte Carlo: ``iort commission`` (register with ``app.command("commission")``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from openiort.command_errors import input_error_exit
from openiort.dose.mc.commissioning import (
    bare_source_falloff_exponent,
    beam_quality_figures,
    default_calibration_path,
    default_table_path,
    dose_at_depth_for_targit_prescription,
    regenerate_depth_dose_table,
    surface_rate_check,
)
from openiort.dose.mc.runner import SimulationInterruptedError
from openiort.errors import OpenIortInputError

SUMMARY_DEPTHS_MM = (0.0, 5.0, 10.0, 20.0, 30.0)


def commission(
    histories: Annotated[int, typer.Option(help="Photon histories per applicator.")] = 4_000_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same table).")] = 20260101,
    out: Annotated[
        Path | None, typer.Option(help="Depth-dose table to write (default: the package table).")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="MC calibration file to write (default: the package file).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local threads (default: all cores).")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Regenerate the 50 kV applicators' water depth-dose table with the Monte Carlo.

    Writes the table the table engine reads and the Monte Carlo's own calibration, then prints
    the curves at 0, 5, 10, 20 and 30 mm and how they compare with the published figures.
    """
    console = Console()
    table_path = out or default_table_path()
    calib_path = calibration or default_calibration_path()
    try:
        curves = regenerate_depth_dose_table(
            histories,
            seed,
            table_path,
            calibration_path=calib_path,
            workers=workers,
            progress=progress,
            scheduler_address=scheduler,
        )
    except SimulationInterruptedError as exc:
        console.print(f"[yellow]{exc}[/yellow]; the existing tables were left unchanged.")
        raise typer.Exit(code=130) from None
    except OpenIortInputError as exc:
        raise input_error_exit(exc) from None

    t = Table(title="Relative dose to water (1.0 at the applicator surface)")
    t.add_column("applicator (cm)")
    for d in SUMMARY_DEPTHS_MM:
        t.add_column(f"{d:g} mm", justify="right")
    t.add_column("Gy at 10 mm for 20 Gy TARGIT", justify="right")
    for c in curves:
        rel = [float(np.interp(d, c.depth_mm, c.relative)) for d in SUMMARY_DEPTHS_MM]
        t.add_row(
            f"{c.diameter_cm:g}",
            *[f"{r:.3f}" for r in rel],
            f"{dose_at_depth_for_targit_prescription(c, 10.0):.1f}",
        )
    console.print(t)
    checks = surface_rate_check(curves)
    console.print(
        "Surface dose relative to the 3.0 cm applicator, model / TG-292 V4.0: "
        + ", ".join(f"{s.diameter_cm:g} cm {s.ratio:.3f}" for s in checks)
    )
    q = beam_quality_figures()
    console.print(
        "Primary beam (narrow-beam): HVL "
        + ", ".join(
            f"{q[f'hvl_mm_al_after_{d}mm_water']:.2f} mm Al after {d} mm water" for d in (0, 10, 20)
        )
        + "; mean energy "
        + ", ".join(
            f"{q[f'mean_energy_kev_after_{d}mm_water']:.1f} keV after {d} mm" for d in (0, 5, 10)
        )
    )
    exponent = bare_source_falloff_exponent(max(histories // 4, 10_000), seed + 99)
    console.print(
        f"Bare source in water, 5-35 mm: dose ~ r^-{exponent:.2f} (published: about r^-3)"
    )
    console.print(f"Wrote {table_path} and {calib_path}")
