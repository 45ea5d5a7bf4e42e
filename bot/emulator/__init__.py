"""A Telegram Bot API emulator for end-to-end tests, benchmarks and `python -m bot demo`.

Point aiogram at it with ``TelegramAPIServer.from_base(emu.base_url)``.
"""

from .client import EmuGroup, EmuUser
from .html_text import EntityParseError, parse_html
from .limits import Limits, ManualClock, RateLimiter
from .models import (
    ApiError,
    BotMessage,
    Fault,
    FaultKind,
    RecordedRequest,
    StoredFile,
    UploadedFile,
    WebhookDelivery,
)
from .server import TelegramEmulator

__all__ = [
    "ApiError",
    "BotMessage",
    "EmuGroup",
    "EmuUser",
    "EntityParseError",
    "Fault",
    "FaultKind",
    "Limits",
    "ManualClock",
    "RateLimiter",
    "RecordedRequest",
    "StoredFile",
    "TelegramEmulator",
    "UploadedFile",
    "WebhookDelivery",
    "parse_html",
]
