"""HDR device data: provenance, manifest hashes, copies of the reference pack, decay."""

from __future__ import annotations

import csv
import hashlib
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from openiort.datafiles import parse_commented_csv
from openiort.devices import hdr

# In-repo copies of the project's literature reference pack (tests/reference_data/README.md):
# a missing file fails the tests below, it never skips them.
REFERENCE_TG43 = Path(__file__).resolve().parents[1] / "reference_data" / "tg43"


def test_manifest_matches_every_data_file() -> None:
    # Every data file is listed and its recorded SHA-256 is the file's; a data edit without a
    # manifest update must fail here (and at load).
    assert hdr.compute_manifest() == hdr.recorded_manifest()


def test_every_data_file_names_its_source() -> None:
    for name in hdr.data_file_names():
        head = hdr._checked_text(name).splitlines()[:12]
        assert head[0].startswith("#"), name
        text = "\n".join(head)
        assert any(w in text for w in ("Source", "source", "design choice")), name


def test_altered_data_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    original = hdr._read_bytes

    def tampered(name: str) -> bytes:
        data = original(name)
        return data.replace(b"1.1165", b"1.2165") if name == "sources.csv" else data

    hdr._checked_text.cache_clear()
    monkeypatch.setattr(hdr, "_read_bytes", tampered)
    try:
        with pytest.raises(hdr.HdrDataError, match=r"sources\.csv has SHA-256"):
            hdr._checked_text("sources.csv")
    finally:
        hdr._checked_text.cache_clear()


def test_source_data_sha256_is_defined_over_the_source_files() -> None:
    src = hdr.load_source("Varian_VS2000")
    h = hashlib.sha256()
    for name in ("sources.csv", "hebd_gL.csv", "hebd_F.csv", "ir192_decay.csv"):
        h.update(f"{name} {hdr.recorded_manifest()[name]}\n".encode())
    assert hdr.source_data_sha256("Varian_VS2000") == h.hexdigest() == src.data_sha256
    assert hdr.source_data_sha256("mHDR_v2r_ESTRO") != src.data_sha256


def _reference_rows(name: str) -> list[dict[str, str]]:
    with open(REFERENCE_TG43 / name, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "name",
    [
        "hebd_gL.csv",
        "hebd_F.csv",
        "hebd_QA_along_away.csv",
        "mhdr_v2_daskalov1998_gL.csv",
        "mhdr_v2_daskalov1998_F.csv",
        "mhdr_v2r_estro_gL.csv",
        "mhdr_v2r_estro_F.csv",
    ],
)
def test_package_tables_are_unchanged_copies_of_the_reference_pack(name: str) -> None:
    assert parse_commented_csv(hdr._checked_text(name)) == _reference_rows(name)


def test_source_registry_matches_the_reference_pack() -> None:
    ours = {r["source_id"]: r for r in parse_commented_csv(hdr._checked_text("sources.csv"))}
    for row in _reference_rows("hebd_sources.csv") + _reference_rows("mhdr_sources.csv"):
        mine = ours[row["source_id"]]
        assert mine["Lambda_cGy_per_h_per_U"] == row["Lambda_cGy_per_h_per_U"]
        assert mine["L_active_cm"] == row["L_active_cm"]
    assert len(ours) == 7


def test_source_status_and_notes() -> None:
    assert hdr.load_source("GammaMed_HDR_Plus").is_consensus
    assert hdr.load_source("mHDR_v2_Daskalov1998").status == "published"
    v2r = hdr.load_source("mHDR_v2r_ESTRO")
    assert v2r.status == "provisional"
    assert any("PROVISIONAL" in note for note in v2r.notes())


def test_missing_anisotropy_entries_are_filled_from_nearest_radius() -> None:
    # Daskalov 1998 has no F at r = 0.25 cm for theta >= 169 deg (11 entries); they take the
    # r = 0.5 cm value at the same angle.
    src = hdr.load_source("mHDR_v2_Daskalov1998")
    assert src.filled_f_entries == 11
    j = list(src.f_theta_deg).index(180.0)
    assert src.f_table[0, j] == src.f_table[1, j]
    assert np.all(np.isfinite(hdr.load_source("mHDR_v2r_ESTRO").f_table))


def test_unknown_source_id_lists_the_known_ones() -> None:
    with pytest.raises(hdr.UnknownSourceError, match="known sources: GammaMed_HDR_Plus"):
        hdr.load_source("microSelectron")
    with pytest.raises(hdr.UnknownSourceError):
        hdr.qa_along_away_table("nope")


def test_no_qa_table_for_sources_without_one() -> None:
    with pytest.raises(hdr.HdrDataError, match="no consensus along-away QA table"):
        hdr.qa_along_away_table("mHDR_v2r_ESTRO")


# ---------------------------------------------------------------------------------- decay


def test_ir192_half_life_from_icrp107() -> None:
    # Reference: ICRP Publication 107 (2008), Ir-192 T1/2 = 73.827 d (ir192_decay.csv header).
    assert hdr.ir192_half_life_d() == 73.827


def test_decay_halves_strength_after_one_half_life() -> None:
    # Definition of the half-life; tolerance 1e-12 (rounding).
    assert hdr.decay_factor(73.827) == pytest.approx(0.5, rel=1e-12)
    assert hdr.decay_factor(0.0) == 1.0
    # Independent reference: 30 days -> 2^(-30/73.827) = 0.754599... (hand computation).
    assert hdr.decay_factor(30.0) == pytest.approx(2 ** (-30 / 73.827), rel=1e-12)


def test_decayed_strength_between_dates_and_datetimes() -> None:
    cal = date(2026, 1, 1)
    assert hdr.decayed_air_kerma_strength_u(40000.0, cal, cal + timedelta(days=73.827)) == (
        pytest.approx(20000.0 * 2 ** (0.827 / 73.827), rel=1e-12)
    )
    t0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    sk = hdr.decayed_air_kerma_strength_u(40000.0, t0, t0 + timedelta(hours=12))
    assert sk == pytest.approx(40000.0 * 2 ** (-0.5 / 73.827), rel=1e-12)


def test_decay_bad_inputs() -> None:
    with pytest.raises(ValueError, match="positive"):
        hdr.decayed_air_kerma_strength_u(-1.0, date(2026, 1, 1), date(2026, 2, 1))
    with pytest.raises(ValueError, match="both be dates or both datetimes"):
        hdr.decayed_air_kerma_strength_u(1.0, date(2026, 1, 1), datetime(2026, 2, 1))
    with pytest.raises(ValueError, match="cannot compare"):
        hdr.decayed_air_kerma_strength_u(
            1.0, datetime(2026, 1, 1), datetime(2026, 2, 1, tzinfo=UTC)
        )
    with pytest.raises(ValueError, match="finite"):
        hdr.decay_factor(math.inf)
