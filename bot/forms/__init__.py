"""The report form a county uses and its round schedule, read from the config at start."""

from pathlib import Path

from bot.config import Config, ConfigError
from models.form_parse import load_form
from models.forms import Form, FormError
from models.report_saving import Consequences
from models.rounds import RoundSchedule

DEFAULT_FORM_PATH = Path(__file__).resolve().parent / "household.toml"


def load_report_form(config: Config) -> Form:
    """The form of ``[reports] form`` (the shipped one by default), checked as a whole;
    ``ConfigError`` lists every problem, each naming its field."""
    path = Path(config.reports.form) if config.reports.form else DEFAULT_FORM_PATH
    try:
        return load_form(path)
    except FormError as error:
        raise ConfigError(f"[reports] form: {error}") from None


def round_schedule(config: Config) -> RoundSchedule:
    reports = config.reports
    return RoundSchedule(
        open_time=reports.open_time,
        due_time=reports.due_time,
        close_time=reports.close_time,
        timezone=reports.timezone or config.i18n.timezone,
        nobody_home_flag_after=reports.nobody_home_flag_after,
        retention_days=reports.retention_days,
    )


def consequences(config: Config) -> Consequences:
    return Consequences(
        nobody_home_flag_after=config.reports.nobody_home_flag_after,
        command_centre=tuple(config.admins.telegram_ids),
    )
