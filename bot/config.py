"""Configuration: one TOML file (``config.example.toml`` documents every key) plus a few
environment overrides. A bad value fails with one line naming its key. The sections and
their checks are ``bot.config_sections``; here they are put together and read."""

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from bot.config_sections import (
    AdminsConfig,
    AlertsConfig,
    ChaseConfig,
    ClaimsConfig,
    ConsoleConfig,
    DatabaseConfig,
    I18nConfig,
    InvitesConfig,
    LoggingConfig,
    NeedsConfig,
    NoticesConfig,
    OutboxConfig,
    RedisConfig,
    ReportsConfig,
    RosterConfig,
    Section,
    TelegramConfig,
    WebhookConfig,
    url_parts,
)

DEFAULT_CONFIG_PATH = Path("config.toml")
EXAMPLE_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.example.toml"


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""


class Config(Section):
    # What this process does: "all" (updates, the clock and the sender: one process),
    # "web" (updates only: a webhook replica), or "worker" (the clock and the sender only;
    # on PostgreSQL exactly one worker runs at a time, the others wait to take over).
    role: Literal["all", "web", "worker"] = "all"
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    admins: AdminsConfig = Field(default_factory=AdminsConfig)
    i18n: I18nConfig = Field(default_factory=I18nConfig)
    invites: InvitesConfig = Field(default_factory=InvitesConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    notices: NoticesConfig = Field(default_factory=NoticesConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    needs: NeedsConfig = Field(default_factory=NeedsConfig)
    claims: ClaimsConfig = Field(default_factory=ClaimsConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    chase: ChaseConfig = Field(default_factory=ChaseConfig)
    roster: RosterConfig = Field(default_factory=RosterConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)

    @model_validator(mode="after")
    def _webhook_url_ends_with_path(self) -> "Config":
        # Telegram posts to the url; the bot listens on the path (behind a proxy that may
        # add a prefix): unless the url ends with it, no update ever arrives.
        if self.telegram.mode != "webhook" or not self.webhook.url:
            return self
        parts = url_parts(self.webhook.url)
        if parts is None or not parts.path.endswith(self.webhook.path):
            raise ValueError(
                "[webhook] url must end with [webhook] path, where the bot listens for "
                'updates (e.g. url = "https://wuji.example.org/telegram" with '
                'path = "/telegram")'
            )
        return self

    def is_admin(self, telegram_id: int) -> bool:
        return telegram_id in self.admins.telegram_ids


ENV_OVERRIDES = {
    "BOT_TOKEN": ("telegram", "token"),
    "TELEGRAM_API_SERVER": ("telegram", "api_server"),
    "DATABASE_URL": ("database", "url"),
    "WUJI_ROLE": ("", "role"),
}


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read ``path`` (default ``./config.toml``, else the example's defaults) and apply the
    environment overrides."""
    environ = dict(os.environ) if environ is None else environ
    if path is None:
        path = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            # A leading byte order mark (Windows Notepad writes one) is not TOML: skipped.
            raw = tomllib.loads(path.read_text(encoding="utf-8").removeprefix("\ufeff"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory: name the file") from None
        except OSError as error:
            reason = error.strerror or error
            raise ConfigError(f"cannot read config file {path}: {reason}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    for variable, (section, key) in ENV_OVERRIDES.items():
        if environ.get(variable) and not section:  # a top-level key
            raw[key] = environ[variable]
        elif environ.get(variable):
            section_values = raw.setdefault(section, {})
            if isinstance(section_values, dict):
                section_values[key] = environ[variable]
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, path, environ)) from None


def _describe(error: ValidationError, path: Path | None, environ: dict[str, str]) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    where = f" in {path}" if path else ""
    message = first["msg"].removeprefix("Value error, ")
    if not key:  # a rule between keys: its message names them
        return f"bad config{where}: {message}"
    if first["type"] == "extra_forbidden":
        return f"unknown config key '{key}'{where}"
    for variable, (section, name) in ENV_OVERRIDES.items():
        if environ.get(variable) and key == ".".join(filter(None, (section, name))):
            return f"bad {variable} (config key '{key}'): {message}"
    # Never echo the offending value: it may be the token.
    return f"bad config key '{key}'{where}: {message}"
