"""The <clock> element and its timers."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.xml.base import INT, UINT, YESNO, XMLModel, attr, children, enum

TIMERS = ("platform", "pit", "rtc", "hpet", "tsc", "kvmclock", "hypervclock", "armvtimer")


@dataclass
class Timer(XMLModel):
    TAG = "timer"
    name: str | None = attr("name", enum(*TIMERS), required=True)
    track: str | None = attr("track", enum("boot", "guest", "wall", "realtime"))
    tickpolicy: str | None = attr("tickpolicy", enum("delay", "catchup", "merge", "discard"))
    present: bool | None = attr("present", YESNO)
    frequency: int | None = attr("frequency", UINT)
    mode: str | None = attr("mode", enum("auto", "native", "emulate", "paravirt", "smpsafe"))


@dataclass
class Clock(XMLModel):
    TAG = "clock"
    offset: str | None = attr(
        "offset", enum("utc", "localtime", "timezone", "variable", "absolute", error="unknown clock offset '{}'")
    )
    timezone: str | None = attr("timezone")
    adjustment: int | None = attr("adjustment", INT)
    basis: str | None = attr("basis", enum("utc", "localtime"))
    start: int | None = attr("start", UINT)
    timers: list[Timer] = children("timer", Timer)
