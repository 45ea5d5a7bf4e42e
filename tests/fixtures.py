"""Builders shared by the suite: messages with verbatim texts for the sender's tests, the
renderer that shows them, and a small organisation tree."""

from dataclasses import dataclass
from typing import Any

from aiogram.enums import ParseMode
from aiogram.methods import SendMessage
from aiogram.methods.base import TelegramMethod
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import create_i18n
from handlers.outbound import TelegramRenderer
from models.messages import Text
from models.org import Member, Node, Post
from models.outbox.delivery import ClaimedMessage
from models.outbox.table import OutgoingMessage

# The sender's tests queue texts of their own; no catalog holds them.
VERBATIM = "test.verbatim"


def say(chat_id: int, text: str, **fields: Any) -> OutgoingMessage:
    """A message whose text is ``text`` (HTML) as it is."""
    return OutgoingMessage(chat_id=chat_id, content=Text(VERBATIM, {"text": text}), **fields)


class VerbatimRenderer(TelegramRenderer):
    """Wuji's Telegram renderer, which also sends the texts of ``say`` verbatim."""

    def __init__(self, *, paid_broadcast: bool = False) -> None:
        super().__init__(create_i18n("zh_Hans"), paid_broadcast=paid_broadcast)

    def render(self, message: ClaimedMessage) -> TelegramMethod[Any]:
        content = message.content
        if not (isinstance(content, Text) and content.key == VERBATIM):
            return super().render(message)
        with self.i18n.context(), self.i18n.use_locale(self.locale_of(message)):
            markup = self._keyboard(self.locale_of(message), message.actions)
        return SendMessage(
            chat_id=message.chat_id,
            text=str(content.params["text"]),
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            allow_paid_broadcast=self.paid,
        )


@dataclass
class Tree:
    """A zone with one grid: the zone's lead and officer stand above the grid's lead."""

    zone: Node
    grid: Node
    zone_lead: Member
    zone_officer: Member
    grid_lead: Member


async def small_tree(session: AsyncSession) -> Tree:
    zone = Node(level="zone", name="县委办片区", path="县委办片区")
    session.add(zone)
    await session.flush()
    zone.zone_id = zone.id
    grid = Node(
        level="grid",
        name="金桥小区",
        path="县委办片区/金桥小区",
        parent_id=zone.id,
        zone_id=zone.id,
    )
    session.add(grid)
    await session.flush()
    grid.grid_id = grid.id
    zone_lead = Member(telegram_id=101, name="王片长", reachable=True)
    zone_officer = Member(telegram_id=102, name="李信息员", reachable=True)
    grid_lead = Member(telegram_id=201, name="张<网格长>", reachable=True)
    session.add_all([zone_lead, zone_officer, grid_lead])
    await session.flush()
    session.add_all(
        [
            Post(node_id=zone.id, role="lead", holder_id=zone_lead.id),
            Post(node_id=zone.id, role="officer", holder_id=zone_officer.id),
            Post(node_id=grid.id, role="lead", holder_id=grid_lead.id),
            Post(node_id=grid.id, role="officer"),
        ]
    )
    await session.commit()
    return Tree(zone, grid, zone_lead, zone_officer, grid_lead)
