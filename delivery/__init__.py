"""Delivery: everything between "a feature has something to say" and "the platform got it".

- ``delivery.messages`` — the channel-neutral vocabulary (``IncomingMessage``, ``Reply``,
  ``Choice``, ``Card``) that adapters, the conversation core and the outbox share;
- ``delivery.senders`` — ``ChannelSender``, the neutral interface of a platform's push side,
  and the neutral send errors (``RetryLater``, ``PermanentFailure``);
- ``delivery.outbox`` — outbox rows: ``enqueue`` (in the caller's transaction), the
  ``OutboxRelay`` that sends them, delivery reports and pruning;
- ``delivery.ratelimit`` — token buckets per channel and per chat, and the clock;
- ``delivery.web_mailbox`` — the web chat's durable mailbox (the web channel's "platform").

Every feature writes here; delivery imports no feature, no scheduler job, no channel
adapter, no platform SDK and no process-global context: the relay gets its sessionmaker,
senders and limits from whoever starts it (``kurashi serve`` through bot/services.py,
``kurashi scheduler``). See .importlinter for the layers.
"""
