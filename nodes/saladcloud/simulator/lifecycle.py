"""How one simulated container group and its instances move through their states.

This is the simulator's model of SaladCloud, the truth its tests and the demo rely on.
All times are *simulated* seconds (see ``clock.SimClock``); every duration below is
drawn once, as ``base * uniform(0.8, 1.2)``, from a random stream seeded by the run's
``--seed`` and the group's organization/project/name, so one seed and one sequence of
requests always replay the same history.

Group ``current_state.status`` (derived, in this order):

* ``failed``    the image could not be prepared (an image matching ``--fail-image``).
                SaladCloud's deployment-lifecycle page: "A container group can only fail
                if there was a problem in the Preparing process" (pull, registry
                authentication, store or compress). A container's exit never fails it.
* ``succeeded`` every instance exited 0 under ``on_failure`` or ``never`` (a guess: the
                docs and the spec do not describe ``succeeded``).
* ``pending``   "Preparing": the image is pulled, compressed and stored; PREPARE = 30 s
                after create (and again after ``start`` of a failed group or a patch
                of a failed group's image).
* ``stopped``   prepared but not started (``autostart_policy: false``) or stopped.
* ``running``   started, and an instance has reached ``running`` since the start. It
                stays ``running`` while an interrupted instance is reallocated
                (``running_count`` drops to 0), as the real API documents. A started
                group with ``replicas: 0`` is ``running`` too.
* ``deploying`` started, no instance has reached ``running`` yet.

Instance ``state`` of each of the ``replicas`` instances, once the group is prepared
and started: ``allocating`` (ALLOCATE = 20 s, looking for a node) -> ``downloading``
(DOWNLOAD = 40 s, ``pulling_progress`` rises 0 -> 100) -> ``creating`` (CREATE = 10 s)
-> ``running`` (``started: true``; ``ready: true`` at once, or after the readiness
probe's ``initial_delay_seconds``). So a new group runs ~100 simulated seconds after
its create. ``instance_status_counts.creating_count`` counts ``downloading`` and
``creating`` (the API has no downloading count).

What changes the course:

* ``stop``: status ``stopped`` at once; every instance goes ``stopping`` for
  STOP = 10 s, then disappears. Stopping a stopped, failed or succeeded group
  changes nothing.
* ``start``: a stopped group deploys new instances (no new preparing); a pending one
  deploys when preparing ends; a failed one prepares again; a succeeded one deploys
  again. Starting a started group changes nothing.
* ``delete``: the group is gone from every API answer at once (404 afterwards). Its
  name stays taken in the project forever.
* patch: ``replicas`` adds ``allocating`` instances or stops the newest extra ones.
  A change of ``container``, a probe, ``networking`` or ``country_codes`` is a new
  ``version``: instances redeploy (``allocating`` for new countries, ``downloading``
  for a new image, ``creating`` otherwise) and ``pending_change`` is true until all
  run the new version. ``display_name``, ``replicas`` and the autoscaling fields do
  not change the version.
* container exit (images matching ``--exit-image PATTERN=CODE@SECONDS`` exit after
  running that long; the control API can make any group's instances exit): the
  event ``Instance Exited:CODE``, then by ``restart_policy``: ``always`` restarts
  on the same node (``creating``) after exit 0 and reallocates (``allocating``, new
  ``machine_id``) after any other code ("they will be blocked from the current node
  and reallocated to another node", managing-deployments docs); ``on_failure``
  reallocates after a non-zero code and retires the instance after 0; ``never``
  retires it after any code. When no instance is left and every one exited 0, the
  group is ``succeeded``. After a non-zero exit under ``never`` the group is *not*
  ``failed`` (see above): it stays ``running`` with no instance, and the exit is known
  only from its system event. That is a guess: the docs say what ``failed`` is not,
  but not what such a group shows.
* ``restart`` / ``recreate`` of an instance (its own endpoints) act on the container
  on its node: a ``creating`` or ``running`` instance goes back to ``creating`` on the
  same machine, with the event ``Instance Restarted`` / ``Instance Recreated``. An
  instance with no container yet (``allocating``, with no machine, or
  ``downloading``) keeps its course: the request is accepted and changes nothing (a
  guess: the docs only say running containers "can be reallocated, recreated, or
  restarted"). ``reallocate`` works in any state but ``stopping``.
* interruption (``--interrupt-rate`` per running instance per simulated hour, or
  the control API): ``Instance Interrupted (Priority)``, then reallocation.

``current_state.start_time`` is when the current run began (create, or the last
``start``); ``finish_time`` when it ended (stop, failure, success), and equal to
``start_time`` while it has not.
"""

from __future__ import annotations

import fnmatch
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from .options import ExitRule

PREPARE = 30.0
ALLOCATE = 20.0
DOWNLOAD = 40.0
CREATE = 10.0
STOP = 10.0

ACTIVE_STATES = ("allocating", "downloading", "creating", "running")

_ACTION_EVENTS = {"restart": "Instance Restarted", "recreate": "Instance Recreated"}
"""System event names as SaladCloud's system-events page lists them."""


@dataclass
class SystemEvent:
    """One entry of ``get_system_logs`` (and an ``instance_controller`` log entry)."""

    name: str
    time: float
    instance_id: str | None
    machine_id: str | None
    version: int


@dataclass
class LogLine:
    """One log entry of ``query_log_entries`` before rendering."""

    time: float
    resource_type: str
    severity: str
    text: str
    labels: dict[str, str]


@dataclass
class Instance:
    id: str
    machine_id: str
    state: str
    since: float
    until: float | None
    version: int
    running_event: str | None = None
    """What ends a ``running`` state at ``until``: ``exit:CODE`` or ``interrupt``."""
    ready_at: float | None = None
    deletion_cost: int = 0


@dataclass
class Group:
    organization: str
    project: str
    name: str
    spec: dict[str, Any]
    """The create body as the API took it, with every patch merged in."""
    created: float
    seed: int
    fail_patterns: tuple[str, ...]
    exit_rules: tuple[ExitRule, ...]
    interrupt_rate: float
    id: str = field(init=False)
    updated: float = 0.0
    version: int = 1
    prepared: bool = False
    prepare_until: float | None = None
    image_hash: str | None = None
    started: bool = False
    outcome: str | None = None
    description: str | None = None
    run_started: float = 0.0
    run_finished: float | None = None
    reached_running: bool = False
    retired: int = 0
    """Instances of the current run that exited for good; they count toward ``replicas``."""
    exited_with_error: bool = False
    """An instance of the current run exited non-zero: the run cannot be ``succeeded``."""
    status: str = "pending"
    instances: list[Instance] = field(default_factory=list)
    deleted_at: float | None = None
    dns: str | None = None
    system_events: list[SystemEvent] = field(default_factory=list)
    log_lines: list[LogLine] = field(default_factory=list)
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        seed = f"{self.seed}/{self.organization}/{self.project}/{self.name}"
        self.rng = random.Random(seed)  # noqa: S311 - replayable, not secret
        self.id = self._uuid()
        self.updated = self.created
        self.run_started = self.created
        self.started = bool(self.spec.get("autostart_policy"))
        self.prepare_until = self.created + self._duration(PREPARE)
        if self.spec.get("networking") is not None:
            self.dns = self._dns_name()
        self._log(
            "deployment_controller", "info", f"container group {self.name} created", self.created
        )

    # --- what the API shows ------------------------------------------------------------

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def image(self) -> str:
        return str(self.spec["container"]["image"])

    @property
    def replicas(self) -> int:
        return int(self.spec.get("replicas") or 0)

    @property
    def restart_policy(self) -> str:
        return str(self.spec.get("restart_policy", "always"))

    @property
    def pending_change(self) -> bool:
        return any(i.version != self.version for i in self.instances if i.state != "stopping")

    def counts(self) -> dict[str, int]:
        states = [i.state for i in self.instances]
        return {
            "allocating_count": states.count("allocating"),
            "creating_count": states.count("downloading") + states.count("creating"),
            "running_count": states.count("running"),
            "stopping_count": states.count("stopping"),
        }

    def _derive_status(self) -> str:
        if self.outcome is not None:
            return self.outcome
        if not self.prepared:
            return "pending"
        if not self.started:
            return "stopped"
        if self.reached_running or self.replicas == 0:
            return "running"
        return "deploying"

    # --- time ----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply every scheduled transition up to ``now``, each at its own time."""
        while not self.deleted:
            due = self._next_due()
            if due is None or due[0] > now:
                return
            at, instance = due
            if instance is None:
                self._prepared(at)
            else:
                self._instance_step(instance, at)
            self._refresh(at)

    def _next_due(self) -> tuple[float, Instance | None] | None:
        best: tuple[float, Instance | None] | None = None
        if self.prepare_until is not None:
            best = (self.prepare_until, None)
        for instance in self.instances:
            if instance.until is not None and (best is None or instance.until < best[0]):
                best = (instance.until, instance)
        return best

    def _refresh(self, at: float) -> None:
        status = self._derive_status()
        if status != self.status:
            self.status = status
            self.updated = at
            severity = "error" if status == "failed" else "info"
            text = f"container group {self.name} is {status}"
            if self.description:
                text += f": {self.description}"
            self._log("deployment_controller", severity, text, at)

    def _prepared(self, at: float) -> None:
        self.prepare_until = None
        image = self.image
        if any(fnmatch.fnmatchcase(image, pattern) for pattern in self.fail_patterns):
            self.outcome = "failed"
            self.description = f"Failed to pull image {image}: manifest unknown"
            self.run_finished = at
            self._event("Image Pull Failed", at, None)
            return
        self.prepared = True
        self.image_hash = "sha256:" + self.rng.getrandbits(256).to_bytes(32, "big").hex()
        if self.started:
            self._deploy(at)

    def _instance_step(self, instance: Instance, at: float) -> None:
        if instance.state == "allocating":
            instance.machine_id = instance.machine_id or self._uuid()
            self._event("Instance Allocated", at, instance)
            self._enter(instance, "downloading", at, DOWNLOAD)
        elif instance.state == "downloading":
            self._event("Image Download Completed", at, instance)
            self._enter(instance, "creating", at, CREATE)
        elif instance.state == "creating":
            self._run(instance, at)
        elif instance.state == "running":
            if instance.running_event == "interrupt":
                self.interrupt(instance, at)
            elif instance.running_event and instance.running_event.startswith("exit:"):
                self.exit(instance, int(instance.running_event.removeprefix("exit:")), at)
        elif instance.state == "stopping":
            self.instances.remove(instance)
            self._event("Instance Stopped", at, instance)

    def _run(self, instance: Instance, at: float) -> None:
        instance.version = self.version
        instance.state = "running"
        instance.since = at
        instance.until = None
        instance.running_event = None
        self.reached_running = True
        probe = self.spec.get("readiness_probe") or {}
        instance.ready_at = at + float(probe.get("initial_delay_seconds", 0))
        self._event("Instance Started", at, instance)
        self._container_log(instance, at, f"starting {self.image}")
        candidates: list[tuple[float, str]] = []
        for rule in self.exit_rules:
            if rule.matches(self.image):
                candidates.append((at + rule.after, f"exit:{rule.code}"))
                break
        if self.interrupt_rate > 0:
            candidates.append(
                (at + self.rng.expovariate(self.interrupt_rate / 3600.0), "interrupt")
            )
        if candidates:
            instance.until, instance.running_event = min(candidates)

    def _enter(self, instance: Instance, state: str, at: float, base: float) -> None:
        instance.state = state
        instance.since = at
        instance.until = at + self._duration(base)
        instance.running_event = None
        instance.ready_at = None

    # --- what requests and faults do -------------------------------------------------------

    def _deploy(self, at: float) -> None:
        self.reached_running = False
        self.retired = 0
        self.exited_with_error = False
        for _ in range(self.replicas):
            self._add_instance(at)

    def _add_instance(self, at: float) -> Instance:
        instance = Instance(
            id=self._uuid(),
            machine_id="",
            state="allocating",
            since=at,
            until=at + self._duration(ALLOCATE),
            version=self.version,
        )
        self.instances.append(instance)
        return instance

    def start(self, at: float) -> None:
        if self.outcome == "failed":
            self.outcome = None
            self.description = None
            self.prepared = False
            self.prepare_until = at + self._duration(PREPARE)
        elif self.outcome == "succeeded":
            self.outcome = None
        elif self.started:
            return
        self.started = True
        self.run_started = at
        self.run_finished = None
        self.updated = at
        if self.prepared:
            self._deploy(at)
        self._refresh(at)

    def stop(self, at: float) -> None:
        if not self.started or self.outcome is not None:
            return
        self.started = False
        self.run_finished = at
        self.updated = at
        for instance in self.instances:
            if instance.state != "stopping":
                self._enter(instance, "stopping", at, STOP)
        self._refresh(at)

    def delete(self, at: float) -> None:
        self.deleted_at = at
        self.updated = at
        for instance in self.instances:
            self._event("Instance Stopped", at, instance)
        self.instances.clear()
        self._log("deployment_controller", "info", f"container group {self.name} deleted", at)

    def exit(self, instance: Instance, code: int, at: float) -> None:
        """The container of ``instance`` exited with ``code``."""
        self._event(f"Instance Exited:{code}", at, instance)
        self._container_log(instance, at, f"process exited with code {code}")
        policy = self.restart_policy
        if policy == "always" and code == 0:
            self._enter(instance, "creating", at, CREATE)
        elif policy in ("always", "on_failure") and code != 0:
            self._reallocate(instance, at)
        else:
            self.instances.remove(instance)
            self.retired += 1
            self.exited_with_error = self.exited_with_error or code != 0
            done = not any(i.state in ACTIVE_STATES for i in self.instances)
            if done and not self.exited_with_error:
                self.outcome = "succeeded"
                self.run_finished = at
        self.updated = at
        self._refresh(at)

    def interrupt(self, instance: Instance, at: float) -> None:
        self._event("Instance Interrupted (Priority)", at, instance)
        self._reallocate(instance, at)
        self.updated = at

    def _reallocate(self, instance: Instance, at: float) -> None:
        self._event("Instance Reallocated", at, instance)
        instance.machine_id = ""
        self._enter(instance, "allocating", at, ALLOCATE)

    def instance_action(self, instance: Instance, action: str, at: float) -> None:
        """``reallocate``, ``recreate`` or ``restart`` of one instance (its own endpoints)."""
        if action == "reallocate":
            self._reallocate(instance, at)
        elif instance.state in ("creating", "running"):
            self._event(_ACTION_EVENTS[action], at, instance)
            self._enter(instance, "creating", at, CREATE)
        self.updated = at
        self._refresh(at)

    def patch(self, merged: dict[str, Any], at: float) -> None:
        """Adopt ``merged`` (the spec with a merge-patch applied and validated)."""
        before = self.spec
        self.spec = merged
        self.updated = at
        redeploy = [
            key
            for key in (
                "container",
                "liveness_probe",
                "readiness_probe",
                "startup_probe",
                "networking",
                "country_codes",
            )
            if before.get(key) != merged.get(key)
        ]
        if merged.get("networking") is not None and self.dns is None:
            self.dns = self._dns_name()
        new_image = before["container"]["image"] != merged["container"]["image"]
        if new_image and self.outcome == "failed":
            self.outcome = None
            self.description = None
            self.run_started = at
            self.run_finished = None
            self.prepare_until = at + self._duration(PREPARE)
        elif new_image and not self.prepared:
            self.prepare_until = at + self._duration(PREPARE)
        if redeploy:
            self.version += 1
            for instance in self.instances:
                if instance.state == "stopping":
                    continue
                if "country_codes" in redeploy:
                    self._reallocate(instance, at)
                elif new_image:
                    self._enter(instance, "downloading", at, DOWNLOAD)
                else:
                    self._enter(instance, "creating", at, CREATE)
        self._scale(at)
        self._refresh(at)

    def _scale(self, at: float) -> None:
        if not (self.started and self.prepared and self.outcome is None):
            return
        active = [i for i in self.instances if i.state != "stopping"]
        for _ in range(self.replicas - len(active) - self.retired):
            self._add_instance(at)
        for instance in reversed(active[self.replicas :]):
            self._enter(instance, "stopping", at, STOP)

    # --- records -------------------------------------------------------------------------

    def _event(self, name: str, at: float, instance: Instance | None) -> None:
        event = SystemEvent(
            name=name,
            time=at,
            instance_id=instance.id if instance else None,
            machine_id=(instance.machine_id or None) if instance else None,
            version=self.version,
        )
        self.system_events.append(event)
        del self.system_events[:-200]
        labels = self._labels(instance)
        self._lines(LogLine(at, "instance_controller", "info", name, labels))

    def _log(self, resource_type: str, severity: str, text: str, at: float) -> None:
        self._lines(LogLine(at, resource_type, severity, text, self._labels(None)))

    def _container_log(self, instance: Instance, at: float, text: str) -> None:
        self._lines(LogLine(at, "container", "info", text, self._labels(instance)))

    def _lines(self, line: LogLine) -> None:
        self.log_lines.append(line)
        del self.log_lines[:-1000]

    def _labels(self, instance: Instance | None) -> dict[str, str]:
        labels = {
            "project_name": self.project,
            "container_group_name": self.name,
            "container_group_version": str(self.version),
        }
        if instance is not None:
            labels["instance_id"] = instance.id
            if instance.machine_id:
                labels["machine_id"] = instance.machine_id
        return labels

    # --- randomness ----------------------------------------------------------------------

    def _duration(self, base: float) -> float:
        return base * self.rng.uniform(0.8, 1.2)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _dns_name(self) -> str:
        words = f"{self.rng.choice(_WORDS)}-{self.rng.choice(_WORDS)}"
        return f"{words}-{self.rng.getrandbits(32):08x}.salad.cloud"


_WORDS = (
    "apple", "basil", "carrot", "daikon", "endive", "fennel", "garlic", "kale", "leek",
    "lettuce", "mint", "okra", "onion", "parsley", "pepper", "radish", "sage", "spinach",
    "squash", "thyme", "tomato", "turnip", "yam", "zucchini",
)  # fmt: skip
