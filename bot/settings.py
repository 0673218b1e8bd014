"""Configuration: one pydantic-settings class read from the environment and `.env`.

Build it once (in ``create_app()`` or a CLI entry point) and pass it down; nothing in the
project reads the environment anywhere else. Names follow ../shared/DESIGN.md.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "kurashi.db"

MIN_SECRET_KEY_LENGTH = 32
_PLACEHOLDERS = {"changeme", "change-me", "secret", "your-secret", "xxx", "todo", "replace-me"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Storage
    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"

    # LINE Messaging API
    line_channel_secret: str | None = None
    line_channel_access_token: str | None = None
    line_api_base_url: str = "https://api.line.me"
    #: LINE's content host (rich menu images); default: the real one, or LINE_API_BASE_URL
    #: when only that is set (a test fake serves both).
    line_api_data_base_url: str | None = None
    #: Link each LINE user's rich menu to their language (after `kurashi line richmenu sync`).
    line_rich_menu_links: bool = True
    #: The rich menu LINE shows residents who have not chosen a language yet.
    line_rich_menu_default_language: str = "ja"

    # Telegram Bot API
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org"

    # JMA disaster feeds (Atom); comma-separated list is allowed
    jma_feed_url: str = "https://www.data.jma.go.jp/developer/xml/feed/extra.xml,https://www.data.jma.go.jp/developer/xml/feed/eqvol.xml"

    # E-mail to partner organisations' staff (smtp://user:pass@host:port, smtps:// for TLS)
    smtp_url: str | None = None
    smtp_from: str = "kurashi@localhost"

    # Staff console
    secret_key: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"

    # Consultations: opening hours within which partner organisations answer (agreed with
    # each organisation; residents are told "answers by ..."): a default and per
    # organisation, e.g. "48,yfrcc=24,otit=24". Staff accounts and notification targets are
    # set with `kurashi staff add` / `kurashi staff notify` (database).
    consult_response_hours: str = "48"

    # Days unanswered questions and 👎/👍 feedback are kept (`kurashi db prune`); 0 = forever
    insights_retention_days: int = 180
    # Days messages and images of closed consultation cases are kept (statistics stay); 0 = forever
    case_retention_days: int = 365
    # Proxies whose X-Forwarded-For/-Proto `kurashi serve` trusts (uvicorn forwarded_allow_ips,
    # comma-separated addresses/networks); none by default: the socket peer is the client
    forwarded_allow_ips: str = ""

    # Knowledge base folder (YAML); default is the package's own data
    knowledge_dir: Path | None = None

    # "production" refuses to start with unsafe settings (missing/short SECRET_KEY, Telegram
    # without TELEGRAM_WEBHOOK_SECRET); anything else only warns at start-up
    environment: str = "development"
    # Bearer token required by GET /metrics when set (unset: /metrics is open, for a scraper on localhost)
    metrics_token: str | None = None

    # Background work started in the app's lifespan
    run_sender: bool = True
    run_scheduler: bool = True
    log_level: str = "INFO"

    @field_validator(
        "line_channel_secret", "line_channel_access_token", "telegram_bot_token",
        "telegram_webhook_secret", "secret_key", "metrics_token",
    )
    @classmethod
    def _refuse_placeholders(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder; set a real value or leave it unset")
        if value is not None and not value.strip():
            return None
        return value

    @field_validator("consult_response_hours")
    @classmethod
    def _response_hours_shape(cls, value: str) -> str:
        from bot.consult.routing import ResponseHours

        ResponseHours.parse(value)      # raises ValueError with the offending part
        return value

    @property
    def production(self) -> bool:
        return self.environment.strip().lower() in ("production", "prod")

    def security_problems(self, *, telegram_polling: bool = False) -> list[str]:
        """What is unsafe in these settings (said at start-up; refused in production)."""
        problems = []
        if not self.secret_key:
            problems.append("SECRET_KEY is not set: console sessions and web chat ids are signed with a "
                            "random key of this process (they end at every restart and fail across workers)")
        elif len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            problems.append(f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters: use a long random "
                            "string (python -c \"import secrets; print(secrets.token_urlsafe(48))\")")
        if self.telegram_enabled and not self.telegram_webhook_secret and not telegram_polling:
            problems.append("TELEGRAM_BOT_TOKEN is set but TELEGRAM_WEBHOOK_SECRET is not: every Telegram "
                            "webhook delivery will be refused (set it, and pass it to setWebhook as secret_token)")
        return problems

    @property
    def line_enabled(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def jma_feed_urls(self) -> list[str]:
        return [u.strip() for u in self.jma_feed_url.split(",") if u.strip()]
