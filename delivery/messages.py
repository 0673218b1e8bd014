"""The channel-neutral vocabulary between adapters and the conversation core.

Adapters (bot/channels/*) build ``IncomingMessage`` from a platform event and render
``Reply`` back into platform messages. Nothing here imports a platform SDK, Starlette or
an adapter; reply tokens and chat ids stay inside the adapters (see ../shared/STYLE.md §1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from bot.cleaning import InvalidEvent, clean_text

#: users.platform_user_id is String(128); consultation cases keep display names of 128.
MAX_USER_ID = 128
MAX_DISPLAY_NAME = 128
MAX_LANGUAGE_HINT = 35   # the longest well-formed BCP 47 tag one would meet


class Channel(str, Enum):
    LINE = "line"
    TELEGRAM = "telegram"
    WEB = "web"
    CLI = "cli"


class Kind(str, Enum):
    TEXT = "text"
    POSTBACK = "postback"          # a button press; ``data`` carries the button's payload
    FOLLOW = "follow"              # first contact / unblock (LINE follow, Telegram /start)
    UNFOLLOW = "unfollow"          # the user blocked or removed the bot: send nothing
    STICKER = "sticker"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    FILE = "file"
    LOCATION = "location"
    GROUP_JOIN = "group_join"      # the bot was added to a group: decline politely
    EDITED = "edited"              # an edited message (Telegram): ignored politely


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    address: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Media:
    """A reference to media the platform holds (content fetched later by the adapter)."""

    platform_id: str
    mime_type: str | None = None


@dataclass(frozen=True)
class IncomingMessage:
    channel: Channel
    user_id: str                         # platform user id (LINE userId, Telegram chat id, web session id)
    kind: Kind = Kind.TEXT
    text: str | None = None
    data: str | None = None              # postback payload
    language_hint: str | None = None     # LINE profile language / Telegram language_code
    display_name: str | None = None
    location: Location | None = None
    media: Media | None = None
    event_id: str | None = None          # platform event id, for logs and de-duplication

    def __post_init__(self) -> None:
        """Whatever an adapter read from a platform is checked here once: a user id that fits
        the column (else InvalidEvent), text fields without NUL/lone surrogates."""
        if not isinstance(self.user_id, str) or not 0 < len(self.user_id) <= MAX_USER_ID:
            raise InvalidEvent(f"user id missing, not text or longer than {MAX_USER_ID} characters")
        for name, limit in (("text", None), ("data", None), ("display_name", MAX_DISPLAY_NAME),
                            ("language_hint", MAX_LANGUAGE_HINT)):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidEvent(f"{name} is not text")
            cleaned = clean_text(value)[:limit] if limit else clean_text(value)
            if cleaned != value:
                object.__setattr__(self, name, cleaned)


@dataclass(frozen=True)
class Choice:
    """A button. ``data`` is the postback payload the core understands (e.g. ``intent:garbage.bulky``)."""

    label: str
    data: str


@dataclass(frozen=True)
class Card:
    title: str
    text: str
    url: str | None = None
    image_url: str | None = None


@dataclass
class Reply:
    """One message to the user. ``quick_replies`` are at most 13 (LINE's limit)."""

    text: str
    quick_replies: list[Choice] = field(default_factory=list)
    buttons: list[Choice] = field(default_factory=list)
    card: Card | None = None
    #: The resident's chosen language when the reply was made (adapters may follow it,
    #: e.g. LINE links the rich menu of that language); not part of what is sent.
    language: str | None = None

    MAX_QUICK_REPLIES = 13

    def __post_init__(self) -> None:
        if len(self.quick_replies) > self.MAX_QUICK_REPLIES:
            self.quick_replies = self.quick_replies[: self.MAX_QUICK_REPLIES]
