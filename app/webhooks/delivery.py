"""Sending a delivery: one RQ job per attempt (carrying only the delivery's id), signed, to an address checked and
pinned for that attempt, with exponential retries and an endpoint disabled after a day of failures."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import certifi
import sqlalchemy as sa
import urllib3
from flask import current_app
from redis.exceptions import RedisError
from rq import Queue

from app.extensions import db
from app.models import WebhookDelivery, WebhookEndpoint, utcnow
from app.services import QueueUnavailable, services
from app.webhooks import addresses, bodies, signing

log = logging.getLogger(__name__)
JOB_FUNCTION = "app.worker.jobs.run_webhook_delivery"
QUEUED, SENDING, WAITING, SUCCEEDED, FAILED = "queued", "sending", "waiting", "succeeded", "failed"
# A queued or sending delivery not finished by then is taken for lost (Redis emptied, a worker killed): sent again.
LEASE_SECONDS = 600
ANSWER_BYTES = 64 * 1024  # read of an answer at most, then the connection is dropped
USER_AGENT = "ImageGenerator-Webhooks/1"


def lease_end() -> datetime:
    """When a delivery handed to a job counts as lost if it has not finished."""
    return utcnow() + timedelta(seconds=LEASE_SECONDS)


def enqueue(delivery_ids: list[int]) -> int:
    """Queue one job per delivery; without Redis they wait for the sweep (their lease runs out). Return the count."""
    queued = 0
    for delivery_id in delivery_ids:
        try:
            redis = services().require_redis()
            Queue(current_app.config["RQ_QUEUE_NAME"], connection=redis).enqueue_call(
                JOB_FUNCTION, args=(delivery_id,), job_id=f"webhook-{delivery_id}-{uuid.uuid4().hex[:12]}",
                timeout=120, result_ttl=600, failure_ttl=24 * 3600, description=f"webhook delivery {delivery_id}")
            queued += 1
        except (RedisError, QueueUnavailable, OSError) as exc:
            log.warning("webhook delivery %s not queued (%s); the sweep sends it later", delivery_id, exc)
    return queued


def enqueue_due(limit: int = 200) -> int:
    """The sweep's part: queue deliveries whose next attempt is due, or whose job was lost; return how many."""
    now = utcnow()
    rows = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(
            sa.select(WebhookDelivery.id).where(WebhookDelivery.status.in_((WAITING, QUEUED, SENDING)),
                                                WebhookDelivery.next_attempt_at <= now).limit(limit)))
        .where(WebhookDelivery.status.in_((WAITING, QUEUED, SENDING)), WebhookDelivery.next_attempt_at <= now)
        .values(status=QUEUED, next_attempt_at=lease_end()).returning(WebhookDelivery.id),
        execution_options={"synchronize_session": False}).all()
    db.session.commit()
    return enqueue([row[0] for row in rows])


def send_again(delivery: WebhookDelivery) -> bool:
    """Queue a finished delivery again with a fresh set of attempts (the same message id); False if still running."""
    changed = db.session.execute(
        sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery.id,
                                         WebhookDelivery.status.in_((SUCCEEDED, FAILED, WAITING)))
        .values(status=QUEUED, attempts=0, next_attempt_at=lease_end()),
        execution_options={"synchronize_session": False}).rowcount
    db.session.commit()
    if changed:
        enqueue([delivery.id])
    return bool(changed)


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: the answer's status (None without one) and, when it failed, why."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer; a redirect is a failure, since it is never followed."""
        return self.error is None


def deliver(delivery_id: int) -> str:
    """The job: claim the delivery, send it once, record the outcome; return the delivery's status after it."""
    now = utcnow()
    claimed = db.session.execute(
        sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == QUEUED)
        .values(status=SENDING, attempts=WebhookDelivery.attempts + 1, last_attempt_at=now,
                next_attempt_at=lease_end()),
        execution_options={"synchronize_session": False}).rowcount
    db.session.commit()
    if not claimed:
        return "skipped"
    record = db.session.get(WebhookDelivery, delivery_id)
    if record is None:
        return "missing"
    endpoint = record.endpoint
    if not endpoint.enabled:
        outcome = Outcome(None, "Not sent: the endpoint is disabled")
    else:
        outcome = _attempt(endpoint, record)
    status = _record(record, endpoint, outcome)
    log.info("webhook delivery %s (%s, endpoint %s) attempt %d: %s", delivery_id, record.event, endpoint.id,
             record.attempts, outcome.error or f"answered {outcome.status}")
    return status


def _attempt(endpoint: WebhookEndpoint, record: WebhookDelivery) -> Outcome:
    """Check the address again (DNS may have changed since the save), then POST the signed body to it."""
    config = current_app.config
    try:
        target = addresses.check(endpoint.url, config["WEBHOOK_ALLOW_PRIVATE"])
    except addresses.AddressRefused as exc:
        return Outcome(None, f"Refused: {exc}")
    body = bodies.render(endpoint.body_format, record.payload)
    headers = {**signing.signed_headers(endpoint.secret, record.message_id, body, utcnow()),
               "content-type": "application/json", "user-agent": USER_AGENT}
    return post(target, body, headers, config["WEBHOOK_TIMEOUT"])


def post(target: addresses.Target, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST to the first address the check resolved (never resolving again), following no redirect."""
    options = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    address = target.addresses[0]
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address, target.port, server_hostname=target.host, assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), **options)
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, **options)
    try:
        response = pool.urlopen("POST", target.path, body=body, headers={**headers, "host": target.host_header},
                                redirect=False, retries=False, preload_content=False, assert_same_host=False)
        try:
            response.read(ANSWER_BYTES)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return Outcome(None, f"No answer: {type(exc).__name__}")
    finally:
        pool.close()
    if 200 <= response.status < 300:
        return Outcome(response.status, None)
    return Outcome(response.status, f"Answered {response.status}")


def _record(record: WebhookDelivery, endpoint: WebhookEndpoint, outcome: Outcome) -> str:
    """Store the attempt's outcome, schedule the next one, and disable an endpoint failing for too long."""
    config, now = current_app.config, utcnow()
    record.response_status, record.error = outcome.status, outcome.error
    if not outcome.ok and endpoint.enabled:
        endpoint.failing_since = endpoint.failing_since or now
        if now - endpoint.failing_since >= timedelta(hours=config["WEBHOOK_DISABLE_AFTER_HOURS"]):
            endpoint.enabled = False
            endpoint.disabled_reason = (f"Disabled on {now:%Y-%m-%d %H:%M} UTC: every delivery since "
                                        f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC failed (last: {outcome.error}). "
                                        "Enable it again once it answers.")
    if outcome.ok:
        record.status, record.next_attempt_at = SUCCEEDED, None
        endpoint.failing_since = None
    elif record.attempts < config["WEBHOOK_ATTEMPTS"] and endpoint.enabled:
        delay = config["WEBHOOK_RETRY_BASE_DELAY"] * 2 ** (record.attempts - 1)
        record.status, record.next_attempt_at = WAITING, now + timedelta(seconds=delay)
    else:
        record.status, record.next_attempt_at = FAILED, None
    db.session.commit()
    return record.status
