"""Quiet hours: the night in the county's time zone, when only urgent messages go out."""

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    """From ``start`` to ``end`` local time (across midnight when ``end`` < ``start``)."""

    start: time
    end: time
    zone: ZoneInfo

    def hold(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) falls in quiet hours."""
        local = moment.astimezone(self.zone).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def quiet_hours(enabled: bool, start: time, end: time, zone: str) -> QuietHours | None:
    return QuietHours(start, end, ZoneInfo(zone)) if enabled else None
