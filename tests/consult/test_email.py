"""EmailSender (the outbox's "email" channel) against a real SMTP server on loopback:
delivery, a stable Message-ID per outbox row, and SMTP failures translated into the
outbox's neutral errors (refused recipient → permanent, server down → retry later)."""
from __future__ import annotations

import socket

import pytest

from bot.channels.email import EmailSender
from delivery.messages import Card, Reply
from delivery.senders import PermanentFailure, RetryLater


class RefusingMailbox:
    """Accepts mail for everyone but nobody@…"""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd hook
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = RefusingMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


REPLY = Reply("Case K-00001\nbody text", card=Card(title="[kurashi] K-00001 new case", text=""))


async def test_delivers_with_the_subject_and_a_stable_message_id(smtp) -> None:
    port, mailbox = smtp
    sender = EmailSender(f"smtp://127.0.0.1:{port}", "kurashi@test.example")
    await sender.push(["desk@otit.example"], [REPLY], retry_key="1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    await sender.push(["desk@otit.example"], [REPLY], retry_key="1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert len(mailbox.messages) == 2
    first, second = (m.decode() for m in mailbox.messages)
    assert "Subject: [kurashi] K-00001 new case" in first and "body text" in first
    ids = [line for m in (first, second) for line in m.splitlines() if line.startswith("Message-ID:")]
    assert ids[0] == ids[1] == "Message-ID: <1b4e28ba-2fa1-11d2-883f-0016d3cca427@kurashi.local>"


async def test_refused_recipient_is_a_permanent_failure(smtp) -> None:
    port, mailbox = smtp
    sender = EmailSender(f"smtp://127.0.0.1:{port}")
    with pytest.raises(PermanentFailure):
        await sender.push(["nobody@otit.example"], [REPLY], retry_key="k1")
    assert mailbox.messages == []


async def test_server_down_is_retried_later() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]          # closed again: nothing listens there
    with pytest.raises(RetryLater):
        await EmailSender(f"smtp://127.0.0.1:{port}", timeout=5).push(["a@b.example"], [REPLY], retry_key="k2")


def test_smtp_url_forms() -> None:
    plain = EmailSender("smtp://user:p%40ss@mail.example:2525")
    assert (plain.hostname, plain.port, plain.username, plain.password, plain.use_tls) == (
        "mail.example", 2525, "user", "p@ss", False)
    tls = EmailSender("smtps://mail.example")
    assert (tls.port, tls.use_tls) == (465, True)
    with pytest.raises(ValueError):
        EmailSender("http://mail.example")
