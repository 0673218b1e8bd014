"""What every channel adapter offers the rest of kurashi, and the neutral send errors.

The outbox relay (delivery/outbox.py) and the webhook processing talk to adapters only
through ``ChannelSender``; platform exceptions (linebot ApiException, telegram.error.*)
are translated into the errors below inside the adapter, so nothing above the adapters
imports a platform SDK.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from delivery.messages import Reply


class SendError(Exception):
    """Base class of send failures raised by adapters."""


class RetryLater(SendError):
    """Rate-limited (429) or a temporary server error (5xx, network): try again later."""

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(SendError):
    """Will never succeed (400 bad request, bot blocked, user gone).

    ``blocked`` lists the platform user ids that blocked/unfollowed the bot, so the caller
    can mark them; it may be empty for other permanent failures.
    """

    def __init__(self, message: str = "", blocked: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.blocked = list(blocked)


class ChannelSender(Protocol):
    """A platform adapter's push side, as used by the outbox relay."""

    channel: str
    #: how many recipients one identical-message call may address (LINE multicast: 500, Telegram: 1)
    max_recipients: int

    async def push(self, recipients: Sequence[str], replies: Sequence[Reply], *, retry_key: str) -> None:
        """Deliver ``replies`` to every recipient. Raise RetryLater / PermanentFailure on failure.

        ``retry_key`` is stable across retries of the same outbox row (LINE X-Line-Retry-Key),
        so a retry after an ambiguous failure is never delivered twice.
        """
        ...
