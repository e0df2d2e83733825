"""Alembic environment: runs the migrations on the connection :func:`upgrade` passes in.

Run without a connection (``alembic`` on the command line, or offline ``--sql`` mode) it
opens the URL in the configuration instead.
"""

from __future__ import annotations

from alembic import context

from openiort.records.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move tables instead
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    _configure_and_run(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection=connection)
        return
    from openiort.records.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _configure_and_run(connection=conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
