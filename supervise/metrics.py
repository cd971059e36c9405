"""Prometheus metrics for `/metrics` (supervise/api/ops.py).

Two kinds of series:

- Request metrics, recorded by request hooks: `supervise_http_requests_total{endpoint,method,status}`
  and `supervise_http_request_duration_seconds{endpoint,method}`. `endpoint` is the URL rule
  (`/s/<token>`, `/api/v1/cases/<ref>`), never the raw path: tracking numbers, point tokens and
  file names must not become label values (they would be personal data and unbounded cardinality).
- State gauges, computed at scrape time by `DomainCollector` from one `GROUP BY` per figure and a
  few Redis reads: queue depths and failed jobs per queue, live workers, open / overdue / escalated
  cases by the kind of org where they sit now (a discipline body — commission, discipline_office,
  stationed_group — or a unit a service complaint was transferred to — department, township,
  village; DESIGN.md §2a), and the outbox's backlog. Every scrape answers what is true now,
  whichever process serves it.

Gunicorn runs several worker processes, each with its own counters. With `PROMETHEUS_MULTIPROC_DIR`
set (in the environment of the process before it imports prometheus_client, to an empty directory
wiped at each server start) the counters live in files there and a scrape served by any worker
adds them all up (prometheus_client's multiprocess mode). Without it, a plain in-process registry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "<unmatched>"  # 404s and 405s: no URL rule, and the raw path is never a label

HTTP_REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "supervise_http_requests",
    "HTTP requests answered, by URL rule, method and status code.",
    ["endpoint", "method", "status"],
    registry=HTTP_REGISTRY,
)
HTTP_DURATION = Histogram(
    "supervise_http_request_duration_seconds",
    "Time from the first request hook to the response, by URL rule and method.",
    ["endpoint", "method"],
    registry=HTTP_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# -- request hooks ------------------------------------------------------------------------------------


def install(app: Flask) -> None:
    """Time every request from the first before_request hook to the response."""

    def _start() -> None:
        g._metrics_started = time.perf_counter()

    def _record(response):
        rule = request.url_rule
        endpoint = rule.rule if rule is not None else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
        started = g.pop("_metrics_started", None)
        if started is not None:
            HTTP_DURATION.labels(endpoint, method).observe(time.perf_counter() - started)
        return response

    # First in line, so time spent in the other hooks (sessions, rate limits) is measured and a
    # hook that answers early (a 429, a redirect to the login page) is still timed.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_record)


# -- the scrape ---------------------------------------------------------------------------------------


class _Collected:
    """Adapts a list of collectors to one (a registry asks only for `collect`)."""

    def __init__(self, *sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def exposition(domain: DomainCollector) -> bytes:
    """The text of one scrape: request metrics (of every process in multiprocess mode) + state."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Collected(HTTP_REGISTRY))
    registry.register(domain)
    return generate_latest(registry)


# Every org kind, bodies and units (orgs/models.py OrgKind), each with a series even at zero.
ORG_KINDS = (
    "commission",
    "discipline_office",
    "stationed_group",
    "department",
    "township",
    "village",
)
ESCALATION_LEVELS = (1, 2)


class DomainCollector:
    """State gauges read at scrape time. A source that cannot be read (database or Redis away)
    leaves its series out and says so in `supervise_up{component}`, so the rest still scrapes."""

    def __init__(self, session: Session, redis_factory: Callable, queue_names, now: datetime) -> None:
        self.session = session
        self.redis_factory = redis_factory
        self.queue_names = tuple(queue_names)
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "supervise_up", "1 when the scrape could read the component, else 0.", labels=["component"]
        )
        for component, reader in (("redis", self._redis), ("database", self._database)):
            try:
                families = list(reader())
            except Exception:
                if component == "database":
                    self.session.rollback()
                up.add_metric([component], 0)
                continue
            up.add_metric([component], 1)
            yield from families
        yield up

    # Redis: RQ's keys, read without RQ's registry clean-ups (a scrape changes nothing).

    def _redis(self) -> Iterator[Metric]:
        from rq import Queue
        from rq.registry import FailedJobRegistry
        from rq.worker_registration import REDIS_WORKER_KEYS

        conn = self.redis_factory()
        queued = GaugeMetricFamily("supervise_queue_jobs", "Jobs waiting in each RQ queue.", labels=["queue"])
        failed = GaugeMetricFamily(
            "supervise_queue_failed_jobs", "Jobs in each RQ queue's failed registry.", labels=["queue"]
        )
        with conn.pipeline(transaction=False) as pipe:
            for name in self.queue_names:
                q = Queue(name, connection=conn)
                pipe.llen(q.key)
                pipe.zcard(FailedJobRegistry(queue=q).key)
            pipe.smembers(REDIS_WORKER_KEYS)
            *counts, worker_keys = pipe.execute()
        for i, name in enumerate(self.queue_names):
            queued.add_metric([name], counts[2 * i])
            failed.add_metric([name], counts[2 * i + 1])
        # The set of workers keeps a worker killed with SIGKILL until RQ's clean-up; its hash has
        # expired by then (no heartbeat), so only workers whose hash exists are counted.
        with conn.pipeline(transaction=False) as pipe:
            for key in worker_keys:
                pipe.exists(key)
            live = sum(pipe.execute()) if worker_keys else 0
        workers = GaugeMetricFamily("supervise_workers", "RQ workers alive (with a current heartbeat).")
        workers.add_metric([], live)
        yield from (queued, failed, workers)

    # The database: one GROUP BY per figure, each answered from an index on PostgreSQL.

    def _database(self) -> Iterator[Metric]:
        from supervise.cases.models import Case
        from supervise.notify.models import OutboxMessage
        from supervise.orgs.models import Org

        def by_kind(*where, extra=()):
            # Count per org in the cases table (an index-only scan of the matching partial or
            # (org_id, is_open, …) index), then add orgs up per kind: the join is on the few
            # per-org rows, never on the cases.
            per_org = (
                select(Case.org_id, *extra, func.count().label("n"))
                .where(*where)
                .group_by(Case.org_id, *extra)
                .subquery()
            )
            extra_cols = [per_org.c[col.key] for col in extra]
            stmt = (
                select(Org.kind, *extra_cols, func.sum(per_org.c.n))
                .join(per_org, per_org.c.org_id == Org.id)
                .group_by(Org.kind, *extra_cols)
            )
            return self.session.execute(stmt).all()

        open_ = GaugeMetricFamily(
            "supervise_cases_open", "Open cases by the kind of org handling them.", labels=["org_kind"]
        )
        overdue = GaugeMetricFamily(
            "supervise_cases_overdue",
            "Open cases past their response deadline, by the kind of org handling them.",
            labels=["org_kind"],
        )
        escalated = GaugeMetricFamily(
            "supervise_cases_escalated",
            "Open cases escalated (督办), by the kind of org handling them and escalation level.",
            labels=["org_kind", "level"],
        )
        for family, where in (
            (open_, (Case.is_open,)),
            (overdue, (Case.is_open, Case.overdue)),
        ):
            counts = {kind: int(n) for kind, n in by_kind(*where)}
            for kind in _kinds(counts):
                family.add_metric([kind], counts.get(kind, 0))
        levels = {
            (kind, int(level)): int(n)
            for kind, level, n in by_kind(
                Case.is_open, Case.escalation_level > 0, extra=(Case.escalation_level,)
            )
        }
        for kind in _kinds({k for k, _ in levels}):
            for level in sorted(set(ESCALATION_LEVELS) | {lv for k, lv in levels if k == kind}):
                escalated.add_metric([kind, str(level)], levels.get((kind, level), 0))

        # (status, created_at) index: two short ranges, delivered rows never read.
        rows = self.session.execute(
            select(OutboxMessage.status, func.count(), func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status.in_(("pending", "dead", "unknown")))
            .group_by(OutboxMessage.status)
        ).all()
        outbox = {status: (int(n), oldest) for status, n, oldest in rows}
        pending, oldest = outbox.get("pending", (0, None))
        age = max(0.0, (self.now - oldest).total_seconds()) if oldest is not None else 0.0
        for name, doc, value in (
            ("supervise_outbox_pending", "Outbox rows waiting for delivery.", pending),
            ("supervise_outbox_dead", "Outbox rows given up after all retries.", outbox.get("dead", (0,))[0]),
            (
                "supervise_outbox_unknown",
                "SMS/e-mail rows whose send was cut off: maybe delivered, never re-sent without a person "
                "(系统管理 → 投递失败).",
                outbox.get("unknown", (0,))[0],
            ),
            (
                "supervise_outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox row waiting for delivery (0 when none waits).",
                age,
            ),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], value)
            yield gauge
        yield from (open_, overdue, escalated)


def _kinds(seen) -> list[str]:
    """Every org kind, with zero where none counts, so an alert sees a series drop to 0."""
    return list(ORG_KINDS) + sorted(set(seen) - set(ORG_KINDS))
