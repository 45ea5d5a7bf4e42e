"""/start, /help, /lang and the fallbacks, as a new user meets them."""

from bot.app import Application
from tests.emulator import TelegramEmulator
from tests.handlers.fixtures import ADMIN_ID


async def test_start_without_invite_explains_the_bot_and_registration(
    emulator: TelegramEmulator, application: Application
) -> None:
    wang = emulator.user(user_id=1001, first_name="王", language_code="zh-hans")
    await wang.send("/start")
    welcome = await wang.next_message()
    assert "五级" in welcome.text
    assert "邀请链接" in welcome.text


async def test_help_speaks_english_to_an_english_client(
    emulator: TelegramEmulator, application: Application
) -> None:
    alice = emulator.user(user_id=1002, first_name="Alice", language_code="en")
    await alice.send("/help")
    help_text = await alice.next_message()
    assert "/lang" in help_text.text and "invite" in help_text.text
    assert "/import" not in help_text.text


async def test_help_shows_admins_their_commands(
    emulator: TelegramEmulator, application: Application
) -> None:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send("/help")
    assert "/import" in (await admin.next_message()).text


async def test_lang_switches_and_the_choice_sticks(
    emulator: TelegramEmulator, application: Application
) -> None:
    li = emulator.user(user_id=1003, first_name="李", language_code="zh-hans")
    await li.send("/lang")
    menu = await li.next_message()
    query = await li.press(menu, "English")
    await emulator.callback_answer(query)
    assert (await li.next_message()).text == "Language set to English."
    await li.send("/cancel")
    assert (await li.next_message()).text == "There is nothing to cancel."

    await li.send("/lang")
    await li.press(await li.next_message(), "简体中文")
    assert (await li.next_message()).text == "语言已设为简体中文。"


async def test_unknown_command_and_stray_text_point_to_help(
    emulator: TelegramEmulator, application: Application
) -> None:
    zhao = emulator.user(user_id=1004, first_name="赵", language_code="zh")
    await zhao.send("/frobnicate")
    assert "/help" in (await zhao.next_message()).text
    await zhao.send("你好")
    assert "/help" in (await zhao.next_message()).text


async def test_commands_menu_is_published_per_language(
    emulator: TelegramEmulator, application: Application
) -> None:
    calls = [request for request in emulator.requests if request.method == "setMyCommands"]
    languages = {request.params.get("language_code") for request in calls}
    assert {"zh", "en"} <= languages
    group = {c["command"] for c in emulator.commands({"type": "all_group_chats"}, "zh")}
    private = {c["command"] for c in emulator.commands({"type": "all_private_chats"}, "zh")}
    assert "vacancies" in group and "notice" not in group and "import" not in group
    assert {"start", "notice", "me", "lang"} <= private and "import" not in private
