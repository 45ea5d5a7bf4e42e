"""The Bot API emulator now ships in the package (``bot.emulator``, so ``python -m bot demo``
runs without tests/); this keeps ``from tests.emulator import …`` working."""

from bot.emulator import *  # noqa: F403
from bot.emulator import __all__ as __all__
