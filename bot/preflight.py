"""What ``run`` checks before it serves anyone: a bot token of the right form, a webhook
that cannot be posted to by strangers, a Redis that answers. Each failure is one line for
the person who runs the bot."""

from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.utils.token import TokenValidationError, validate_token
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from bot.config import Config, ConfigError
from bot.config_sections import MIN_SECRET_LENGTH


def check_token(config: Config) -> str:
    token = config.telegram.token.get_secret_value()
    if not token:
        raise ConfigError(
            "no bot token: set the BOT_TOKEN environment variable or [telegram] token in "
            "config.toml (get one from @BotFather)"
        )
    try:
        validate_token(token)
    except TokenValidationError:
        raise ConfigError("[telegram] token is not a bot token (expected 123456:ABC…)") from None
    return token


def check_webhook(config: Config) -> str:
    secret = config.webhook.secret_token.get_secret_value()
    if not secret:
        raise ConfigError(
            "webhook mode needs [webhook] secret_token; refusing to start without it, "
            "since anyone could then post updates"
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"[webhook] secret_token is too short: use at least {MIN_SECRET_LENGTH} "
            "characters of A-Z, a-z, 0-9, _ and - (e.g. the output of `openssl rand -hex 32`)"
        )
    if not config.webhook.url:
        raise ConfigError("webhook mode needs [webhook] url (the public HTTPS address)")
    return secret


async def reach_redis(storage: BaseStorage, config: Config) -> None:
    """With conversations in Redis, a Redis that does not answer would fail every update:
    the process does not start, as with a database that cannot be reached."""
    if not isinstance(storage, RedisStorage):
        return
    try:
        await storage.redis.ping()
    except RedisError as error:
        where = make_url(config.redis.url).render_as_string(hide_password=True)
        raise ConnectionError(
            f"cannot reach Redis at {where} ([redis] url): {error}; start it, or leave "
            "[redis] url empty to keep conversations in the database"
        ) from None
