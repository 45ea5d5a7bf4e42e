"""What a failed send means: a pure function of the error, so that every rule can be
tested without a network."""

from dataclasses import dataclass
from enum import StrEnum

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)

# Bad requests that mean the bot may not write to this chat at all.
UNREACHABLE_BAD_REQUESTS = ("chat not found", "peer_id_invalid", "user not found")


class Verdict(StrEnum):
    # Flood control: every send waits ``retry_after``, then this one goes again.
    flood = "flood"
    # The group became a supergroup: follow it to ``migrate_to_chat_id``.
    migrated = "migrated"
    # Blocked, deactivated, never started: the member is marked unreachable.
    unreachable = "unreachable"
    # The token is refused: everything waits, nothing spends its attempts.
    unauthorized = "unauthorized"
    # A server error, a timeout, a garbled answer: retried with backoff.
    transient = "transient"
    # Refused for good (a bad request, a message too long…), or not a send error at all.
    refused = "refused"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    retry_after: float = 0.0
    new_chat_id: int | None = None


def judge(error: BaseException) -> Judgement:
    if isinstance(error, TelegramRetryAfter):
        return Judgement(Verdict.flood, retry_after=float(error.retry_after))
    if isinstance(error, TelegramMigrateToChat):
        return Judgement(Verdict.migrated, new_chat_id=error.migrate_to_chat_id)
    if isinstance(error, TelegramForbiddenError) or (
        isinstance(error, TelegramBadRequest)
        and any(text in error.message.lower() for text in UNREACHABLE_BAD_REQUESTS)
    ):
        return Judgement(Verdict.unreachable)
    if isinstance(error, TelegramUnauthorizedError):
        return Judgement(Verdict.unauthorized)
    if isinstance(
        error, TelegramServerError | TelegramNetworkError | ClientDecodeError
    ) and not isinstance(error, TelegramEntityTooLarge):
        return Judgement(Verdict.transient)
    return Judgement(Verdict.refused)


def describe(error: BaseException, token: str) -> str:
    """The error as stored and logged, never with the token in it, whatever an HTTP library
    put into its message."""
    shown = str(error) if isinstance(error, TelegramAPIError) else repr(error)
    text = f"{type(error).__name__}: {shown}"
    # The part after the colon is the secret: alone (in a percent-encoded URL) it is as good.
    for secret in (token, token.partition(":")[2]):
        if secret:
            text = text.replace(secret, "<token>")
    return text
