"""Plans approved with the release before the typed deliveries still verify and still deliver.

tests/records/data/release-0.1.0.sqlite was made by make_release_database.py (beside it) with
the code of that release (commit cf4ebdd): one sealed plan per technique, the x-ray plan also
delivered. Their plan JSON has no typed ``delivery`` block; the records read their top-level
keys, and their seals were made with the test seal key of conftest.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from openiort.records import service
from openiort.records.db import (
    check_schema,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from openiort.records.delivery import remaining
from openiort.records.errors import SchemaError, TamperedPlanError
from openiort.records.models import Delivery, Plan
from openiort.records.plan_data import planned_delivery

RELEASE_DB = Path(__file__).parent / "data" / "release-0.1.0.sqlite"
RELEASE_REVISION = "0001"  # the schema the release made it with


@pytest.fixture
def release_db(tmp_path: Path) -> sa.Engine:
    """A copy of the release's database, upgraded to this version's schema (as an
    administrator does with ``iort db upgrade``)."""
    copy = tmp_path / "release.sqlite"
    shutil.copyfile(RELEASE_DB, copy)  # a missing file fails here, never skips
    engine = make_engine(f"sqlite:///{copy}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_release_database_upgrades_to_the_current_schema(tmp_path: Path) -> None:
    copy = tmp_path / "release.sqlite"
    shutil.copyfile(RELEASE_DB, copy)
    engine = make_engine(f"sqlite:///{copy}")
    try:
        assert current_revision(engine) == RELEASE_REVISION
        with pytest.raises(SchemaError, match="iort db upgrade"):
            check_schema(engine)  # the web app and the commands refuse it until upgraded
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        check_schema(engine)
        with Session(engine) as s:
            # The delivery recorded by the release keeps its values; it had no session of the day.
            (delivery,) = s.scalars(sa.select(Delivery)).all()
            assert delivery.treatment_session is None and delivery.session_scale is None
            assert delivery.plan.status == "delivered" and remaining(delivery.plan).complete
    finally:
        engine.dispose()


def test_plans_sealed_by_the_release_verify(release_db: sa.Engine) -> None:
    with Session(release_db) as s:
        plans = list(s.scalars(sa.select(Plan).order_by(Plan.id)))
        assert [(p.technique, p.status) for p in plans] == [
            ("xray", "delivered"),
            ("electron", "approved"),
            ("hdr", "approved"),
        ]
        assert all("delivery" not in p.plan_json for p in plans)  # made before typed deliveries
        assert service.verify_all_plans(s) == []
        for plan in plans:
            service.verify_plan(plan)
            settings = planned_delivery(plan.plan_json)
            assert settings.technique == plan.technique
        electron = planned_delivery(plans[1].plan_json)
        assert electron.monitor_units == 1608 and electron.energy_mev == 12


def test_an_edit_of_a_release_plan_is_detected(release_db: sa.Engine) -> None:
    with Session(release_db) as s:
        plan = s.scalars(sa.select(Plan).where(Plan.technique == "electron")).one()
        edited = {**plan.plan_json, "monitor_units": 1700}
        # Behind the records layer's back, as someone with write access to the database would.
        table = Plan.__table__
        s.execute(sa.update(table).where(table.c.id == plan.id).values(plan_json=edited))
        s.expire_all()
        plan = s.get(Plan, plan.id)
        assert plan is not None and plan.plan_json["monitor_units"] == 1700
        with pytest.raises(TamperedPlanError):
            service.verify_plan(plan)
