"""bot/channels."""
