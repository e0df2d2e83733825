"""Tissue, repair, repopulation and USC parameter sets from the package data files.

Every number comes from ``data/*.csv`` with its source and verification status; anything not
verified is carried as provisional and said so in every output that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from typing import Literal

from openiort.datafiles import read_data
from openiort.radiobiology import _validate
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.inputs import Repopulation, USCParameters

TissueKind = Literal["tumour", "late"]
DATA_FILES = (
    "tissues.csv",
    "repair.csv",
    "repopulation.csv",
    "usc_parameters.csv",
    "schedules.csv",
    "targit_surface_dose_rates.csv",
    "rbe_low_energy_xrays.csv",
)
_PROVISIONAL_TAGS = (
    "UNVERIFIED",
    "ASSUMED",
    "SECONDARY",
    "CONVENTION",
    "PARTLY",
    "RECALL",
    "ESTIMATE",
    "USER",
    "DERIVED",
)


def is_provisional(status: str) -> bool:
    """True unless the status says verified without a provisional qualifier."""
    s = status.upper()
    return not s.startswith("VERIFIED") or any(tag in s for tag in _PROVISIONAL_TAGS)


@dataclass(frozen=True)
class ParameterRecord:
    """One number used in a calculation, with where it comes from."""

    name: str
    value: float | str
    unit: str
    source: str
    status: str

    @property
    def provisional(self) -> bool:
        return is_provisional(self.status)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "status": self.status,
            "provisional": self.provisional,
        }

    def describe(self) -> str:
        value = f"{self.value:g}" if isinstance(self.value, float) else str(self.value)
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} = {value}{unit}"


@dataclass(frozen=True)
class RepairModel:
    repair_id: str
    half_times_h: tuple[float, ...]
    weights: tuple[float, ...]
    range_h: tuple[float, float] | None
    context: str
    status: str
    source: str

    def records(self) -> list[ParameterRecord]:
        out = []
        for i, (t, w) in enumerate(zip(self.half_times_h, self.weights, strict=True), 1):
            label = "repair half-time" if len(self.half_times_h) == 1 else f"repair half-time {i}"
            out.append(ParameterRecord(label, t, "h", self.source, self.status))
            if len(self.half_times_h) > 1:
                out.append(ParameterRecord(f"repair weight {i}", w, "", self.source, self.status))
        return out


@dataclass(frozen=True)
class RepopulationSet:
    """Published repopulation parameters of a tumour with their provenance."""

    repopulation_id: str
    parameters: Repopulation
    kickoff_status: str
    status: str
    source: str

    def records(self) -> list[ParameterRecord]:
        p = self.parameters
        return [
            ParameterRecord(
                "alpha (repopulation)", p.alpha_per_gy, "1/Gy", self.source, self.status
            ),
            ParameterRecord(
                "potential doubling time", p.doubling_time_days, "d", self.source, self.status
            ),
            ParameterRecord(
                "kick-off time", p.kickoff_time_days, "d", self.source, self.kickoff_status
            ),
        ]


@dataclass(frozen=True)
class Tissue:
    """A tissue's LQ parameters with its repair and (tumours) repopulation parameters."""

    tissue_id: str
    kind: TissueKind
    label: str
    alpha_beta_gy: float
    ci95_gy: tuple[float, float] | None
    endpoint: str
    repair: RepairModel
    repopulation: RepopulationSet | None
    status: str
    source: str
    default_for: str = ""

    def alpha_beta_record(self) -> ParameterRecord:
        return ParameterRecord("alpha/beta", self.alpha_beta_gy, "Gy", self.source, self.status)


@dataclass(frozen=True)
class USCSet:
    """A published USC parameter set with its provenance."""

    usc_id: str
    cell_line: str
    tissue_note: str
    parameters: USCParameters
    published_transition_dose_gy: float
    status: str
    source: str
    records: tuple[ParameterRecord, ...] = field(default=())

    @property
    def caveat(self) -> str:
        return f"USC parameters are for {self.cell_line} ({self.tissue_note}); {self.source}"


def data_rows(name: str) -> list[dict[str, str]]:
    """Rows of one radiobiology data CSV (``data/<name>``), checked against its manifest."""
    return read_data("openiort.radiobiology", f"data/{name}").rows()


def data_files_sha256() -> dict[str, str]:
    """SHA-256 of every radiobiology data file, recorded in results."""
    return {name: read_data("openiort.radiobiology", f"data/{name}").sha256 for name in DATA_FILES}


def _opt_float(text: str) -> float | None:
    return float(text) if text.strip() else None


@cache
def repair_library() -> dict[str, RepairModel]:
    lib: dict[str, RepairModel] = {}
    for row in data_rows("repair.csv"):
        halves = [float(row["half_time_1_h"])]
        weights = [float(row["weight_1"])]
        if row["half_time_2_h"].strip():
            halves.append(float(row["half_time_2_h"]))
            weights.append(float(row["weight_2"]))
        lo, hi = _opt_float(row["range_low_h"]), _opt_float(row["range_high_h"])
        lib[row["repair_id"]] = RepairModel(
            repair_id=row["repair_id"],
            half_times_h=tuple(halves),
            weights=tuple(weights),
            range_h=(lo, hi) if lo is not None and hi is not None else None,
            context=row["context"],
            status=row["status"],
            source=row["source"],
        )
    return lib


@cache
def repopulation_library() -> dict[str, RepopulationSet]:
    return {
        row["repopulation_id"]: RepopulationSet(
            repopulation_id=row["repopulation_id"],
            parameters=Repopulation(
                alpha_per_gy=float(row["alpha_per_gy"]),
                doubling_time_days=float(row["doubling_time_days"]),
                kickoff_time_days=float(row["kickoff_days"]),
            ),
            kickoff_status=row["kickoff_status"],
            status=row["status"],
            source=row["source"],
        )
        for row in data_rows("repopulation.csv")
    }


@cache
def tissue_library() -> dict[str, Tissue]:
    repairs, repops = repair_library(), repopulation_library()
    lib: dict[str, Tissue] = {}
    for row in data_rows("tissues.csv"):
        kind = row["kind"]
        if kind not in ("tumour", "late"):
            raise RadiobiologyError(f"tissues.csv: bad kind {kind!r} for {row['tissue_id']}")
        lo, hi = _opt_float(row["ci95_low_gy"]), _opt_float(row["ci95_high_gy"])
        repop_id = row["repopulation_id"].strip()
        lib[row["tissue_id"]] = Tissue(
            tissue_id=row["tissue_id"],
            kind=kind,  # type: ignore[arg-type]
            label=row["label"],
            alpha_beta_gy=float(row["alpha_beta_gy"]),
            ci95_gy=(lo, hi) if lo is not None and hi is not None else None,
            endpoint=row["endpoint"],
            repair=repairs[row["repair_id"]],
            repopulation=repops[repop_id] if repop_id else None,
            status=row["status"],
            source=row["source"],
            default_for=row["default_for"].strip(),
        )
    return lib


def default_tissue(kind: TissueKind) -> Tissue:
    """The library's default tumour or late-responding tissue."""
    for tissue in tissue_library().values():
        if tissue.default_for == kind:
            return tissue
    raise RadiobiologyError(f"no default {kind} tissue in tissues.csv")


_ALIASES = {"tumour": "tumour", "tumor": "tumour", "late": "late", "normal": "late"}


def get_tissue(tissue: str | Tissue) -> Tissue:
    """A Tissue by id (case-insensitive), ``"tumour"``/``"late"`` for the defaults."""
    if isinstance(tissue, Tissue):
        return tissue
    key = tissue.strip().lower()
    if key in _ALIASES:
        return default_tissue(_ALIASES[key])  # type: ignore[arg-type]
    for tissue_id, t in tissue_library().items():
        if tissue_id.lower() == key:
            return t
    raise RadiobiologyError(
        f"unknown tissue {tissue!r}; known: tumour, late, {', '.join(tissue_library())}"
    )


def custom_tissue(
    base: Tissue,
    *,
    alpha_beta_gy: float | None = None,
    repair_half_time_h: float | None = None,
) -> Tissue:
    """``base`` with a user alpha/beta and/or a user mono-exponential repair half-time.

    What the user does not give keeps its library value and source.
    """
    t = base
    if alpha_beta_gy is not None:
        ab = _validate.positive(alpha_beta_gy, "alpha_beta_gy", "Gy")
        t = replace(
            t,
            tissue_id=f"user_{t.kind}",
            label=f"user {t.kind} tissue",
            alpha_beta_gy=ab,
            ci95_gy=None,
            endpoint="given by the user",
            status="USER",
            source="user input",
            default_for="",
        )
    if repair_half_time_h is not None:
        half = _validate.positive(repair_half_time_h, "repair_half_time_h", "h")
        t = replace(
            t,
            repair=RepairModel(
                "user", (half,), (1.0,), None, "given by the user", "USER", "user input"
            ),
        )
    return t


@cache
def usc_library() -> dict[str, USCSet]:
    lib: dict[str, USCSet] = {}
    for row in data_rows("usc_parameters.csv"):
        params = USCParameters(float(row["alpha_per_gy"]), float(row["d0_gy"]), float(row["dq_gy"]))
        src, status = row["source"], row["status"]
        note = f"{row['cell_line']}, {row['tissue_note']}"
        records = (
            ParameterRecord(f"USC alpha ({note})", params.alpha_per_gy, "1/Gy", src, status),
            ParameterRecord(f"USC D0 ({note})", params.d0_gy, "Gy", src, status),
            ParameterRecord(f"USC Dq ({note})", params.dq_gy, "Gy", src, status),
            ParameterRecord(
                "USC transition dose 2Dq/(1-alpha D0)",
                round(params.transition_dose_gy, 3),
                "Gy",
                src,
                "DERIVED",
            ),
            ParameterRecord(
                "USC alpha/beta (implied)", round(params.alpha_beta_gy, 3), "Gy", src, "DERIVED"
            ),
        )
        lib[row["usc_id"]] = USCSet(
            usc_id=row["usc_id"],
            cell_line=row["cell_line"],
            tissue_note=row["tissue_note"],
            parameters=params,
            published_transition_dose_gy=float(row["transition_dose_gy"]),
            status=status,
            source=src,
            records=records,
        )
    return lib


def get_usc(usc: str | USCSet | None = None) -> USCSet:
    """A USC set by id; the only published set (H460 lung line) when None."""
    if isinstance(usc, USCSet):
        return usc
    lib = usc_library()
    if usc is None:
        return next(iter(lib.values()))
    if usc not in lib:
        raise RadiobiologyError(f"unknown USC parameter set {usc!r}; known: {', '.join(lib)}")
    return lib[usc]
