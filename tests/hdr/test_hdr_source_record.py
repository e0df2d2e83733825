"""The department's HDR source record: loading, refusals, decay, and a department-added model."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from openiort.datafiles import write_manifest
from openiort.delivery import DeviceDataRef, HdrDelivery, HdrDwell
from openiort.devices.hdr import load_source
from openiort.devices.hdr_source import (
    HdrSourceRecordError,
    decay_table,
    load_hdr_source_record,
)
from openiort.session import make_session, session_console_values, source_now

REPO = Path(__file__).resolve().parents[2]
RECORD = REPO / "tests/data/department_hdr_source/source.yaml"
TG43 = REPO / "src/openiort/devices/data/tg43"
# ICRP Publication 107 (Eckerman & Endo, Ann ICRP 2008;38(3)): Ir-192 half-life 73.827 d.
ICRP107_HALF_LIFE_D = 73.827


def _record_folder(tmp_path: Path, **changes: object) -> Path:
    """A copy of the test record with ``changes`` applied, and its manifest."""
    folder = tmp_path / "record"
    folder.mkdir()
    meta = yaml.safe_load(RECORD.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (folder / "source.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    write_manifest(folder, remake="test")
    return folder / "source.yaml"


def test_the_record_loads_with_its_certificate_and_check() -> None:
    record = load_hdr_source_record(RECORD)
    assert record.afterloader_name == "TEST AFTERLOADER"
    assert record.source_model == "GammaMed_HDR_Plus"
    assert record.source_serial == "TEST-IR-0001"
    assert record.certificate_sk_u == 40700.0
    assert record.certificate_reference_utc == dt.datetime(2026, 11, 2, 11, 0, tzinfo=dt.UTC)
    # 40620 / 40700 - 1, exact arithmetic on the record's numbers
    assert record.well_chamber_deviation_percent == pytest.approx(-0.19656, abs=1e-5)
    assert record.warnings() == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"source_model": "Unknown_Source"}, "has no TG-43 data in openiort"),
        (
            {"certificate": {"air_kerma_strength_u": 40700, "reference": "2099-01-01T12:00+00:00"}},
            "is in the future",
        ),
        (
            {"certificate": {"air_kerma_strength_u": 40700, "reference": "2026-11-02T12:00"}},
            "give the time zone",
        ),
        ({"well_chamber": {"measured_u": 43000}}, "beyond 5 %"),
        ({"afterloader_serial": None}, "afterloader_serial is required"),
        (
            {"certificate": {"air_kerma_strength_u": -1, "reference": "2026-11-02T12:00+00:00"}},
            "positive",
        ),
    ],
)
def test_a_bad_record_is_refused_with_a_clear_line(
    tmp_path: Path, changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(HdrSourceRecordError) as err:
        load_hdr_source_record(_record_folder(tmp_path, **changes))
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_a_record_without_manifest_or_edited_after_review_is_refused(tmp_path: Path) -> None:
    path = _record_folder(tmp_path)
    path.write_text(path.read_text().replace("40620", "40600"))
    with pytest.raises(HdrSourceRecordError, match="manifest"):
        load_hdr_source_record(path)
    (path.parent / "manifest_sha256.csv").unlink()
    with pytest.raises(HdrSourceRecordError, match=r"no manifest_sha256\.csv"):
        load_hdr_source_record(path)


def test_a_well_chamber_difference_above_3_percent_warns(tmp_path: Path) -> None:
    record = load_hdr_source_record(_record_folder(tmp_path, well_chamber={"measured_u": 42000}))
    assert "differs from the certificate by +3.19 %" in record.warnings()[0]


def test_decay_across_a_daylight_saving_change_matches_a_certificate_table() -> None:
    """Certificate decay table made here from the ICRP-107 half-life, at local wall-clock times
    in Europe/Berlin across the change of 29 March 2026 (02:00 CET -> 03:00 CEST): the day
    from 28 March 12:00 to 29 March 12:00 local is 23 h long."""
    berlin = ZoneInfo("Europe/Berlin")
    reference = dt.datetime(2026, 3, 20, 12, 0, tzinfo=berlin)
    sk = 40700.0
    times = [
        dt.datetime(2026, 3, d, h, 0, tzinfo=berlin)
        for d, h in ((28, 12), (29, 1), (29, 12), (30, 12))
    ]
    # 30 days (720 h) after the reference: 13:00 summer time on the wall clock
    times.append((reference.astimezone(dt.UTC) + dt.timedelta(days=30)).astimezone(berlin))
    table = {}
    for t in times:
        hours = (t.astimezone(dt.UTC) - reference.astimezone(dt.UTC)).total_seconds() / 3600.0
        table[t] = sk * 2.0 ** (-hours / 24.0 / ICRP107_HALF_LIFE_D)
    # the wall-clock day over the change is 23 real hours
    day = times[2].astimezone(dt.UTC) - times[0].astimezone(dt.UTC)
    assert day == dt.timedelta(hours=23)
    computed = dict(decay_table(sk, reference.astimezone(dt.UTC), times))
    delivery = HdrDelivery(
        device=DeviceDataRef(name="test", status="department", sha256="0" * 64),
        source_id="GammaMed_HDR_Plus",
        applicator="balloon",
        air_kerma_strength_u=sk,
        strength_reference_utc=reference.astimezone(dt.UTC).isoformat(),
        prescription_gy=3.4,
        dwells=(HdrDwell(channel=1, position_mm=(0, 0, 0), direction=(0, 0, 1), time_s=100.0),),
    )
    for t, expected in table.items():
        assert computed[t] == pytest.approx(expected, rel=1e-6)
        values = session_console_values(delivery, make_session(t))
        assert values.strength_today_u == pytest.approx(expected, rel=1e-6)
        assert values.settings[0].today == pytest.approx(100.0 * sk / expected, rel=1e-6)
    # 30 days after the reference: times longer by 2^(30/73.827) = 1.325333...
    factor = 2.0 ** (30.0 / ICRP107_HALF_LIFE_D)
    assert table[times[-1]] == pytest.approx(sk / factor, rel=1e-6)
    assert factor == pytest.approx(1.325333, abs=1e-6)


def _department_model_folder(tmp_path: Path, broken: bool = False) -> Path:
    folder = tmp_path / "dept_model"
    folder.mkdir()
    shutil.copy(TG43 / "mhdr_v2r_estro_F.csv", folder / "model_F.csv")
    gl = (TG43 / "mhdr_v2r_estro_gL.csv").read_text()
    if broken:
        gl = gl.replace("\n1,1.0\n", "\n1,1.05\n")
    (folder / "model_gL.csv").write_text(gl)
    meta = yaml.safe_load(RECORD.read_text())
    meta["source_model"] = "Dept_mHDR"
    meta["tg43_model"] = {
        "id": "Dept_mHDR",
        "title": "department-added microSelectron-type model",
        "citation": "Granero D et al. Med Phys 2011;38:487 (as entered by the department)",
        "dose_rate_constant_cgy_h_u": 1.109,
        "active_length_cm": 0.35,
        "gL_csv": "model_gL.csv",
        "F_csv": "model_F.csv",
    }
    (folder / "source.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    write_manifest(folder, remake="test")
    return folder / "source.yaml"


def test_a_department_added_model_is_validated_and_used(tmp_path: Path) -> None:
    record = load_hdr_source_record(_department_model_folder(tmp_path))
    assert record.department_model
    source = load_source(record.source_model)
    assert source.source_id.startswith("department:Dept_mHDR:")
    assert source.dose_rate_constant_cgy_h_u == 1.109
    assert source.reference.startswith("Granero")
    shipped = load_source("mHDR_v2r_ESTRO")
    assert source.gl == pytest.approx(shipped.gl)


def test_a_department_model_off_the_tg43_normalisation_is_refused(tmp_path: Path) -> None:
    assert "\n1,1.0\n" in (TG43 / "mhdr_v2r_estro_gL.csv").read_text()
    with pytest.raises(HdrSourceRecordError, match=r"g_L\(1 cm\) must be 1"):
        load_hdr_source_record(_department_model_folder(tmp_path, broken=True))


def test_decay_factor_uses_the_icrp_half_life() -> None:
    from openiort.devices.hdr import ir192_half_life_d

    assert ir192_half_life_d() == ICRP107_HALF_LIFE_D
    assert math.isclose(2.0 ** (-1.0), 0.5)


def test_a_source_exchange_rescales_the_fractions_after_it(tmp_path: Path) -> None:
    """The plan was made with source TEST-IR-0001 (40700 U on 2 Nov); the exchanged source's
    record (41200 U on 30 Nov 11:00 UTC) gives the times from 2 Dec 11:00 UTC on: planned time
    x 40700 / (41200 x 2^(-2/73.827))."""
    new = _record_folder(
        tmp_path,
        source_serial="TEST-IR-0002",
        certificate={"air_kerma_strength_u": 41200, "reference": "2026-11-30T12:00:00+01:00"},
    )
    record = load_hdr_source_record(new)
    delivery = HdrDelivery(
        device=DeviceDataRef(
            name="test", status="department", serial="TEST-IR-0001", sha256="0" * 64
        ),
        source_id="GammaMed_HDR_Plus",
        applicator="balloon",
        air_kerma_strength_u=40700.0,
        strength_reference_utc="2026-11-02T11:00:00+00:00",
        prescription_gy=3.4,
        dwells=(HdrDwell(channel=1, position_mm=(0, 0, 0), direction=(0, 0, 1), time_s=100.0),),
    )
    at = dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)
    values = session_console_values(delivery, make_session(at), source_now(record))
    today_u = 41200.0 * 2.0 ** (-2.0 / ICRP107_HALF_LIFE_D)
    assert values.strength_today_u == pytest.approx(today_u, rel=1e-9)
    assert values.settings[0].today == pytest.approx(100.0 * 40700.0 / today_u, rel=1e-9)
    assert "source exchanged" in values.warnings[0]
    # The plan's own source: the exchange factor is not applied.
    same = session_console_values(
        delivery, make_session(at), source_now(load_hdr_source_record(RECORD))
    )
    assert same.factors[0].name == "source decay"
