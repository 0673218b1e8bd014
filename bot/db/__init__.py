"""Storage: models (the schema), session (engines, sessionmakers, Alembic upgrades), repo (queries the core uses).

Migrations live in bot/db/migrations (alembic.ini beside this file); ``kurashi db upgrade``
or ``bot.db.session.upgrade_database(url)`` applies them. Nothing here imports the
conversation core, the channel adapters or platform SDKs.
"""
