"""bot/db."""
