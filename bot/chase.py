"""The chase ladder and the daily summary's time, as the domain takes them, from the
config's ``[chase]`` section."""

from datetime import timedelta

from bot.config import Config
from models.chase import Ladder, LadderStep
from models.org import Level
from models.summary import SummaryTime


def ladder_of(config: Config) -> Ladder:
    return Ladder(
        steps=tuple(
            LadderStep(timedelta(minutes=step.after_min), Level(step.level), step.officers)
            for step in config.chase.steps
        ),
        horizon=timedelta(minutes=config.chase.horizon_min),
        timezone=config.reports.timezone or config.i18n.timezone,
        command_centre=tuple(config.admins.telegram_ids),
    )


def summary_time_of(config: Config) -> SummaryTime:
    return SummaryTime(
        at=config.chase.summary_time,
        timezone=config.reports.timezone or config.i18n.timezone,
        officers=config.chase.summary_officers,
    )
