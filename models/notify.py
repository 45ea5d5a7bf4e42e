"""Telling members about what others did: who is told, and queueing it in the caller's
transaction, so that the event and its messages commit together or not at all."""

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from models.messages import Action, Param, PostRef, Text
from models.outbox.table import OutgoingMessage, enqueue
from models.posts import PostView, Recipient, superiors_of

# Messages about people (registrations, leavings, claims) go ahead of broadcasts.
PEOPLE_PRIORITY = 1


def command_centre(addresses: Iterable[int]) -> list[Recipient]:
    return [Recipient(address) for address in addresses]


async def above_or_command_centre(
    session: AsyncSession, node_id: int, command_centre_ids: Sequence[int]
) -> list[Recipient]:
    """Whoever holds the posts one level above the node; the command centre when nobody
    does (above a zone, or a vacant level above)."""
    return await superiors_of(session, node_id) or command_centre(command_centre_ids)


def post_ref(post: PostView) -> PostRef:
    return PostRef(post.level, post.role, post.path)


async def tell(
    session: AsyncSession,
    recipients: Iterable[Recipient],
    key: str,
    params: Mapping[str, Param] | None = None,
    *,
    actions: tuple[Action, ...] = (),
    dedupe: str | None = None,
    priority: int = PEOPLE_PRIORITY,
    source: str | None = None,
    fallback_to_command_centre: bool = False,
) -> int:
    """Queue ``key`` once for each recipient, in the caller's transaction (no commit).
    ``dedupe``, when given, makes repeating the same call add nothing; with
    ``fallback_to_command_centre`` (and ``dedupe``) a reader who cannot be reached is
    replaced by the command centre."""
    if fallback_to_command_centre and not dedupe:
        raise ValueError("a fallback to the command centre needs a dedupe key")
    messages: dict[int, OutgoingMessage] = {}
    content = Text(key, dict(params or {}))
    for recipient in recipients:
        if recipient.telegram_id in messages:
            continue
        messages[recipient.telegram_id] = OutgoingMessage(
            chat_id=recipient.telegram_id,
            member_id=recipient.member_id,
            content=content,
            actions=actions,
            dedupe_key=f"{dedupe}:{recipient.telegram_id}" if dedupe else None,
            source=source or key,
            priority=priority,
            fallback_key=dedupe if fallback_to_command_centre else None,
        )
    return await enqueue(session, list(messages.values()))
