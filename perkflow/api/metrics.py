"""Prometheus metrics at GET /metrics: what an operator watches, named as docs/grafana.json reads.

Counted as things happen, in this process:
- perkflow_events_total{type, outcome}: events posted (API, adjustments, coupon and reward
  redemptions, imports), outcome applied, duplicate (a retry answered from storage), dry_run or
  refused; perkflow_events_refused_total{code} says why the refused ones were;
- perkflow_rules_total{rule, outcome, reason}: each rule of each applied event's trace, fired or
  skipped with its reason (when_false, cap_reached, budget_exhausted, ...);
- perkflow_http_request_duration_seconds{method, route, status}: latency by route template
  (`/api/v1/members/{member_id}`, never the raw path), `unmatched` for paths no route serves;
- perkflow_db_transaction_duration_seconds{outcome}: every database transaction, commit or rollback.

Read from the database when scraped, so every worker reports the same:
- perkflow_budget_remaining{budget}: units left of each budget (coupon:, reward:, campaign:);
- perkflow_outbox_depth{kind}: notifications and webhook messages not yet handed on;
- perkflow_webhook_failures{state}: deliveries whose last try failed and that will be retried
  (`retrying`) or that were given up (`dead`);
- perkflow_database_up: 1 when those reads worked, 0 when the database did not answer.

Only holders of PERKFLOW_METRICS_TOKEN may read it (docs/operations.md says why); without that
setting nothing is counted at all.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event, func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perkflow.service.events import Applied
from perkflow.service.problems import Problem
from perkflow.storage import tables as t

from .problems import ApiError

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MAX_TYPES = 100  # distinct event types counted by name; a flood of made-up types counts as "other"


class Metrics:
    """The registry of one app, and the recorders the event path and the middleware call."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter("perkflow_events", "Events posted, by type and outcome.", ["type", "outcome"], registry=self.registry)
        self.refused = Counter("perkflow_events_refused", "Events refused, by problem code.", ["code"], registry=self.registry)
        self.rules = Counter(
            "perkflow_rules", "Rules of applied events, fired or skipped, by reason.", ["rule", "outcome", "reason"], registry=self.registry
        )
        self.latency = Histogram(
            "perkflow_http_request_duration_seconds", "Time to answer a request, by route template.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.transactions = Histogram(
            "perkflow_db_transaction_duration_seconds", "Database transactions, begin to commit or rollback.",
            ["outcome"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.database = _DatabaseCollector(engine)
        self.registry.register(self.database)
        self._types: set[str] = set()
        _time_transactions(engine, self.transactions)

    def event_result(self, raw: Any, result: Applied | Problem) -> None:
        """Count one posted event (EventService calls this after each post)."""
        if isinstance(result, Problem):
            kind = raw.get("type") if isinstance(raw, dict) else None
            self.events.labels(self._type(kind), "refused").inc()
            self.refused.labels(result.code).inc()
            return
        body = result.body
        outcome = "dry_run" if body.get("dry_run") else "applied" if result.status == 201 else "duplicate"
        self.events.labels(self._type(body.get("event_type")), outcome).inc()
        if outcome == "applied":
            for line in body.get("trace", ()):
                self.rules.labels(line["rule"], line["outcome"], line.get("reason", "")).inc()

    def _type(self, kind: Any) -> str:
        if not isinstance(kind, str):
            return "none"
        if kind in self._types:
            return kind
        if len(self._types) >= MAX_TYPES or len(kind) > 40:
            return "other"
        self._types.add(kind)
        return kind


def _time_transactions(engine: Engine, histogram: Histogram) -> None:
    committed, rolled_back = histogram.labels("commit"), histogram.labels("rollback")

    @event.listens_for(engine, "begin")
    def begin(conn: Any) -> None:
        conn.info["perkflow_began"] = time.perf_counter()

    def ended(child: Any) -> Callable[[Any], None]:
        def observe(conn: Any) -> None:
            began = conn.info.pop("perkflow_began", None)
            if began is not None:
                child.observe(time.perf_counter() - began)

        return observe

    event.listen(engine, "commit", ended(committed))
    event.listen(engine, "rollback", ended(rolled_back))


class _DatabaseCollector:
    """Gauges read from the database at scrape time: a few small aggregate queries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []  # the families are known only when collected; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        budgets = GaugeMetricFamily("perkflow_budget_remaining", "Units left of each budget.", labels=["budget"])
        outbox = GaugeMetricFamily("perkflow_outbox_depth", "Outbox messages not yet handed on, by kind.", labels=["kind"])
        failures = GaugeMetricFamily(
            "perkflow_webhook_failures", "Webhook deliveries whose last try failed: retrying, or dead.", labels=["state"]
        )
        up = 1
        try:
            with self.engine.connect() as conn:
                for key, limit, used in conn.execute(select(t.budgets.c.key, t.budgets.c.limit, t.budgets.c.used)):
                    budgets.add_metric([key], max(limit - used, 0))
                o = t.outbox.c
                for kind, count in conn.execute(select(o.kind, func.count()).where(o.status == "pending").group_by(o.kind)):
                    outbox.add_metric([kind], count)
                d = t.webhook_deliveries.c
                retrying = conn.execute(
                    select(func.count()).where(d.status == "pending", d.attempts > 0)
                ).scalar_one()
                dead = conn.execute(select(func.count()).where(d.status == "dead")).scalar_one()
                failures.add_metric(["retrying"], retrying)
                failures.add_metric(["dead"], dead)
        except Exception:  # a scrape while the database is down still answers, and says so
            up = 0
        yield budgets
        yield outbox
        yield failures
        yield GaugeMetricFamily("perkflow_database_up", "1 when the database answered the last scrape's reads.", value=up)


class RequestTimer:
    """The latency histogram, labelled by the template of the route that served the request. The
    templates are read from the app's routes, again whenever their number changes (the editor
    mounts its pages after the API is made)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        self.templates: dict[int, str] = {}
        self.known = -1  # how many top-level routes the templates were read from

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            routes = scope["app"].routes
            if len(routes) != self.known:
                self.templates, self.known = dict(_templates(routes, "")), len(routes)
            route = self.templates.get(id(scope.get("endpoint")), "unmatched")
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(time.perf_counter() - began)


def _templates(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[int, str]]:
    """(id of the endpoint, path template) of every route: the router leaves the endpoint in the
    scope (by id, since a Mount leaves its router there, which cannot be hashed)."""
    for route in routes:
        if isinstance(route, Mount):
            yield from _templates(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield id(route.endpoint), prefix + route.path


async def metrics_endpoint(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token is None:
        raise ApiError(
            Problem(404, "metrics_off", "Metrics are off", "set PERKFLOW_METRICS_TOKEN to serve /metrics to Prometheus")
        )
    kind, _, given = request.headers.get("authorization", "").partition(" ")
    if kind.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            Problem(401, "unauthenticated", "Authentication required", "send the metrics token: Authorization: Bearer <PERKFLOW_METRICS_TOKEN>"),
            {"WWW-Authenticate": 'Bearer realm="perkflow-metrics"'},
        )
    metrics: Metrics = request.app.state.metrics  # made whenever a token is set
    registry = metrics.registry
    if shared := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # `serve --workers N` sets it: every worker's counts are in files there, summed here.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=shared)
        registry.register(metrics.database)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
