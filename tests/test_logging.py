import logging

import pytest

from bot.logging_setup import RedactFilter

TOKEN = "123456:AAHsecretsecretsecretsecretsecret00"


def test_the_token_is_redacted_from_messages_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("wuji.test")
    caplog.handler.addFilter(RedactFilter([TOKEN]))
    with caplog.at_level(logging.INFO):
        logger.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
        try:
            raise RuntimeError(f"connection to /bot{TOKEN}/sendMessage reset")
        except RuntimeError:
            logger.exception("send failed")
    assert TOKEN not in caplog.text
    assert "[REDACTED]" in caplog.text
    assert "connection to" in caplog.text
