"""The config file's sections, one class a ``[section]`` (``bot.config`` puts them together
and reads the file): each value checked as it is read, a bad one named by its key."""

import re
from datetime import time
from typing import Annotated, Literal
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def url_parts(value: str) -> SplitResult | None:
    """``value`` split into its parts, or None when it is not a URL (a bad port too)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts


def known_zone(value: str) -> str:
    """``value`` when it names an IANA time zone (Asia/Shanghai), else a ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
    return value


# A Telegram username: 5-32 letters, digits and underscores, starting with a letter.
USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,31}")
# Telegram allows secrets of 1-256 characters; a short one can be guessed, and every log
# line has it blanked out wherever it appears.
MIN_SECRET_LENGTH = 16


class TelegramConfig(Section):
    token: SecretStr = SecretStr("")
    # Base URL of a self-hosted Bot API server or of an emulator; empty = api.telegram.org.
    api_server: str = ""
    # The bot's @username, for invite links; empty: asked from Telegram (getMe) when needed.
    bot_username: str = ""
    mode: Literal["polling", "webhook"] = "polling"
    request_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("api_server")
    @classmethod
    def _http_server(cls, value: str) -> str:
        parts = url_parts(value)
        if value and (parts is None or parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(
                "must be empty (Telegram's own servers) or the http:// or https:// address "
                "of a Bot API server, e.g. http://127.0.0.1:8081"
            )
        return value

    @field_validator("bot_username")
    @classmethod
    def _telegram_username(cls, value: str) -> str:
        username = value.removeprefix("@")
        if value and not USERNAME.fullmatch(username):
            raise ValueError(
                "must be the bot's Telegram username as BotFather gave it, e.g. "
                'bot_username = "your_bot" (5-32 letters, digits and _, starting with a '
                "letter; no link, no spaces)"
            )
        return username


class WebhookConfig(Section):
    # Public HTTPS URL Telegram posts updates to, e.g. https://wuji.example.org/telegram
    url: str = ""
    path: str = "/telegram"
    secret_token: SecretStr = SecretStr("")
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError('must start with "/", e.g. path = "/telegram"')
        return value

    @field_validator("secret_token")
    @classmethod
    def _telegram_secret_charset(cls, value: SecretStr) -> SecretStr:
        # Checked in every mode: the log redactor blanks the secret out of every line.
        secret = value.get_secret_value()
        if secret and (
            not MIN_SECRET_LENGTH <= len(secret) <= 256
            or not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
        ):
            raise ValueError(
                f"must be {MIN_SECRET_LENGTH}-256 characters of A-Z, a-z, 0-9, _ and - "
                "(e.g. the output of `openssl rand -hex 32`), or empty outside webhook mode"
            )
        return value


class DatabaseConfig(Section):
    url: str = "sqlite+aiosqlite:///wuji.db"

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        from models.db import database_url_problem

        problem = database_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class RedisConfig(Section):
    # When set, conversation state lives in Redis instead of the database.
    url: str = ""

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        # Never echo it: it may hold a password.
        schemes = ("redis://", "rediss://", "unix://")
        if value and (not value.lower().startswith(schemes) or url_parts(value) is None):
            raise ValueError(
                "must be empty (no Redis) or a redis://, rediss:// or unix:// URL, "
                "e.g. redis://127.0.0.1:6379/0"
            )
        return value


class AdminsConfig(Section):
    telegram_ids: list[int] = Field(default_factory=list)


class I18nConfig(Section):
    default_locale: Literal["zh_Hans", "en"] = "zh_Hans"
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


class InvitesConfig(Section):
    ttl_days: int = Field(default=14, ge=1, le=365)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class OutboxConfig(Section):
    """Pacing of the outbox sender, under Telegram's limits
    (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this)."""

    rate_per_s: float = Field(default=28.0, gt=0)
    private_chat_per_s: float = Field(default=1.0, gt=0)
    group_chat_per_min: float = Field(default=20.0, gt=0)
    allow_paid_broadcast: bool = False
    paid_rate_per_s: float = Field(default=1000.0, gt=0)
    concurrency: int = Field(default=32, ge=1, le=1000)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    # Days a settled message (sent, unreachable, failed) is kept for delivery counts.
    retention_days: int = Field(default=30, ge=1)
    # Between quiet_start and quiet_end (the county's time) only alerts go out; everything
    # else waits in the outbox for the morning.
    quiet_hours: bool = True
    quiet_start: time = time(22, 0)
    quiet_end: time = time(7, 0)


class NoticesConfig(Section):
    # Minutes after delivery before recipients who have not pressed "收到" are reminded,
    # and minutes after the reminder before their lead above gets the list.
    remind_after_min: int = Field(default=60, ge=1)
    escalate_after_min: int = Field(default=60, ge=1)
    # Seconds between edits of the author's progress message.
    progress_every_s: float = Field(default=3.0, ge=1)


class AlertsConfig(Section):
    # Minutes an alert may wait for someone above to acknowledge it before it goes on to
    # the command centre.
    escalate_after_min: int = Field(default=15, ge=1)


def _default_need_hours() -> dict[str, float]:
    return {"medicine": 4.0, "food": 24.0, "doctor": 2.0, "other": 24.0}


class NeedsConfig(Section):
    # Hours to meet each kind of need, from when it is reported (or reopened); an overdue
    # ticket climbs to the zone lead. A kind not listed gets ``other``'s.
    due_hours: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=_default_need_hours)


class RosterConfig(Section):
    # Rows one import may hold, all its files together; uncompressed size of one XLSX file.
    max_rows: int = Field(default=500_000, ge=1)
    max_xlsx_mb: int = Field(default=256, ge=1)

    @property
    def max_xlsx_bytes(self) -> int:
        return self.max_xlsx_mb * 1024 * 1024


class ReportsConfig(Section):
    """Household reporting rounds and the report form (PRODUCT.md §3.4)."""

    # "daily": one round a day, a date in the county's time zone.
    schedule: Literal["daily"] = "daily"
    open_time: time = time(7, 0)
    # A close time not after the open time lies on the next day; equal to it, a round
    # stays open (and correctable) until the next one opens.
    close_time: time = time(7, 0)
    due_time: time = time(10, 0)
    # Empty: the county's, [i18n] timezone.
    timezone: str = ""
    nobody_home_flag_after: int = Field(default=3, ge=1, le=365)
    retention_days: int = Field(default=30, ge=1, le=3650)
    # A form definition (TOML); empty: the form shipped in bot/forms/household.toml.
    form: str = ""
    # Quality flags in /status: a unit whose reports were all "no change" this many rounds
    # running, and a full form saved less than this many seconds after it was begun.
    quality_same_rounds: int = Field(default=7, ge=2, le=60)
    quality_fast_form_s: int = Field(default=5, ge=0, le=600)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value) if value else value  # empty: [i18n] timezone

    @field_validator("due_time")
    @classmethod
    def _due_inside_round(cls, value: time, info: ValidationInfo) -> time:
        opens, closes = info.data.get("open_time"), info.data.get("close_time")
        if opens is None or closes is None:
            return value
        day = 24 * 60
        due_after = (_minutes(value) - _minutes(opens)) % day
        close_after = (_minutes(closes) - _minutes(opens)) % day or day
        if not 0 < due_after <= close_after:
            raise ValueError("must lie after open_time and not after close_time")
        return value


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


class ClaimsConfig(Section):
    # Open claims one member may have awaiting a decision at once.
    max_open_per_member: int = Field(default=1, ge=1, le=100)
    # Hours after which a claim nobody decided expires, and its volunteer is told.
    expire_after_hours: int = Field(default=72, ge=1, le=24 * 90)


class ChaseStepConfig(Section):
    # Minutes from the round's due time (negative: before it).
    after_min: int = Field(ge=-24 * 60, le=24 * 60)
    # Whose lead is told: "unit" (its missing households, by room), "building", "grid" or
    # "zone" (the late nodes below, each with its count).
    level: Literal["unit", "building", "grid", "zone"]
    # The node's information officer gets a copy.
    officers: bool = True


def _default_chase_steps() -> list[ChaseStepConfig]:
    return [
        ChaseStepConfig(after_min=-60, level="unit", officers=False),
        ChaseStepConfig(after_min=0, level="unit"),
        ChaseStepConfig(after_min=30, level="building"),
        ChaseStepConfig(after_min=60, level="grid"),
        ChaseStepConfig(after_min=120, level="zone"),
    ]


class ChaseConfig(Section):
    """Chasing missing reports up the tree, and the daily summary (PRODUCT.md §3.8-3.9)."""

    steps: list[ChaseStepConfig] = Field(default_factory=_default_chase_steps)
    # A step the bot missed by more than this many minutes (it was down) is recorded as
    # skipped rather than sent late.
    horizon_min: int = Field(default=90, ge=1, le=24 * 60)
    # Seconds between sweeps: a step fires at most this late.
    sweep_every_s: int = Field(default=30, ge=10, le=60)
    # When the daily summary goes to grid and zone leads and the command centre, in the
    # rounds' time zone.
    summary_time: time = time(18, 0)
    # Grid and zone officers get the summary too.
    summary_officers: bool = True

    @field_validator("steps")
    @classmethod
    def _steps_distinct(cls, steps: list[ChaseStepConfig]) -> list[ChaseStepConfig]:
        seen: set[tuple[int, str]] = set()
        for step in steps:
            if (step.after_min, step.level) in seen:
                raise ValueError(f"two steps for {step.level} at {step.after_min} min")
            seen.add((step.after_min, step.level))
        return steps


class ConsoleConfig(Section):
    """The command centre's web console, served by the bot's own web app."""

    enabled: bool = False
    # Where browsers reach the bot's web app, e.g. https://wuji.example.org; links from
    # /console point there, and an https address makes the session cookie Secure.
    base_url: str = "http://127.0.0.1:8080"
    # In polling mode the console gets a small web server of its own on this address.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    link_minutes: float = Field(default=5.0, gt=0, le=60)
    # A member with nothing in the audit log for this many days shows as silent.
    silent_days: int = Field(default=3, ge=1, le=365)
    # Seconds between looks at the database for changes to push to open pages.
    poll_every_s: float = Field(default=2.0, ge=0.2, le=60)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")
