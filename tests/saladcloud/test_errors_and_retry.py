"""Which failures are permanent, what their messages say, and how long a retry waits."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from nodes.saladcloud.errors import (
    SaladAuthError,
    SaladBadRequest,
    SaladError,
    SaladNameConflict,
    SaladNotFound,
    SaladProtocolError,
    SaladRateLimited,
    SaladUnavailable,
)
from nodes.saladcloud.retry import RetryPolicy, parse_retry_after


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (SaladBadRequest("create_container_group", status=400), True),
        (SaladAuthError("list_container_groups", status=401), True),
        (SaladAuthError("list_container_groups", status=403), True),
        (SaladNotFound("get_container_group", status=404), True),
        (SaladError("create_container_group", status=409), True),
        (SaladError("create_container_group", status=422), True),
        (SaladRateLimited("list_container_groups", status=429), False),
        (SaladUnavailable("list_container_groups", status=503), False),
        (SaladUnavailable("list_container_groups"), False),
        (SaladError("list_container_groups", status=408), False),
        (SaladProtocolError("get_container_group", status=200), False),
    ],
)
def test_only_answers_that_repeat_themselves_are_permanent(
    error: SaladError, permanent: bool
) -> None:
    assert error.permanent is permanent


def test_the_message_is_one_line_with_operation_status_type_title_and_detail() -> None:
    error = SaladNameConflict(
        "create_container_group",
        status=400,
        problem_type="name_conflict",
        title="Name Conflict",
        detail="pod-1 exists",
    )

    assert str(error) == (
        "create_container_group - HTTP 400 - name_conflict - Name Conflict: pod-1 exists"
    )
    assert not error.after_retry


def test_about_blank_is_left_out_of_the_message() -> None:
    error = SaladNotFound(
        "get_container_group", status=404, problem_type="about:blank", title="Not Found"
    )

    assert str(error) == "get_container_group - HTTP 404 - Not Found"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 4, 3, 12, 0, 0, tzinfo=UTC)

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Fri, 03 Apr 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Fri, 03 Apr 2026 11:00:00 GMT", now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "nan"])
def test_an_unreadable_retry_after_counts_as_absent(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, rng=random.Random(1))

    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.backoff(retry) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling, "the whole range is used"


def test_a_server_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=60.0, jitter=False)

    assert policy.delay(1, 12.0) == 12.0
    assert policy.delay(1, 3600.0) == 60.0
    assert policy.delay(3, None) == 2.0


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
