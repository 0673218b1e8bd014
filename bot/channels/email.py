"""The e-mail channel: the outbox's ``ChannelSender`` for channel "email" (staff notifications).

Owns ``EmailSender``: one message per outbox row through SMTP_URL with aiosmtplib
(``smtp://user:pass@host:port``, ``smtps://`` for implicit TLS); SMTP errors become the
neutral ``RetryLater`` / ``PermanentFailure`` here, like every adapter does with its SDK's.
What the e-mails say is bot/consult/notify.py's business.
Must not import the core (conversation, consultations, scheduler, services).
"""
from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit

from delivery.messages import Reply
from delivery.senders import PermanentFailure, RetryLater


class EmailSender:
    """``ChannelSender`` for channel "email": one message per outbox row, through SMTP_URL."""

    channel = "email"
    max_recipients = 1

    def __init__(self, smtp_url: str, sender: str = "kurashi@localhost", *, timeout: float = 30.0) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Any) -> EmailSender | None:
        url = getattr(settings, "smtp_url", None)
        return cls(url, getattr(settings, "smtp_from", "kurashi@localhost")) if url else None

    def build(self, recipients: Sequence[str], replies: Sequence[Reply], retry_key: str) -> EmailMessage:
        first = replies[0] if replies else Reply("")
        subject = first.card.title if first.card is not None else (first.text.splitlines() or ["kurashi"])[0]
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject[:200]
        message["Date"] = formatdate(localtime=False)
        # The outbox row's retry key: the same e-mail retried keeps its Message-ID.
        message["Message-ID"] = f"<{retry_key}@kurashi.local>"
        message.set_content("\n\n".join(r.text for r in replies if r.text))
        return message

    async def push(self, recipients: Sequence[str], replies: Sequence[Reply], *, retry_key: str) -> None:
        import aiosmtplib

        message = self.build(recipients, replies, retry_key)
        try:
            await aiosmtplib.send(message, hostname=self.hostname, port=self.port, username=self.username,
                                  password=self.password, use_tls=self.use_tls, timeout=self.timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipients refused: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"SMTP {exc.code}") from exc
            raise RetryLater(f"SMTP {exc.code}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise RetryLater(f"SMTP unavailable: {type(exc).__name__}") from exc

    async def close(self) -> None:  # nothing kept open between messages
        return None


