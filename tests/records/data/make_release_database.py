"""Make tests/records/data/release-0.1.0.sqlite with the release before the typed deliveries.

Run with that release's code first on the path (commit cf4ebdd):
    git worktree add /tmp/oldrel cf4ebdd
    PYTHONPATH=/tmp/oldrel/src OPENIORT_SEAL_KEY=... python make_release_database.py OUT.sqlite
One patient per technique, each case planned with the release's pipeline, reviewed by a
physicist and approved by an oncologist (sealed); the x-ray plan is also delivered.
"""

import sys
from pathlib import Path

import yaml

import openiort
from openiort.case import parse_case
from openiort.pipeline import plan_case
from openiort.records import service
from openiort.records.db import make_engine, session_scope, upgrade
from openiort.records.delivery import record_delivery
from openiort.records.users import create_user

EXAMPLES = {
    "xray": "left_upper_outer_30mm.yaml",
    "electron": "left_electron_eliot.yaml",
    "hdr": "left_hdr_balloon_30mm.yaml",
}

out = Path(sys.argv[1]).resolve()
examples = Path(openiort.__file__).resolve().parents[2] / "examples"
url = f"sqlite:///{out}"
upgrade(url)
engine = make_engine(url)
with session_scope(engine) as s:
    phys = create_user(s, "phys", "physicist", "release-test-password")
    onc = create_user(s, "onc", "oncologist", "release-test-password")
    for technique, name in EXAMPLES.items():
        data = yaml.safe_load((examples / name).read_text())
        case = parse_case(data)
        patient = service.create_patient(s, phys, case.patient.id)
        stored_case = service.create_case(s, phys, patient.id, data)
        plan_json = plan_case(case).to_json_dict()
        plan = service.store_plan(s, phys, stored_case.id, plan_json)
        service.review_plan(s, phys, plan.id)
        service.approve_plan(s, onc, plan.id)
        if technique == "xray":
            record_delivery(
                s,
                phys,
                plan.id,
                applicator=plan_json["applicator_diameter_cm"],
                time_min=plan_json["treatment_time_min"],
            )
engine.dispose()
print(f"wrote {out} with openiort {openiort.__version__} from {openiort.__file__}")
