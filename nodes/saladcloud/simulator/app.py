"""The simulated API over HTTP: aiohttp routes under ``/api/public``.

Every API request passes, in this order: authentication (``Salad-Api-Key``: missing
-> 401, unknown or revoked -> 403), the key's per-minute budget (-> 429), the fault
plan (latency, 429 storm or throttling, 5xx), then the catch-up of simulated time
and the operation itself. A dropped connection is decided last: the operation was
applied, its answer is lost, as when a proxy dies mid-response.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .keys import KeyState, fingerprint, retry_after_header
from .problems import ApiProblem
from .validation import parse_json
from .world import RequestRecord, World

API_PREFIX = "/api/public"
WORLD = web.AppKey("world", World)

_JSON = "application/json"
_MERGE_PATCH = "application/merge-patch+json"
_ORG = API_PREFIX + "/organizations/{organization}"
_GROUPS = _ORG + "/projects/{project}/containers"
_GROUP = _GROUPS + "/{name}"
_INSTANCE = _GROUP + "/instances/{instance}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTML_ERROR = """<!DOCTYPE html>
<html><head><title>{status} {reason}</title></head>
<body><center><h1>{status} {reason}</h1></center><hr><center>cloudflare</center></body></html>
"""


def problem_response(problem: ApiProblem) -> web.Response:
    return web.json_response(problem.body(), status=problem.status, headers=problem.headers)


def _json(document: Any, status: int = 200, content_type: str = _JSON) -> web.Response:
    return web.Response(
        body=json.dumps(document, separators=(",", ":")).encode(),
        status=status,
        content_type=content_type,
    )


async def _body(request: web.Request, content_type: str) -> Any:
    if request.content_type != content_type:
        raise ApiProblem(
            415,
            "Unsupported Media Type",
            f"the request body must be sent as {content_type}, not {request.content_type}",
        )
    return parse_json(await request.read())


def _world(request: web.Request) -> World:
    return request.app[WORLD]


def _project(request: web.Request) -> tuple[str, str]:
    return request.match_info["organization"], request.match_info["project"]


def _group(request: web.Request) -> tuple[str, str, str]:
    """Organization, project and group name of the path (the arguments ``World`` takes)."""
    return (*_project(request), request.match_info["name"])


def _instance(request: web.Request) -> tuple[str, str, str, str]:
    return (*_group(request), request.match_info["instance"])


# --- container groups ------------------------------------------------------------------------


async def list_container_groups(request: web.Request) -> web.Response:
    return _json(_world(request).list_groups(*_project(request)))


async def create_container_group(request: web.Request) -> web.Response:
    organization, project = _project(request)
    world = _world(request)
    world.project(organization, project)
    document = await _body(request, _JSON)
    group = world.create_group(organization, project, document)
    location = f"/organizations/{organization}/projects/{project}/containers/{group['name']}"
    response = _json(group, status=201)
    response.headers["Location"] = location
    return response


async def get_container_group(request: web.Request) -> web.Response:
    return _json(_world(request).get_group(*_group(request)))


async def update_container_group(request: web.Request) -> web.Response:
    world, ids = _world(request), _group(request)
    world.group(*ids)
    document = await _body(request, _MERGE_PATCH)
    # The spec declares this 200 as application/merge-patch+json (NOTES.md section 1).
    return _json(world.update_group(*ids, document), content_type=_MERGE_PATCH)


async def delete_container_group(request: web.Request) -> web.Response:
    _world(request).delete_group(*_group(request))
    return web.Response(status=202)


async def start_container_group(request: web.Request) -> web.Response:
    _world(request).start_group(*_group(request))
    return web.Response(status=202)


async def stop_container_group(request: web.Request) -> web.Response:
    _world(request).stop_group(*_group(request))
    return web.Response(status=202)


async def get_system_logs(request: web.Request) -> web.Response:
    return _json(_world(request).system_logs(*_group(request)))


# --- instances ---------------------------------------------------------------------------


async def list_container_group_instances(request: web.Request) -> web.Response:
    return _json(_world(request).list_instances(*_group(request)))


async def get_container_group_instance(request: web.Request) -> web.Response:
    # The spec lists 202 (sic) as this operation's success status.
    return _json(_world(request).get_instance(*_instance(request)), status=202)


async def update_container_group_instance(request: web.Request) -> web.Response:
    world = _world(request)
    world.group(*_group(request))
    document = await _body(request, _MERGE_PATCH)
    return _json(world.update_instance(*_instance(request), document))


def _instance_action(action: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        _world(request).instance_action(*_instance(request), action)
        return web.Response(status=202)

    return handle


# --- organization ------------------------------------------------------------------------


async def list_gpu_classes(request: web.Request) -> web.Response:
    return _json(_world(request).list_gpu_classes(request.match_info["organization"]))


async def get_quotas(request: web.Request) -> web.Response:
    return _json(_world(request).quotas(request.match_info["organization"]))


async def query_log_entries(request: web.Request) -> web.Response:
    world = _world(request)
    organization = request.match_info["organization"]
    world.organization(organization)
    document = await _body(request, _JSON)
    return _json(world.query_log_entries(organization, document))


# --- the gate every API request passes -----------------------------------------------------


@web.middleware
async def api_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX + "/") and request.path != API_PREFIX:
        return await handler(request)
    world = _world(request)
    key = request.headers.get("Salad-Api-Key")
    status = 500
    try:
        response, drop = await _serve(request, handler, world, key)
        status = response.status
        if drop and request.transport is not None:
            request.transport.abort()
        return response
    finally:
        world.requests.append(
            RequestRecord(
                wall=world.wall(),
                key=fingerprint(key) if key else None,
                method=request.method,
                path=request.path,
                status=status,
            )
        )


def _admitted(world: World, key: str | None) -> KeyState:
    """The key's state if it may make this request now; else a 401, 403 or 429."""
    state = world.keys.authenticate(key)
    wait = world.keys.admit(state)
    if wait is not None:
        state.rate_limited += 1
        headers = {"Retry-After": retry_after_header(wait)} if world.options.retry_after else {}
        raise ApiProblem(
            429,
            "Too Many Requests",
            f"the API key exceeded its limit of {world.keys.rate_limit} requests per minute",
            headers=headers,
        )
    return state


async def _serve(
    request: web.Request, handler: Handler, world: World, key: str | None
) -> tuple[web.StreamResponse, bool]:
    try:
        state = _admitted(world, key)
    except ApiProblem as problem:
        return problem_response(problem), False
    decision = world.faults.decide()
    if decision.latency > 0:
        await asyncio.sleep(decision.latency)
    if decision.throttle:
        state.rate_limited += 1
        headers = {"Retry-After": "1"} if world.options.retry_after else {}
        throttled = ApiProblem(
            429, "Too Many Requests", "the API is rate limiting requests", headers=headers
        )
        return problem_response(throttled), False
    if decision.error_status is not None:
        return _injected_error(decision.error_status, decision.html_error), False
    # A project's operations see that project alone; the organization's (log entries
    # across its projects) see everything.
    organization = request.match_info.get("organization")
    project = request.match_info.get("project")
    world.advance((organization, project) if organization and project else None)
    try:
        return await handler(request), decision.drop
    except ApiProblem as problem:
        return problem_response(problem), decision.drop
    except web.HTTPException as exc:
        if exc.status == 404:
            unknown = ApiProblem(404, "Not Found", f"no API operation at {request.path}")
        else:
            unknown = ApiProblem(exc.status, exc.reason)
        return problem_response(unknown), decision.drop


def _injected_error(status: int, html: bool) -> web.Response:
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
    if html:
        return web.Response(
            text=_HTML_ERROR.format(status=status, reason=reason),
            status=status,
            content_type="text/html",
        )
    return problem_response(ApiProblem(status, reason, "simulated fault"))


def add_api_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(_GROUPS, list_container_groups)
    router.add_post(_GROUPS, create_container_group)
    router.add_get(_GROUP, get_container_group)
    router.add_patch(_GROUP, update_container_group)
    router.add_delete(_GROUP, delete_container_group)
    router.add_post(_GROUP + "/start", start_container_group)
    router.add_post(_GROUP + "/stop", stop_container_group)
    router.add_get(_GROUP + "/system-logs", get_system_logs)
    router.add_get(_GROUP + "/instances", list_container_group_instances)
    router.add_get(_INSTANCE, get_container_group_instance)
    router.add_patch(_INSTANCE, update_container_group_instance)
    for action in ("reallocate", "recreate", "restart"):
        router.add_post(_INSTANCE + "/" + action, _instance_action(action))
    router.add_get(_ORG + "/gpu-classes", list_gpu_classes)
    router.add_get(_ORG + "/quotas", get_quotas)
    router.add_post(_ORG + "/log-entries", query_log_entries)
