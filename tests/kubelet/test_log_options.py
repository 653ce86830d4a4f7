"""A /containerLogs query read as the kubelet reads v1.PodLogOptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supervisor.kubelet.log_options import (
    INVALID,
    UNDECODABLE,
    LogOptions,
    OptionsRefused,
    parse_log_options,
)

NOW = datetime(2026, 4, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ({}, LogOptions()),
        ({"tailLines": "5"}, LogOptions(tail_lines=5)),
        ({"tail": "5"}, LogOptions(tail_lines=5)),
        ({"tail": "all", "tailLines": "5"}, LogOptions()),
        ({"tailLines": "0"}, LogOptions(tail_lines=0)),
        ({"sinceSeconds": "30"}, LogOptions(since_seconds=30)),
        (
            {"sinceTime": "2026-04-03T11:59:00Z"},
            LogOptions(since_time=datetime(2026, 4, 3, 11, 59, tzinfo=UTC)),
        ),
        ({"timestamps": "true", "follow": "1"}, LogOptions(timestamps=True, follow=True)),
        ({"limitBytes": "100"}, LogOptions(limit_bytes=100)),
        ({"previous": "True"}, LogOptions(previous=True)),
        ({"stream": "All"}, LogOptions(stream="All")),
        ({"tailLines": ""}, LogOptions()),
    ],
)
def test_options_decode_as_the_kubelet_decodes_them(
    query: dict[str, str], options: LogOptions
) -> None:
    assert parse_log_options(query) == options


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"tailLines": "five"}, 400, UNDECODABLE),
        ({"follow": "yes"}, 400, UNDECODABLE),
        ({"sinceTime": "yesterday"}, 400, UNDECODABLE),
        ({"sinceTime": "2026-04-03T11:59:00"}, 400, UNDECODABLE),
        ({"tailLines": "-1"}, 422, INVALID),
        ({"sinceSeconds": "0"}, 422, INVALID),
        ({"limitBytes": "0"}, 422, INVALID),
        ({"sinceSeconds": "5", "sinceTime": "2026-04-03T11:59:00Z"}, 422, INVALID),
    ],
)
def test_what_the_kubelet_refuses_is_refused_with_its_status_and_words(
    query: dict[str, str], status: int, message: str
) -> None:
    with pytest.raises(OptionsRefused) as refused:
        parse_log_options(query)

    assert (refused.value.status, str(refused.value)) == (status, message)


def test_a_stream_of_its_own_cannot_be_given_as_saladcloud_keeps_one_log() -> None:
    with pytest.raises(OptionsRefused) as refused:
        parse_log_options({"stream": "Stdout"})

    assert refused.value.status == 400
    assert "Stdout" in str(refused.value)


def test_since_is_the_later_of_since_seconds_and_since_time() -> None:
    assert LogOptions(since_seconds=30).since(NOW) == NOW - timedelta(seconds=30)
    assert LogOptions().since(NOW) is None
    later = LogOptions(since_time=NOW - timedelta(seconds=10))
    assert later.since(NOW) == NOW - timedelta(seconds=10)
