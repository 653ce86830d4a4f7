"""Where does the supervisor's event loop stall? Loaded into ``salad-vk run`` by the
fleet benchmark's ``--loop-probe`` (this folder on ``PYTHONPATH``); never in production.

With ``SALAD_VK_LOOP_PROBE`` set to a file, it writes one JSON line for every turn of
the event loop whose callbacks ran for more than 50 ms (how long, how many callbacks,
the slowest few named by their task's coroutine chain) and for every cyclic garbage
collection that took more than 10 ms (generation, duration, objects freed). That is
what found this round's stalls: the log redactor, the projects-file look, the node
relist, and the young collections fed by httpx's response cycles
(``docs/benchmarks.md``). It costs two clock reads per callback.
"""

from __future__ import annotations

import os

_OUT = os.environ.get("SALAD_VK_LOOP_PROBE")

if _OUT:
    import asyncio.base_events
    import asyncio.events
    import gc
    import json
    import threading
    import time
    from pathlib import Path
    from typing import Any

    _SINK = Path(_OUT).open("a", buffering=1)  # noqa: SIM115 - open for the process's life
    _HERE = str(Path.cwd()) + "/"
    _WRITING = threading.Lock()
    _TURN: dict[str, Any] = {"busy": 0.0, "count": 0, "slowest": []}
    _GC: dict[str, float] = {}
    _run = asyncio.events.Handle._run
    _run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]

    def _write(record: dict[str, Any]) -> None:
        # One write per line, under a lock: a collection may run on another thread (the
        # /metrics render) between two writes of the loop's.
        line = json.dumps(record) + "\n"
        with _WRITING:
            _SINK.write(line)

    def _chain(coro: Any) -> str:
        """The task's awaits, outermost first; the project's own frames if any."""
        frames: list[str] = []
        while coro is not None and len(frames) < 40:
            code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if code is not None:
                where = code.co_filename.split("site-packages/")[-1].split(_HERE)[-1]
                line = f"@{frame.f_lineno}" if frame is not None else ""
                frames.append(f"{where}:{code.co_name}{line}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        own = [f for f in frames if f.startswith(("nodes/", "supervisor/", "config/"))]
        return " > ".join(own[:3] or frames[-3:])

    def _name(handle: asyncio.events.Handle) -> str:
        owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
        if owner is not None and hasattr(owner, "get_coro"):
            return "task " + _chain(owner.get_coro())
        # Named, never repr()'d: the repr of a bound method is its object's, and an
        # aiohttp response's repr reads (and caches, for good) its headers, None
        # before they arrive: the request then failed with an AttributeError.
        callback = handle._callback  # type: ignore[attr-defined]
        return str(getattr(callback, "__qualname__", type(callback).__qualname__))

    def _timed_run(self: asyncio.events.Handle) -> None:
        started = time.perf_counter()
        _run(self)
        took = time.perf_counter() - started
        _TURN["busy"] += took
        _TURN["count"] += 1
        if took > 0.005:
            _TURN["slowest"].append((round(took, 4), _name(self)))

    def _timed_run_once(self: Any) -> None:
        _TURN.update(busy=0.0, count=0, slowest=[])
        cpu = time.thread_time()
        _run_once(self)
        if _TURN["busy"] > 0.05:
            slowest = sorted(_TURN["slowest"], reverse=True)[:5]
            # The loop thread's CPU time over the whole turn (the wait in select is
            # nearly free): far below "busy", the thread was waiting, for the
            # interpreter lock or for a core, not working.
            cpu = round(time.thread_time() - cpu, 4)
            record = {"t": time.monotonic(), "busy": round(_TURN["busy"], 4), "cpu": cpu}
            _write({**record, "callbacks": _TURN["count"], "slowest": slowest})

    def _collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            # How many objects the collection is about to walk: the youngest
            # generation's own (the older ones it merges are not counted here).
            _GC["young"] = len(gc.get_objects(0)) if info["generation"] == 0 else -1
            _GC["started"] = time.perf_counter()
            _GC["cpu"] = time.thread_time()
            return
        took = time.perf_counter() - _GC.get("started", time.perf_counter())
        if took > 0.01:
            cpu = round(time.thread_time() - _GC.get("cpu", time.thread_time()), 4)
            record = {"t": time.monotonic(), "gc": info["generation"], "took": round(took, 4)}
            record["cpu"] = cpu
            if _GC.get("young", -1) >= 0:
                record["young"] = _GC["young"]
            thread = threading.current_thread().name
            _write({**record, "freed": info["collected"], "thread": thread})

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
    asyncio.base_events.BaseEventLoop._run_once = _timed_run_once  # type: ignore[attr-defined]
    gc.callbacks.append(_collected)
