"""Scheduled jobs, the outbox and its senders."""
