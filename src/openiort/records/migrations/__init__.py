"""Alembic migrations of the records schema (run by :func:`openiort.records.db.upgrade`)."""
