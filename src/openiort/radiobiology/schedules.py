"""Library of reference breast schedules (data/schedules.csv) and their BED/EQD2 per tissue."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from openiort.radiobiology import _validate
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.inputs import LQ, RBE_ONE, ModelChoice, Rbe, Timing
from openiort.radiobiology.lq import reference_bed_per_gy
from openiort.radiobiology.parameters import (
    ParameterRecord,
    Tissue,
    data_rows,
    get_tissue,
)
from openiort.radiobiology.repopulation import weekday_overall_time_days
from openiort.radiobiology.response import TissueResponse, tissue_response

NOMINAL_TARGIT_DOSE_GY = 20.0  # TARGIT-A prescription at the applicator surface (Vaidya 2010)


@dataclass(frozen=True)
class Schedule:
    """A fractionation schedule, or a regimen made of schedules given one after another."""

    schedule_id: str
    short_label: str
    label: str
    role: str
    technique: str
    total_dose_gy: float | None
    n_fractions: int | None
    overall_time_days: float | None
    delivery_time_min: float | None
    dose_definition: str
    prescription_point: str
    components: tuple[str, ...]
    status: str
    source: str

    @property
    def is_composite(self) -> bool:
        return bool(self.components)

    @property
    def dose_per_fraction_gy(self) -> float | None:
        if self.total_dose_gy is None or self.n_fractions is None:
            return None
        return self.total_dose_gy / self.n_fractions

    def to_dict(self) -> dict[str, object]:
        return {
            "schedule_id": self.schedule_id,
            "short_label": self.short_label,
            "label": self.label,
            "role": self.role,
            "technique": self.technique,
            "total_dose_gy": self.total_dose_gy,
            "n_fractions": self.n_fractions,
            "overall_time_days": self.overall_time_days,
            "delivery_time_min": self.delivery_time_min,
            "dose_definition": self.dose_definition,
            "prescription_point": self.prescription_point,
            "components": list(self.components),
            "status": self.status,
            "source": self.source,
        }


def _opt(text: str) -> float | None:
    return float(text) if text.strip() else None


@cache
def schedule_library() -> dict[str, Schedule]:
    """All schedules of data/schedules.csv by id."""
    lib: dict[str, Schedule] = {}
    for row in data_rows("schedules.csv"):
        n = _opt(row["n_fractions"])
        lib[row["schedule_id"]] = Schedule(
            schedule_id=row["schedule_id"],
            short_label=row["short_label"],
            label=row["label"],
            role=row["role"],
            technique=row["technique"],
            total_dose_gy=_opt(row["total_dose_gy"]),
            n_fractions=int(n) if n is not None else None,
            overall_time_days=_opt(row["overall_time_days"]),
            delivery_time_min=_opt(row["delivery_time_min"]),
            dose_definition=row["dose_definition"],
            prescription_point=row["prescription_point"],
            components=tuple(c for c in row["components"].split(";") if c.strip()),
            status=row["status"],
            source=row["source"],
        )
    for s in lib.values():
        for c in s.components:
            if c not in lib or lib[c].is_composite:
                raise RadiobiologyError(f"schedules.csv: {s.schedule_id} has bad component {c}")
    return lib


def get_schedule(schedule_id: str | Schedule) -> Schedule:
    """A schedule by id (case-insensitive)."""
    if isinstance(schedule_id, Schedule):
        return schedule_id
    for sid, s in schedule_library().items():
        if sid.lower() == schedule_id.strip().lower():
            return s
    raise RadiobiologyError(
        f"unknown schedule {schedule_id!r}; known: {', '.join(schedule_library())}"
    )


def custom_schedule(
    total_dose_gy: float,
    n_fractions: int,
    *,
    overall_time_days: float | None = None,
    delivery_time_min: float = 0.0,
    technique: str = "unspecified",
    label: str | None = None,
) -> Schedule:
    """A user schedule of dose to water; overall time by the weekday convention if not given."""
    dose = _validate.non_negative(total_dose_gy, "total_dose_gy", "Gy")
    n = _validate.n_fractions(n_fractions)
    t = (
        weekday_overall_time_days(n)
        if overall_time_days is None
        else _validate.non_negative(overall_time_days, "overall_time_days", "d")
    )
    return Schedule(
        schedule_id="custom",
        short_label=f"{dose:g} Gy/{n}",
        label=label or f"{dose:g} Gy in {n} fraction{'s' if n > 1 else ''}",
        role="custom",
        technique=technique,
        total_dose_gy=dose,
        n_fractions=n,
        overall_time_days=float(t),
        delivery_time_min=_validate.non_negative(delivery_time_min, "delivery_time_min", "min"),
        dose_definition="water",
        prescription_point="user",
        components=(),
        status="USER",
        source="user input",
    )


@dataclass(frozen=True)
class TargitConversion:
    """Nominal TARGIT surface dose turned into dose to water (V4.0) for one applicator."""

    applicator_diameter_cm: float
    ratio_v40_over_targit: float
    dose_water_gy: float
    delivery_time_min: float
    records: tuple[ParameterRecord, ...]


@cache
def _targit_rates() -> dict[float, tuple[float, float, str]]:
    return {
        float(r["applicator_diameter_cm"]): (
            float(r["surface_dose_rate_v40_gy_per_min"]),
            float(r["surface_dose_rate_targit_gy_per_min"]),
            r["source"],
        )
        for r in data_rows("targit_surface_dose_rates.csv")
    }


def targit_to_water(
    applicator_diameter_cm: float, nominal_dose_gy: float = NOMINAL_TARGIT_DOSE_GY
) -> TargitConversion:
    """Dose to water at the applicator surface and beam-on time for a nominal TARGIT dose.

    Uses the surface dose rates of ONE example source (AAPM TG-292 Table IV): the ratio
    V4.0/TARGIT and 20 Gy / TARGIT rate hold for that source only.
    """
    rates = _targit_rates()
    key = _validate.positive(applicator_diameter_cm, "applicator_diameter_cm", "cm")
    match = [d for d in rates if abs(d - key) < 1e-6]
    if not match:
        raise RadiobiologyError(
            f"no TARGIT/V4.0 surface data for a {key:g} cm applicator; known: "
            f"{', '.join(f'{d:g}' for d in sorted(rates))} cm"
        )
    v40, targit, src = rates[match[0]]
    nominal = _validate.positive(nominal_dose_gy, "nominal_dose_gy", "Gy")
    ratio = v40 / targit
    status = "DERIVED from TG-292 Table IV (one example source)"
    records = (
        ParameterRecord(
            "nominal TARGIT surface dose", nominal, "Gy", "TARGIT-A protocol", "VERIFIED"
        ),
        ParameterRecord(
            f"V4.0/TARGIT surface dose ratio ({key:g} cm applicator)",
            round(ratio, 4),
            "",
            src,
            status,
        ),
        ParameterRecord(
            "surface dose to water (V4.0)", round(nominal * ratio, 3), "Gy", src, status
        ),
        ParameterRecord(
            "beam-on time (nominal dose / TARGIT surface rate)",
            round(nominal / targit, 2),
            "min",
            src,
            status,
        ),
    )
    return TargitConversion(key, ratio, nominal * ratio, nominal / targit, records)


@dataclass(frozen=True)
class ScheduleResult:
    """BED and EQD2 of a schedule for one tissue."""

    schedule: Schedule
    tissue: Tissue
    total_dose_water_gy: float
    n_fractions: int
    bed_gy: float
    eqd2_gy: float
    protraction_factor: float
    overall_time_days: float
    reference_bed_per_gy: float
    parameters: tuple[ParameterRecord, ...]
    warnings: tuple[str, ...]
    components: tuple[ScheduleResult, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "schedule": self.schedule.to_dict(),
            "tissue_id": self.tissue.tissue_id,
            "tissue": self.tissue.label,
            "kind": self.tissue.kind,
            "total_dose_water_gy": self.total_dose_water_gy,
            "n_fractions": self.n_fractions,
            "bed_gy": self.bed_gy,
            "eqd2_gy": self.eqd2_gy,
            "protraction_factor": self.protraction_factor,
            "overall_time_days": self.overall_time_days,
            "parameters": [p.to_dict() for p in self.parameters],
            "warnings": list(self.warnings),
            "components": [c.to_dict() for c in self.components],
        }


def evaluate_schedule(
    schedule: str | Schedule,
    tissue: str | Tissue,
    *,
    model: ModelChoice = LQ,
    rbe: Rbe = RBE_ONE,
    repopulation: bool = False,
    applicator_diameter_cm: float | None = None,
    dose_water_gy: float | None = None,
    delivery_time_min: float | None = None,
    overall_time_days: float | None = None,
) -> ScheduleResult:
    """BED and EQD2 of a library or custom schedule for ``tissue``.

    Parameters
    ----------
    schedule, tissue:
        Ids (or objects) from the schedule and tissue libraries.
    model, rbe:
        As in :func:`~openiort.radiobiology.response.tissue_response`.
    repopulation:
        Subtract the tissue's repopulation over the overall time (tumours).
    applicator_diameter_cm:
        For the TARGIT schedule: converts its nominal 20 Gy into dose to water and gives the
        beam-on time (one example source, TG-292).
    dose_water_gy, delivery_time_min, overall_time_days:
        Override the schedule's total dose to water, beam-on time per fraction and overall
        time (e.g. with a plan's own numbers).
    """
    s = get_schedule(schedule)
    t = get_tissue(tissue)
    if s.is_composite:
        if dose_water_gy is not None or delivery_time_min is not None:
            raise RadiobiologyError(
                f"{s.schedule_id} is a regimen of several schedules; evaluate its components "
                "to override their doses or times"
            )
        return _evaluate_composite(s, t, model, rbe, repopulation, overall_time_days)
    assert s.total_dose_gy is not None and s.n_fractions is not None
    records: list[ParameterRecord] = [ParameterRecord("schedule", s.label, "", s.source, s.status)]
    warnings: list[str] = []
    dose = s.total_dose_gy
    t_min = s.delivery_time_min
    if dose_water_gy is not None:
        dose = _validate.non_negative(dose_water_gy, "dose_water_gy", "Gy")
        records.append(ParameterRecord("dose to water (given)", dose, "Gy", "user input", "USER"))
    elif s.dose_definition.upper() == "TARGIT":
        if applicator_diameter_cm is None:
            raise RadiobiologyError(
                f"{s.label}: the {s.total_dose_gy:g} Gy is a nominal dose in the TARGIT "
                "definition, not a dose to water; give the applicator diameter "
                "(applicator_diameter_cm, --applicator-cm: converts with the TG-292 surface "
                "data of one example source) or a dose to water (dose_water_gy, --dose-gy)"
            )
        conv = targit_to_water(applicator_diameter_cm, s.total_dose_gy)
        dose = conv.dose_water_gy
        records.extend(conv.records)
        if t_min is None and delivery_time_min is None:
            t_min = conv.delivery_time_min
    if delivery_time_min is not None:
        t_min = _validate.non_negative(delivery_time_min, "delivery_time_min", "min")
    if t_min is None:
        if s.technique == "xray_iort":
            raise RadiobiologyError(
                f"{s.label}: give the beam-on time (delivery_time_min, --delivery-time-min); it "
                "depends on the applicator and the source"
            )
        t_min = 0.0
    t_days = s.overall_time_days if overall_time_days is None else overall_time_days
    if t_days is None:
        t_days = float(weekday_overall_time_days(s.n_fractions))
    timing = Timing(s.n_fractions, t_min, t_days)
    resp = tissue_response(dose, t, timing, model=model, rbe=rbe, repopulation=repopulation)
    return _result(s, t, dose, s.n_fractions, resp, t_days, records, warnings)


def _result(
    s: Schedule,
    t: Tissue,
    dose: float,
    n: int,
    resp: TissueResponse,
    t_days: float,
    records: list[ParameterRecord],
    warnings: list[str],
) -> ScheduleResult:
    return ScheduleResult(
        schedule=s,
        tissue=t,
        total_dose_water_gy=float(dose),
        n_fractions=n,
        bed_gy=float(resp.bed_gy),
        eqd2_gy=float(resp.eqd2_gy),
        protraction_factor=resp.protraction_factor,
        overall_time_days=float(t_days),
        reference_bed_per_gy=reference_bed_per_gy(resp.alpha_beta_gy, resp.transition_dose_gy),
        parameters=tuple(records) + resp.parameters,
        warnings=tuple(dict.fromkeys([*warnings, *resp.warnings, *_record_warnings(records)])),
    )


def _record_warnings(records: list[ParameterRecord]) -> list[str]:
    return [
        f"provisional: {r.describe()} [{r.status}; {r.source}]"
        for r in records
        if r.provisional and r.status not in ("USER", "DERIVED", "REGIMEN")
    ]


def _evaluate_composite(
    s: Schedule,
    t: Tissue,
    model: ModelChoice,
    rbe: Rbe,
    repopulation: bool,
    overall_time_days: float | None,
) -> ScheduleResult:
    parts = tuple(evaluate_schedule(c, t, model=model, rbe=rbe) for c in s.components)
    n_total = sum(p.n_fractions for p in parts)
    t_days = overall_time_days if overall_time_days is not None else s.overall_time_days
    if t_days is None:
        t_days = float(weekday_overall_time_days(n_total))
    bed_total = sum(p.bed_gy for p in parts)
    records = [ParameterRecord("regimen", s.label, "", s.source, "REGIMEN")]
    if repopulation:
        rp = t.repopulation
        if rp is None:
            raise RadiobiologyError(f"no repopulation parameters for {t.label}")
        bed_total = max(0.0, bed_total - rp.parameters.bed_loss_gy(t_days))
        records.append(ParameterRecord("overall time", float(t_days), "d", "schedule", "INPUT"))
        records.extend(rp.records())
    # every component uses the same tissue and model, so the same reference 2 Gy BED per Gy
    ref = parts[0].reference_bed_per_gy
    warnings = [w for p in parts for w in p.warnings]
    return ScheduleResult(
        schedule=s,
        tissue=t,
        total_dose_water_gy=sum(p.total_dose_water_gy for p in parts),
        n_fractions=n_total,
        bed_gy=bed_total,
        eqd2_gy=bed_total / ref,
        protraction_factor=min(p.protraction_factor for p in parts),
        overall_time_days=float(t_days),
        reference_bed_per_gy=ref,
        parameters=tuple(records) + tuple(r for p in parts for r in p.parameters),
        warnings=tuple(dict.fromkeys(warnings + _record_warnings(records))),
        components=parts,
    )
