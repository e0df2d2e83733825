"""Alembic migrations of the records schema, run by :func:`openiort.records.db.upgrade`.

No ``alembic.ini`` is involved: :func:`openiort.records.db.alembic_config` builds the
configuration. To author a new revision after changing :mod:`openiort.records.models`,
upgrade a scratch database to the current head and let Alembic compare it with the models::

    from alembic import command
    from openiort.records.db import alembic_config, upgrade
    url = "sqlite:////tmp/scratch.sqlite3"
    upgrade(url)
    command.revision(alembic_config(url), message="what changed", autogenerate=True)

then review the generated file in ``versions/`` (``script.py.mako`` is its template), and
check it on SQLite and PostgreSQL with ``pytest tests/records/test_records_db.py``.
"""
