"""Users on both backends: argon2 hashes, authentication, roles, disabling."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from openiort.records import (
    PermissionDeniedError,
    RecordsValueError,
    User,
    authenticate,
    create_patient,
    create_user,
    set_active,
    set_password,
    set_role,
    verify_password,
)
from openiort.records import users as users_module
from openiort.records.audit import entries


def test_password_is_stored_as_an_argon2id_hash(session: Session) -> None:
    user = create_user(session, "alice", "physicist", "a long passphrase")
    session.commit()
    assert user.password_hash.startswith("$argon2id$")
    assert "a long passphrase" not in user.password_hash
    assert verify_password(user, "a long passphrase")
    assert not verify_password(user, "a long passphrasE")
    entry = entries(session, "user", user.id)[0]
    assert entry.username == "system" and "passphrase" not in str(entry.summary)


def test_authenticate(session: Session, users: dict[str, User]) -> None:
    assert authenticate(session, "phys", "correct horse battery") is users["phys"]
    assert authenticate(session, "PHYS", "correct horse battery") is users["phys"]
    assert authenticate(session, "phys", "wrong password") is None
    assert authenticate(session, "nobody", "correct horse battery") is None
    set_active(session, "phys", False)
    assert authenticate(session, "phys", "correct horse battery") is None
    with pytest.raises(PermissionDeniedError, match="disabled"):
        create_patient(session, users["phys"], "DEMO-001")


def test_weak_hash_is_upgraded_on_login(session: Session) -> None:
    create_user(session, "bob", "viewer", "a long passphrase")
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    users_module.use_password_hasher(stronger)
    user = authenticate(session, "bob", "a long passphrase")
    assert user is not None and "t=2" in user.password_hash


@pytest.mark.parametrize(
    ("username", "role", "password", "message"),
    [
        ("a", "physicist", "long enough!", "username"),
        ("bad name", "physicist", "long enough!", "username"),
        ("carol", "nurse", "long enough!", "role: 'nurse' is not one of"),
        ("carol", "physicist", "short", "at least 8 characters"),
        ("carol", "physicist", " padded password ", "white space"),
        ("Phys", "physicist", "long enough!", "already taken"),
    ],
)
def test_bad_user_input(
    session: Session, users: dict[str, User], username: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(RecordsValueError, match=message):
        create_user(session, username, role, password)


def test_role_and_password_changes_are_audited(session: Session, users: dict[str, User]) -> None:
    set_role(session, "view", "surgeon", actor=users["phys"])
    set_password(session, "view", "another passphrase")
    session.commit()
    assert users["view"].role == "surgeon"
    assert verify_password(users["view"], "another passphrase")
    actions = [(e.action, e.username) for e in entries(session, "user", users["view"].id)]
    assert actions[-2:] == [("set_role", "phys"), ("set_password", "system")]
