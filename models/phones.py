"""Phone numbers as the roster and Telegram write them, reduced to E.164 so that they compare.

A county writes mainland mobiles every which way (``138 0013 8000``, ``+86-138…``,
``0086…``, full-width digits from a Chinese input method); Telegram sends a contact's
number in international form, with or without the ``+``.
"""

import re
import unicodedata

# Separators people put inside a number; NFKC has already folded full-width ones to ASCII.
_SEPARATORS = re.compile(r"[\s\-.()/]")
_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")
# E.164: a country code that does not start with 0, at most 15 digits in all.
_INTERNATIONAL = re.compile(r"[1-9]\d{6,14}")
CHINA = "86"


def normalize_phone(raw: str) -> str | None:
    """E.164 (``+8613800138000``) for a mainland mobile or a ``+``/``00``-prefixed
    international number; None for anything else.

    Digits without a country code are read as a mainland mobile, so a bare foreign
    number in a county roster is refused rather than guessed at.
    """
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    # A leading apostrophe is how Excel users (and our CSV exports) keep a number as text.
    text = text.removeprefix("'")
    if text.startswith("+"):
        return _international(text[1:])
    if text.startswith("00"):
        return _international(text[2:])
    if not text.isascii() or not text.isdigit():
        return None
    if _MAINLAND_MOBILE.fullmatch(text):
        return f"+{CHINA}{text}"
    if text.startswith(CHINA) and _MAINLAND_MOBILE.fullmatch(text[len(CHINA) :]):
        return f"+{text}"
    return None


def normalize_contact_phone(raw: str) -> str | None:
    """A Telegram contact's number: always international, even when the ``+`` is missing."""
    text = unicodedata.normalize("NFKC", raw).strip()
    return normalize_phone(text if text.startswith("+") else f"+{text}")


def _international(digits: str) -> str | None:
    if not digits.isascii() or not _INTERNATIONAL.fullmatch(digits):
        return None
    if digits.startswith(CHINA) and not _MAINLAND_MOBILE.fullmatch(digits[len(CHINA) :]):
        # Posts are held by people reached on a mobile; a +86 landline or a mistyped
        # mobile is more likely a typo than a real contact.
        return None
    return f"+{digits}"
