"""Consultations (issue 4): routing to partner organisations, the resident's case flow,
staff replies relayed through the outbox, staff notifications, SLA reminders."""
