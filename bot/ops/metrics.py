"""Prometheus metrics, all in one registry built by the composition root (no module-level collectors).

Components get the :class:`Metrics` object (or one of its small hook methods) as a collaborator; the series:

- ``migrate_bot_slack_ack_seconds{listener}``: from a Slack request's arrival to its ack, per listener;
- ``migrate_bot_views_open_seconds``: ``views.open`` latency (the trigger_id expires after 3 s);
- ``migrate_bot_slack_api_errors_total{method,error}``: Slack Web API calls that failed;
- ``migrate_bot_graph_requests_total{operation,status}`` and ``migrate_bot_graph_request_seconds{operation}``;
- ``migrate_bot_poll_sweep_seconds`` and ``migrate_bot_poll_lag_seconds`` (how late the last sweep started);
- ``migrate_bot_runs{state}``: runs per state, read from the database at scrape time;
- ``migrate_bot_credential_state{state}``: 1 for the admin credential's current state, 0 for the others;
- ``migrate_bot_leader``: 1 while this replica leads (polls and sweeps), 0 while it follows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CREDENTIAL_STATES = ("ok", "static", "no_admin", "failing")


class _Scraped(Collector):
    """A gauge family whose values are read when Prometheus scrapes (never fails the scrape)."""

    def __init__(self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        self._name, self._doc, self._label, self._read = name, documentation, label, read

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(self._name, self._doc, labels=[self._label])]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=[self._label])
        try:
            values = self._read()
        except Exception as error:  # a scrape must not fail because the database is down
            log.debug("metric %s not read: %s", self._name, type(error).__name__)
            values = {}
        for key, value in sorted(values.items()):
            family.add_metric([key], float(value))
        yield family


class Metrics:
    """Every series migrate-bot exports, registered in ``registry`` (a fresh one when None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.ack_seconds = Histogram(
            "migrate_bot_slack_ack_seconds",
            "Slack request to ack, per listener",
            ["listener"],
            registry=r,
            buckets=FAST_BUCKETS,
        )
        self.views_open_seconds = Histogram(
            "migrate_bot_views_open_seconds", "views.open latency", registry=r, buckets=FAST_BUCKETS
        )
        self.slack_errors = Counter(
            "migrate_bot_slack_api_errors", "Slack Web API calls that failed", ["method", "error"], registry=r
        )
        self.graph_requests = Counter(
            "migrate_bot_graph_requests",
            "Graph requests by operation and HTTP status",
            ["operation", "status"],
            registry=r,
        )
        self.graph_seconds = Histogram(
            "migrate_bot_graph_request_seconds",
            "Graph request latency",
            ["operation"],
            registry=r,
            buckets=SLOW_BUCKETS,
        )
        self.sweep_seconds = Histogram(
            "migrate_bot_poll_sweep_seconds", "One poll sweep over every running run", registry=r, buckets=SLOW_BUCKETS
        )
        self.poll_lag = Gauge(
            "migrate_bot_poll_lag_seconds", "How much later than its interval the last sweep started", registry=r
        )
        self.leader = Gauge("migrate_bot_leader", "1 while this replica leads, 0 while it follows", registry=r)
        self.leader.set(1)  # one replica without an election leads

    # Hooks for the components
    def ack(self, listener: str, seconds: float) -> None:
        self.ack_seconds.labels(listener).observe(seconds)

    def slack_call(self, method: str, seconds: float, error: str | None) -> None:
        if method == "views.open":
            self.views_open_seconds.observe(seconds)
        if error is not None:
            self.slack_errors.labels(method, error).inc()

    def graph_request(self, operation: str, status: str, seconds: float) -> None:
        self.graph_requests.labels(operation, status).inc()
        self.graph_seconds.labels(operation).observe(seconds)

    def sweep(self, seconds: float, lag: float) -> None:
        self.sweep_seconds.observe(seconds)
        self.poll_lag.set(max(0.0, lag))

    def watch_leader(self, leads: Callable[[], bool]) -> None:
        """``migrate_bot_leader`` from ``leads()`` at each scrape."""
        self.leader.set_function(lambda: 1.0 if leads() else 0.0)

    def watch_runs(self, count_by_state: Callable[[], Mapping[str, int]], states: Iterable[str]) -> None:
        """``migrate_bot_runs{state}`` from ``count_by_state()`` at each scrape (every state, 0 when none)."""
        names = list(states)
        self.registry.register(
            _Scraped(
                "migrate_bot_runs",
                "Runs per state (from the database)",
                "state",
                lambda: {name: 0 for name in names} | dict(count_by_state()),
            )
        )

    def watch_credential(self, state: Callable[[], str]) -> None:
        """``migrate_bot_credential_state{state}``: 1 for ``state()`` (one of :data:`CREDENTIAL_STATES`)."""
        self.registry.register(
            _Scraped(
                "migrate_bot_credential_state",
                "The admin credential's state (1 = current)",
                "state",
                lambda: {name: 1.0 if name == state() else 0.0 for name in CREDENTIAL_STATES},
            )
        )

    # Exposition
    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
