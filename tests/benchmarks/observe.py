"""What the fleet benchmark watches while it runs, from outside the supervisor.

Everything is read the way an operator could read it: Leases and pods from the API
server, the supervisor's ``/metrics`` (scraped every 15 s, as Prometheus would: at
a thousand nodes the page is megabytes and rendering it is work the supervisor
does), ``/healthz`` latency as a cheap per-second probe of its event loop, its CPU
and RSS from ``/proc``, and the requests the simulator served, which is what the
per-key limit counts.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from . import common

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_WANTED = (
    "salad_vk_event_loop_lag_seconds_bucket",
    "salad_vk_saladcloud_rate_limited_total",
    "salad_vk_saladcloud_requests_total",
    "salad_vk_kubernetes_requests_total",
)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Scrape:
    """The few metric families the report needs, summed over nodes."""

    at: float
    lag_buckets: dict[float, float]
    rate_limited: float
    salad_requests: float
    kube_writes: float


def parse_metrics(text: str, at: float) -> Scrape:
    """Only the lines the report uses: the full page at a thousand nodes is large."""
    lag: dict[float, float] = {}
    rate_limited = salad = writes = 0.0
    for line in text.splitlines():
        if not line.startswith(_WANTED):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match.group("labels") or ""))
        value = float(match.group("value"))
        name = match.group("name")
        if name == _WANTED[0]:
            bound = float(labels["le"])
            lag[bound] = lag.get(bound, 0.0) + value
        elif name == _WANTED[1]:
            rate_limited += value
        elif name == _WANTED[2]:
            salad += value
        elif labels.get("verb") in ("POST", "PUT", "PATCH", "DELETE"):
            writes += value
    return Scrape(at, lag, rate_limited, salad, writes)


def lag_quantile(before: Scrape | None, after: Scrape, quantile: float) -> float | None:
    """The upper bound of the lag bucket holding ``quantile`` of the ticks between two
    scrapes (the histogram is cumulative, so the difference is that interval's)."""
    counts = {
        bound: value - (before.lag_buckets.get(bound, 0.0) if before else 0.0)
        for bound, value in after.lag_buckets.items()
    }
    total = counts.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for bound in sorted(counts):
        if counts[bound] >= quantile * total:
            return bound
    return None


@dataclass
class Sample:
    """One point of the timeline, ``t`` seconds after the benchmark started."""

    t: float
    phase: str
    lease_gap_max: float
    """Largest renewal gap of any Lease renewed since the previous sample."""
    lease_age_max: float
    """Longest any Lease has gone unrenewed, as of this sample."""
    healthz_s: float | None
    cpu_percent: float
    rss_mib: float
    pods_running: int
    pods_total: int


class PodWatcher:
    """List + watch of the pods of one namespace, on a thread: phase and readiness of
    each pod, and when each changed (monotonic time)."""

    def __init__(self, client_factory: Callable[[], httpx.Client], namespace: str) -> None:
        self._client_factory = client_factory
        self._path = f"/api/v1/namespaces/{namespace}/pods"
        self.pods: dict[str, tuple[str, bool]] = {}
        self.changes: list[tuple[float, str, str, bool]] = []
        """(monotonic time, pod, phase, ready) for every change seen."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)

    def start(self) -> PodWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def counts(self) -> tuple[int, int]:
        """(Running, all) pods right now."""
        with self._lock:
            return sum(1 for phase, _ in self.pods.values() if phase == "Running"), len(self.pods)

    def _record(self, pod: Mapping[str, Any], deleted: bool = False) -> None:
        name = str(pod["metadata"]["name"])
        status = pod.get("status") or {}
        phase = str(status.get("phase") or "Pending")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        with self._lock:
            if deleted:
                self.pods.pop(name, None)
                return
            if self.pods.get(name) != (phase, ready):
                self.pods[name] = (phase, ready)
                self.changes.append((time.monotonic(), name, phase, ready))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._client_factory() as kube:
                    listing = kube.get(self._path)
                    listing.raise_for_status()
                    document = listing.json()
                    with self._lock:
                        self.pods = {}
                    for pod in document["items"]:
                        self._record(pod)
                    version = document["metadata"]["resourceVersion"]
                    params = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "120"}
                    with kube.stream("GET", self._path, params=params, timeout=None) as events:
                        for line in events.iter_lines():
                            if self._stop.is_set():
                                return
                            if not line.strip():
                                continue
                            event = json.loads(line)
                            if event.get("type") in ("ADDED", "MODIFIED"):
                                self._record(event["object"])
                            elif event.get("type") == "DELETED":
                                self._record(event["object"], deleted=True)
                            elif event.get("type") == "ERROR":
                                break
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(1.0)


@dataclass
class LeaseGaps:
    """Renewals seen in the Leases of the benchmark's nodes."""

    prefix: str
    last: dict[str, datetime] = field(default_factory=dict)

    def observe(self, leases: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
        """(largest gap between two renewals seen now, longest time unrenewed now)."""
        now = datetime.now(UTC)
        gap = age = 0.0
        for lease in leases:
            name = str(lease["metadata"]["name"])
            renewed = _time((lease.get("spec") or {}).get("renewTime"))
            if not name.startswith(self.prefix) or renewed is None:
                continue
            before = self.last.get(name)
            if before is not None and renewed != before:
                gap = max(gap, (renewed - before).total_seconds())
            self.last[name] = renewed
            age = max(age, (now - renewed).total_seconds())
        return gap, age


class Timeline:
    """Samples every ``interval`` seconds on a thread; metrics every ``scrape_every``."""

    def __init__(
        self,
        *,
        kube_factory: Callable[[], httpx.Client],
        metrics_url: str,
        pid: int,
        pods: PodWatcher,
        lease_prefix: str,
        started: float,
        interval: float = 2.0,
        scrape_every: float = 15.0,
    ) -> None:
        self._kube_factory = kube_factory
        self._metrics_url = metrics_url
        self._pid = pid
        self._pods = pods
        self._gaps = LeaseGaps(lease_prefix)
        self._started = started
        self._interval = interval
        self._scrape_every = scrape_every
        self.phase = "start-up"
        self.samples: list[Sample] = []
        self.scrapes: list[tuple[str, Scrape]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)

    def start(self) -> Timeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def scrape(self) -> Scrape | None:
        """Scrape now (also called at phase boundaries); None if it did not answer."""
        try:
            text = httpx.get(f"{self._metrics_url}/metrics", timeout=60).text
        except httpx.HTTPError:
            return None
        scrape = parse_metrics(text, time.monotonic() - self._started)
        self.scrapes.append((self.phase, scrape))
        return scrape

    def _healthz(self) -> float | None:
        began = time.monotonic()
        try:
            httpx.get(f"{self._metrics_url}/healthz", timeout=30)
        except httpx.HTTPError:
            return None
        return time.monotonic() - began

    def _run(self) -> None:
        usage = common.usage(self._pid)
        at = time.monotonic()
        next_scrape = at
        with self._kube_factory() as kube:
            while not self._stop.wait(max(0.0, at + self._interval - time.monotonic())):
                at = time.monotonic()
                gap = age = 0.0
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    gap, age = self._gaps.observe(kube.get(LEASES).json()["items"])
                healthz = self._healthz()
                try:
                    now_usage = common.usage(self._pid)
                except OSError:
                    return
                elapsed = time.monotonic() - at + self._interval
                cpu = 100 * (now_usage.cpu_seconds - usage.cpu_seconds) / max(elapsed, 1e-6)
                usage = now_usage
                running, total = self._pods.counts()
                self.samples.append(
                    Sample(
                        t=round(at - self._started, 2),
                        phase=self.phase,
                        lease_gap_max=round(gap, 3),
                        lease_age_max=round(age, 3),
                        healthz_s=None if healthz is None else round(healthz, 4),
                        cpu_percent=round(cpu, 1),
                        rss_mib=round(now_usage.rss_mib, 1),
                        pods_running=running,
                        pods_total=total,
                    )
                )
                if at >= next_scrape:
                    self.scrape()
                    next_scrape = at + self._scrape_every

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.samples]


def salad_requests(sim_url: str, since: float) -> list[dict[str, Any]]:
    """The requests the simulator served since monotonic ``since`` (its ``wall`` is
    this machine's monotonic clock, the same as ours)."""
    records = httpx.get(f"{sim_url}/_simulator/requests", timeout=120).json()
    return [r for r in records if r["wall"] >= since]


def per_key_per_minute(
    records: Iterable[Mapping[str, Any]], started: float, step: float = 5.0
) -> list[dict[str, float]]:
    """Requests in the trailing 60 s, per key, every ``step`` seconds: the highest key,
    the median key, and 429s in that window (what the limit counts)."""
    by_key: dict[str, list[float]] = {}
    throttled: list[float] = []
    for record in records:
        by_key.setdefault(str(record["key"]), []).append(float(record["wall"]))
        if int(record["status"]) == 429:
            throttled.append(float(record["wall"]))
    if not by_key:
        return []
    for times in by_key.values():
        times.sort()
    throttled.sort()

    def window(times: list[float], t: float) -> int:
        return bisect.bisect_right(times, t) - bisect.bisect_right(times, t - 60)

    end = max(times[-1] for times in by_key.values())
    series = []
    t = started + step
    while t <= end + step:
        counts = sorted(window(times, t) for times in by_key.values())
        series.append(
            {
                "t": round(t - started, 1),
                "max_key": float(counts[-1]),
                "median_key": float(counts[len(counts) // 2]),
                "throttled": float(window(throttled, t)),
            }
        )
        t += step
    return series
