"""The knowledge base as data (YAML under knowledge/data) and its loader/validator. Imports nothing from bot/."""
