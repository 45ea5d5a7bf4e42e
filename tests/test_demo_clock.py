"""The demo and the soak play the day on the real clock: begun at any hour, the day they
play lies inside one day of the clock they use (the county's when it fits)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config
from bot.demo.day import DAY_ENDS, DAY_STARTS, county_clock, round_schedule_zone


def test_the_countys_clock_is_kept_in_its_day() -> None:
    config = Config()
    morning = datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert county_clock(config, morning) is None
    assert config.i18n.timezone == "Asia/Shanghai"


@pytest.mark.parametrize("hour", range(24))
@pytest.mark.parametrize("minute", [0, 59])
def test_begun_at_any_hour_the_day_fits_in_the_clock_used(hour: int, minute: int) -> None:
    config = Config()
    now = datetime(2026, 12, 3, hour, minute, tzinfo=UTC)
    note = county_clock(config, now)
    local = now.astimezone(round_schedule_zone(config))
    assert DAY_STARTS <= local.time() < DAY_ENDS, (note, local)
    # At least three hours of the day remain before midnight on that clock.
    assert local.date() == (local + timedelta(hours=2, minutes=59)).date()
    if note is not None:
        assert config.i18n.timezone.startswith("Etc/GMT")
        assert f"{local:%H:%M}" in note


def test_near_midnight_in_the_county_the_demo_says_which_clock_it_uses() -> None:
    config = Config()
    late = datetime(2026, 12, 3, 23, 55, tzinfo=ZoneInfo("Asia/Shanghai"))
    note = county_clock(config, late)
    assert note is not None and "23:55 in Asia/Shanghai" in note
    assert late.astimezone(round_schedule_zone(config)).hour == 9
