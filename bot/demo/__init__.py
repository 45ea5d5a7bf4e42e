"""``python -m bot demo``: a day of the county played against the Bot API emulator, with the
real service (Application, long polling) on a fresh SQLite file. No token, no network."""

from bot.demo.day import DemoOptions
from bot.demo.run import run_demo

__all__ = ["DemoOptions", "run_demo"]
