"""GET /metrics behind a token: the counters of app/telemetry.py and the queue depth, in Prometheus's text format.

With PROMETHEUS_MULTIPROC_DIR set (an empty folder shared by the processes of one host, as
prometheus-client's multiprocess mode wants), /metrics adds up every gunicorn and worker process.
"""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError
from rq import Queue
from werkzeug.wrappers import Response

from app.extensions import csrf

bp = Blueprint("metrics", __name__)
csrf.exempt(bp)

class QueueDepth:
    """Jobs waiting in Redis, read when scraped (so it is right even with no worker running)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    def collect(self):  # noqa: ANN201
        """One gauge: the jobs in every generation queue."""
        from app.generations import queue
        from app.services import services

        gauge = GaugeMetricFamily("imagegen_queue_depth", "Generation jobs waiting in Redis")
        redis = services(self.app).redis
        if redis is not None:
            try:
                names = queue.queue_names(redis, self.app.config["RQ_QUEUE_NAME"])
                gauge.add_metric([], sum(Queue(name, connection=redis).count for name in names))
            except RedisError:
                pass
        yield gauge


def _registry() -> CollectorRegistry:
    """Every process's metrics in multiprocess mode, else this process's; plus the queue depth."""
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    combined = CollectorRegistry()
    combined.register(_Merged(registry, QueueDepth(current_app._get_current_object())))  # type: ignore[attr-defined]
    return combined


class _Merged:
    """Both collectors as one, without registering the queue gauge in the global registry."""

    def __init__(self, registry: CollectorRegistry, depth: QueueDepth) -> None:
        self.registry, self.depth = registry, depth

    def collect(self):  # noqa: ANN201
        """The process metrics, then the queue depth."""
        yield from self.registry.collect()
        yield from self.depth.collect()


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus text format, only for `Authorization: Bearer <METRICS_TOKEN>`; 404 when no token is set."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return Response("A valid METRICS_TOKEN bearer token is required.\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"})
    return Response(generate_latest(_registry()), headers={"Content-Type": CONTENT_TYPE_LATEST})
