"""The options of a ``/containerLogs`` request, read and checked as the kubelet does.

The kubelet decodes the query into ``v1.PodLogOptions`` (the legacy ``tail`` parameter
counts as ``tailLines``, ``tail=all`` as none), answers 400 ``{"message": "Unable to
decode query."}`` to what does not decode and 422 ``{"message": "Invalid request."}`` to
what ``ValidatePodLogOptions`` refuses (a negative ``tailLines``, ``sinceSeconds`` or
``limitBytes`` below 1, both ``sinceSeconds`` and ``sinceTime``). The same here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_STREAM_ALL = "All"

UNDECODABLE = '{"message": "Unable to decode query."}'
INVALID = '{"message": "Invalid request."}'


class OptionsRefused(ValueError):
    """The query cannot be log options; ``status`` and ``str()`` are the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LogOptions:
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False
    previous: bool = False
    stream: str | None = None

    def since(self, now: datetime) -> datetime | None:
        """The oldest instant to show: the later of ``sinceSeconds`` ago and ``sinceTime``."""
        bounds = []
        if self.since_seconds is not None:
            # The kubelet takes any int64; further back than datetime reaches is "all".
            try:
                bounds.append(now - timedelta(seconds=self.since_seconds))
            except OverflowError:
                bounds.append(datetime.min.replace(tzinfo=now.tzinfo))
        if self.since_time is not None:
            bounds.append(self.since_time)
        return max(bounds) if bounds else None


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise OptionsRefused(400, UNDECODABLE) from None


def _boolean(value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise OptionsRefused(400, UNDECODABLE)


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise OptionsRefused(400, UNDECODABLE) from None
    if moment.tzinfo is None:
        raise OptionsRefused(400, UNDECODABLE)
    return moment


def parse_log_options(query: Mapping[str, str]) -> LogOptions:
    """``LogOptions`` from the request's query parameters, or ``OptionsRefused``."""
    values = dict(query)
    tail = values.pop("tail", None)
    if tail is not None and tail != "":
        if tail == "all":
            values.pop("tailLines", None)
        else:
            values["tailLines"] = tail

    def get(name: str) -> str | None:
        value = values.get(name)
        return value if value not in (None, "") else None

    tail_lines = get("tailLines")
    since_seconds = get("sinceSeconds")
    since_time = get("sinceTime")
    limit_bytes = get("limitBytes")
    options = LogOptions(
        tail_lines=_integer(tail_lines) if tail_lines is not None else None,
        since_seconds=_integer(since_seconds) if since_seconds is not None else None,
        since_time=_instant(since_time) if since_time is not None else None,
        timestamps=_boolean(get("timestamps") or "false"),
        limit_bytes=_integer(limit_bytes) if limit_bytes is not None else None,
        follow=_boolean(get("follow") or "false"),
        previous=_boolean(get("previous") or "false"),
        stream=get("stream"),
    )
    if (
        (options.tail_lines is not None and options.tail_lines < 0)
        or (options.since_seconds is not None and options.since_seconds < 1)
        or (options.limit_bytes is not None and options.limit_bytes < 1)
        or (options.since_seconds is not None and options.since_time is not None)
    ):
        raise OptionsRefused(422, INVALID)
    if options.stream not in (None, _STREAM_ALL):
        raise OptionsRefused(
            400,
            f"unable to return the given log stream: {options.stream!r}: SaladCloud keeps "
            "stdout and stderr as one log",
        )
    return options
