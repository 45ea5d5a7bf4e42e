"""The report sheet's buttons, built without pydantic's checks, are what aiogram's own
classes would build and send."""

import json

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.report_views import HouseholdPick, button, keyboard, pick_data


@pytest.mark.parametrize(
    ("round_id", "household_id"), [(1, 1), (7, 34_788), (2_147_483_647, 2_147_483_647)]
)
def test_a_household_button_packs_as_its_callback_data_class(
    round_id: int, household_id: int
) -> None:
    packed = pick_data(round_id, household_id)
    assert packed == HouseholdPick(round_id=round_id, household_id=household_id).pack()
    assert HouseholdPick.unpack(packed) == HouseholdPick(
        round_id=round_id, household_id=household_id
    )


def test_a_keyboard_of_quick_buttons_is_sent_as_a_checked_one() -> None:
    session = AiohttpSession()
    quick = keyboard(
        [
            button("✅ 101", pick_data(3, 11)),
            button("▫️ 102", HouseholdPick(round_id=3, household_id=12)),
        ],
        4,
    )
    checked = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="✅ 101", callback_data="rh:3:11"),
                InlineKeyboardButton(text="▫️ 102", callback_data="rh:3:12"),
            ]
        ]
    )
    assert json.loads(session.prepare_value(quick, bot=None, files={})) == json.loads(  # type: ignore[arg-type]
        session.prepare_value(checked, bot=None, files={})  # type: ignore[arg-type]
    )
