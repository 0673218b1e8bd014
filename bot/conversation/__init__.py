"""bot/conversation."""
