"""Every command that takes a path answers exactly inside the caller's subtrees: each node
of the example county, asked for by members holding different posts."""

import random

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.access import scope_of
from models.org import Member, Node, Post
from models.posts import bind
from tests.emulator import TelegramEmulator
from tests.handlers.fixtures import ADMIN_ID, import_examples


@pytest.mark.parametrize("seed", [1, 2])
async def test_tree_whois_and_bind_answer_exactly_inside_the_scope(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    seed: int,
) -> None:
    await import_examples(session_factory)
    chooser = random.Random(seed)
    telegram_id = 8000 + seed
    async with session_factory() as session:
        member = Member(telegram_id=telegram_id, name="持岗人", locale="en")
        session.add(member)
        await session.flush()
        posts = list(await session.scalars(select(Post).order_by(Post.id)))
        for post in chooser.sample(posts, k=chooser.randint(1, 3)):
            await bind(session, post, member, None, how="test")
        await session.commit()
        nodes = list(await session.scalars(select(Node).order_by(Node.path)))
        scope = await scope_of(session, telegram_id, [ADMIN_ID])

    person = emulator.user(user_id=telegram_id, first_name="持岗人", language_code="en")
    group = emulator.group(chat_id=-9000 - seed, title="test group")
    for node in nodes:
        allowed = scope.sees(node)
        await person.send(f"/tree {node.path}")
        tree = (await person.next_message()).text
        assert ("not in your area" not in tree) == allowed, (node.path, tree)
        await person.send(f"/whois {node.path}")
        whois = (await person.next_message()).text
        assert ("not in your area" not in whois) == allowed, (node.path, whois)

    # Binding a group: only to a node inside the scope; a refusal leaves it unbound.
    for node in chooser.sample(nodes, k=6):
        await person.send(f"/bind {node.path}", chat=group)
        reply = (await person.next_message(chat=group)).text
        bound = node.path in reply and "vacant" in reply
        assert bound == scope.sees(node), (node.path, reply)
        if bound:
            await person.send("/unbind", chat=group)
            await person.next_message(chat=group)
