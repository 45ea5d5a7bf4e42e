"""Text that came from outside (a roster cell, a command's argument) on its way to the
database or back to the person who sent it."""

import re

# C0 and C1 control characters and DEL: PostgreSQL refuses NUL in text, and none of them
# belongs in a name, a path, a room or a phone.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A value quoted back is cut to this many characters: an answer must stay readable and fit
# into one chat message (Telegram takes 4,096 characters).
SHOWN_CHARS = 64


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTERS.search(value) is not None


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """``value`` as an answer quotes it: control characters made visible, cut to ``limit``
    characters with “…”."""
    value = CONTROL_CHARACTERS.sub("\ufffd", value)
    return value if len(value) <= limit else value[: limit - 1] + "…"
