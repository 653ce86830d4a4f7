"""Error answers of the simulated API: RFC 7807 ProblemDetails, as SaladCloud sends them."""

from __future__ import annotations

from typing import Any


class ApiProblem(Exception):
    """An error answer; raised anywhere in the simulator, rendered by the app."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        problem_type: str = "about:blank",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.problem_type = problem_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": self.problem_type,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            document["detail"] = self.detail
        return document


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, "Not Found", f"{what} does not exist")
