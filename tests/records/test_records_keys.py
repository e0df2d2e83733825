"""Seal keys live outside the data folder, are never made silently, and rotate: seals and
record events made with a retired key still verify, new ones use the new key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openiort.records import User, approve_plan, chain, review_plan, store_plan, verify_plan
from openiort.records.commands import key_app
from openiort.records.errors import SealKeyError
from openiort.records.seal import create_key, key_id, rotate_key, seal_key


@pytest.fixture
def key_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("OPENIORT_SEAL_KEY")
    monkeypatch.setenv("OPENIORT_KEY_DIR", str(tmp_path / "keys"))
    return tmp_path / "keys"


@pytest.fixture
def made_key(key_folder: Path) -> Path:
    create_key()
    return key_folder


def test_a_key_in_the_data_folder_is_refused_with_how_to_move_it(
    key_folder: Path, tmp_path: Path
) -> None:
    old = tmp_path / "data" / "seal.key"  # the default of earlier releases
    old.parent.mkdir(parents=True)
    old.write_text("ab" * 32 + "\n")
    old.chmod(0o600)
    with pytest.raises(SealKeyError, match="is in the data folder"):
        seal_key()


def test_key_init_refuses_the_data_folder_and_an_existing_key(
    monkeypatch: pytest.MonkeyPatch, key_folder: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENIORT_SEAL_KEY_FILE", str(tmp_path / "data" / "seal.key"))
    with pytest.raises(SealKeyError, match="would be in the data folder"):
        create_key()
    monkeypatch.delenv("OPENIORT_SEAL_KEY_FILE")
    runner = CliRunner()
    made = runner.invoke(key_app, ["init"])
    assert made.exit_code == 0 and "back it up" in made.output
    again = runner.invoke(key_app, ["init"])
    assert again.exit_code == 2 and "exists already" in again.output
    shown = runner.invoke(key_app, ["show"])
    assert key_id(seal_key()) in shown.output
    assert str(key_folder / "chain-heads.json") in shown.output


def test_rotation_keeps_old_seals_and_events_verifiable(
    made_key: Path, session: Session, users: dict[str, User], case_id: int, make_plan_json: object
) -> None:
    key_folder = made_key
    first = key_id(seal_key())
    plan = store_plan(session, users["phys"], case_id, make_plan_json())  # type: ignore[operator]
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    old, new = rotate_key()
    assert old == first and new != first and key_id(seal_key()) == new
    assert (key_folder / "retired" / f"{first}.key").is_file()
    session.expire_all()
    verify_plan(plan)  # sealed with the retired key
    assert plan.seal_key_id == first
    # New events are signed with the new key; the chain holds both and verifies.
    second = store_plan(session, users["phys"], case_id, make_plan_json())  # type: ignore[operator]
    session.commit()
    patient = plan.case.patient_id
    assert [r.problems for r in chain.verify(session, patient_id=patient)] == [[]]
    assert second.id != plan.id
    # Without the retired key the old seal cannot be verified (and says which key it needs).
    for path in (key_folder / "retired").iterdir():
        path.unlink()
    session.expire_all()
    with pytest.raises(Exception, match=f"key id {first}"):
        verify_plan(plan)
    (report,) = chain.verify(session, patient_id=patient)
    assert f"key id {first}" in report.problems[0]
