"""Alembic environment for kurashi (sync drivers: sqlite / postgresql+psycopg).

The URL comes from ``config.attributes["sync_url"]`` (set by bot.db.session.alembic_config),
else from DATABASE_URL / the Settings default. SQLite runs in batch mode so that later
migrations can ALTER tables. Must not import anything but bot.db.models and bot.db.session.
"""
from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from bot.db import consult_models  # noqa: F401  (consultation tables in the metadata)
from bot.db.models import Base
from bot.db.session import sync_url

config = context.config
if config.config_file_name is not None and not config.attributes.get("sync_url"):
    # Only when run by hand (`alembic -c ...`): don't reconfigure the caller's logging.
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("sync_url")
    if url:
        return url
    env = os.environ.get("DATABASE_URL")
    if env:
        return sync_url(env)
    from bot.settings import Settings  # by-hand use only

    return sync_url(Settings().database_url)


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _url()
    engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
