"""Schedule times, pure: `every` durations, five-field cron expressions, and the next due time."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from runtime.config.manifest import ScheduleSpec


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)


_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


def parse_every(value: str | float) -> float:
    """`30s`, `5m`, `1h`, `2d` or a number of seconds → seconds; ValueError when unreadable."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 30s, 5m, 1h or 1d")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds < 1:
        raise ValueError(f"{value!r} is shorter than one second")
    return seconds


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"{name!r} is not a known time zone (such as Europe/London)") from e


@dataclass(frozen=True)
class Cron:
    """Five fields: minute hour day-of-month month day-of-week (0 or 7 = Sunday, names allowed)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool  # day-of-month was `*`
    any_weekday: bool  # day-of-week was `*`

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"{text!r} needs 5 fields: minute hour day month weekday")
        minutes = _field(fields[0], 0, 59, {})
        hours = _field(fields[1], 0, 23, {})
        days = _field(fields[2], 1, 31, {})
        months = _field(fields[3], 1, 12, _MONTHS)
        weekdays = frozenset(d % 7 for d in _field(fields[4], 0, 7, _DAYS))
        return cls(minutes, hours, days, months, weekdays, fields[2] == "*", fields[4] == "*")

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        # As in cron: when both day fields are restricted, either may match.
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after `moment` (an aware datetime), in its zone."""
        tz = moment.tzinfo
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):  # Feb 29 schedules need up to a few years
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                        if candidate >= start:
                            return candidate
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        raise ValueError("this cron expression never matches")


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"{part!r}: the step must be a positive number")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _value(a, names), _value(b, names)
        else:
            first = _value(body, names)
            last = high if step else first
        if not (low <= first <= high and low <= last <= high and first <= last):
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step or 1))
    return frozenset(values)


def _value(text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number" + (" or a name" if names else ""))
    return int(text)


def next_due(spec: ScheduleSpec, now: float) -> float:
    """The next due time (epoch seconds) strictly after `now`."""
    if spec.every:
        # Aligned to the epoch, so every runtime computes the same due times.
        return (math.floor(now / spec.every) + 1) * spec.every
    assert spec.cron is not None
    moment = datetime.fromtimestamp(now, zone(spec.timezone))
    return Cron.parse(spec.cron).next_after(moment).timestamp()
