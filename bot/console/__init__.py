"""The command centre's web console (指挥大屏), served by the bot's own aiohttp app:
server-rendered pages (jinja2), a little plain JavaScript, live updates by server-sent
events. ``setup_console`` adds its routes to a web app; ``bot.app`` calls it."""

from bot.console.routes import setup_console
from bot.console.viewers import ConsoleDeps

__all__ = ["ConsoleDeps", "setup_console"]
