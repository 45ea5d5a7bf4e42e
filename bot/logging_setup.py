"""Logging that never shows the bot token, whatever library formats the message, and
that says what a person running the county needs: start, stop, errors, a line per notice
sent and an hourly traffic line. Routine library lines show only at level DEBUG."""

import logging

# INFO lines of these are routine: a line per migration step on every command, per
# scheduled run every few seconds, per update handled, per web request. At any level but
# DEBUG they show from WARNING up (errors and missed runs still show).
ROUTINE_LOGGERS = ("alembic", "apscheduler", "aiogram.event", "aiohttp.access")
# A line per database operation, at DEBUG: it would bury Wuji's own debug lines (and its
# worker threads go on writing after a test's captured stream is closed).
DRIVER_LOGGERS = ("aiosqlite",)


class RedactFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        # A token's part after the colon is its secret: alone (in a percent-encoded URL) it
        # is as good as the token, so it is redacted too, after the whole token.
        parts = [secret.partition(":")[2] for secret in secrets if ":" in secret]
        self.secrets = [secret for secret in [*secrets, *parts] if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text


def setup_logging(level: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    routine = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ROUTINE_LOGGERS:
        logging.getLogger(name).setLevel(routine)
    for name in DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level)))
