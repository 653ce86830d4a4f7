"""Process-level metric families (per-node ones are ``nodes.metrics.NodeMetrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ProcessMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.nodes_configured = Gauge(
            "salad_vk_nodes_configured",
            "Nodes listed in the current projects file.",
            registry=registry,
        )
        self.nodes_running = Gauge(
            "salad_vk_nodes_running",
            "Nodes whose task is serving (registered and heartbeating).",
            registry=registry,
        )
        self.node_restarts = Counter(
            "salad_vk_node_restarts_total",
            "Times a node's task failed and was restarted, by node.",
            ["node"],
            registry=registry,
        )
        self.config_reloads = Counter(
            "salad_vk_config_reloads_total",
            "Projects-file changes seen, by result: applied, or invalid"
            " (the old config kept running).",
            ["result"],
            registry=registry,
        )
        self.event_loop_lag = Histogram(
            "salad_vk_event_loop_lag_seconds",
            "How late a timer that should fire every 0.25 s actually fired.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.decommissions = Counter(
            "salad_vk_node_decommissions_total",
            "Nodes removed from the config and decommissioned, by policy.",
            ["policy"],
            registry=registry,
        )
        # Several replicas: who serves what (README, "Several replicas").
        self.nodes_owned = Gauge(
            "salad_vk_nodes_owned",
            "Nodes this replica holds the Lease of and serves.",
            registry=registry,
        )
        self.members = Gauge(
            "salad_vk_members",
            "Live replicas in this replica's view, itself included while its membership is valid.",
            registry=registry,
        )
        self.takeovers = Counter(
            "salad_vk_node_takeovers_total",
            "Nodes this replica took from another holder, by kind: released (a handoff),"
            " silent (its replica stopped renewing its membership), replaced (its replica"
            " restarted), restarted (an earlier run of this replica), unknown_holder (a"
            " holder that is no member), unclaimed (released and not taken).",
            ["kind"],
            registry=registry,
        )
        self.handoffs = Counter(
            "salad_vk_node_handoffs_total",
            "Nodes this replica stopped and released for another replica to take.",
            registry=registry,
        )
        self.fencing = Counter(
            "salad_vk_fencing_events_total",
            "Nodes this replica stopped or paused because it could no longer prove it owns"
            " them, by reason: taken (another replica holds the Lease: stopped), deadline"
            " (the node's Lease could not be renewed in time: stopped), membership (this"
            " replica's membership Lease could not be renewed in time: paused until it is"
            " back).",
            ["reason"],
            registry=registry,
        )
