"""The county's people, played on the emulator: each does what a person does in the chat
(taps Start with the invite, shares the contact, confirms, opens /report, taps buttons)."""

import asyncio
import re
from collections.abc import Callable

from bot.emulator import BotMessage, EmuGroup, EmuUser, TelegramEmulator

WAIT_S = 30.0


class DemoStepFailed(Exception):
    """The bot did not answer as a person would expect: the demo names the step."""


async def reply_where(
    user: EmuUser,
    wanted: Callable[[BotMessage], bool],
    timeout: float = WAIT_S,  # noqa: ASYNC109 (a person's patience, named in the failure)
) -> BotMessage:
    """The next message in the user's chat that ``wanted`` accepts; messages queued for them
    meanwhile (a registration below, a notice) are passed over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise DemoStepFailed(f"user {user.id}: no expected reply within {timeout:.0f} s")
        try:
            message = await user.next_message(timeout=left)
        except AssertionError as error:
            raise DemoStepFailed(f"user {user.id}: {error}") from None
        if wanted(message):
            return message


def has_button(label: str) -> Callable[[BotMessage], bool]:
    return lambda message: any(text == label for row in message.buttons() for text, _ in row)


def says(fragment: str) -> Callable[[BotMessage], bool]:
    return lambda message: fragment in (message.text or message.caption or "")


def labels(message: BotMessage) -> list[str]:
    return [text for row in message.buttons() for text, _ in row]


async def tap(emulator: TelegramEmulator, user: EmuUser, message: BotMessage, label: str) -> str:
    """Press a button and wait for the bot's answer to the press. A choice the household
    gave last time is marked ("● 阴性"): the person taps it all the same."""
    shown = labels(message)
    if label not in shown:
        label = next((text for text in shown if text.removeprefix("● ") == label), label)
    answer = await emulator.callback_answer(await user.press(message, label), timeout=WAIT_S)
    return str(answer.get("text") or "")


async def register(person: EmuUser, token: str, phone: str) -> None:
    """/start with the invite, share the contact, confirm."""
    person.mark_read()
    await person.send(f"/start {token}")
    await reply_where(person, lambda m: "分享" in (m.text or ""))
    await person.send_contact(phone_number=phone)
    confirmation = await reply_where(person, has_button("✅ 确认"))
    await person.press(confirmation, "✅ 确认")
    await reply_where(person, lambda m: True)


async def claim_in_group(
    emulator: TelegramEmulator, volunteer: EmuUser, group: EmuGroup, phone: str
) -> bool:
    """A volunteer who never opened the bot taps a vacant unit lead post in the group's
    /vacancies, follows the deep link, shares the contact and confirms. False: nothing
    vacant was listed."""
    volunteer.mark_read(group)
    await volunteer.command("vacancies", chat=group, mention=True)
    listing = await volunteer.next_message(chat=group, timeout=WAIT_S)
    vacant = [label for label in labels(listing) if label.startswith("单元长 · ")]
    if not vacant:
        return False
    match = None
    for post in vacant:  # a post someone else claimed already is refused: the next one
        answer = await emulator.callback_answer(
            await volunteer.press(listing, post), timeout=WAIT_S
        )
        match = re.search(r"start=(claim_[A-Za-z0-9_-]+)", str(answer.get("url") or ""))
        if match is not None:
            break
    if match is None:
        raise DemoStepFailed(f"volunteer {volunteer.id}: no claim link ({answer})")
    volunteer.mark_read()
    await volunteer.send(f"/start {match.group(1)}")
    await reply_where(volunteer, lambda m: "分享" in (m.text or ""))
    await volunteer.send_contact(phone_number=phone)
    confirmation = await reply_where(volunteer, has_button("✅ 确认"))
    await volunteer.press(confirmation, "✅ 确认")
    await reply_where(volunteer, says("已提交"))
    return True


async def approve_claims(emulator: TelegramEmulator, decider: EmuUser) -> int:
    """The lead one level up approves every claim waiting in their chat."""
    approved = 0
    for message in decider.messages():
        if "✅ 同意" in labels(message):
            await tap(emulator, decider, message, "✅ 同意")
            approved += 1
    return approved


async def report_unit(
    emulator: TelegramEmulator, lead: EmuUser, *, fever: bool, nobody_home: bool
) -> int:
    """/report: one household filled in (a fever and a need for medicine when ``fever``),
    perhaps one nobody home, the rest "no change" in one tap. Returns households saved."""
    lead.mark_read()
    await lead.send("/report")
    sheet = await reply_where(lead, lambda m: any(x.startswith("▫️ ") for x in labels(m)))
    saved = 0
    first = next(label for label in labels(sheet) if label.startswith("▫️ "))
    if fever:
        await tap(emulator, lead, sheet, first)
        await tap(emulator, lead, sheet, "📝 填写")
        for label in ("2", "1", "阴性", "居家健康监测", "完成 ▶", "⬜ 药品", "完成 ▶", "跳过 ▶"):
            await tap(emulator, lead, sheet, label)
        await tap(emulator, lead, sheet, "✅ 保存")
        saved += 1
    if nobody_home:
        waiting = [label for label in labels(sheet) if label.startswith("▫️ ")]
        if waiting:
            await tap(emulator, lead, sheet, waiting[0])
            await tap(emulator, lead, sheet, "🚪 无人在家")
            saved += 1
    rest = next((label for label in labels(sheet) if label.startswith("其余全部")), None)
    if rest is not None:
        count = re.search(r"（(\d+) 户）", rest)
        await tap(emulator, lead, sheet, rest)
        await tap(emulator, lead, sheet, "✅ 确认")
        saved += int(count.group(1)) if count else 0
    return saved


async def acknowledge_latest(emulator: TelegramEmulator, person: EmuUser, label: str) -> bool:
    """Press ``label`` on the newest message in the person's chat that carries it."""
    for message in reversed(person.messages()):
        if label in labels(message):
            await tap(emulator, person, message, label)
            return True
    return False
