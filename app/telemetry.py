"""What web and worker processes count for Prometheus (prometheus-client; no Flask import, so the API client
can count too). In multiprocess mode each process writes its values to PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

GENERATIONS_FINISHED = Counter("imagegen_generations_finished_total", "Generations that reached a final status",
                               ["status"])
API_RESPONSES = Counter("imagegen_api_responses_total", "Answers from the Stability API", ["status_code"])
API_LATENCY = Histogram("imagegen_api_latency_seconds", "Seconds the Stability API took to answer a generate call",
                        buckets=(0.5, 1, 2, 4, 6, 8, 10, 15, 20, 30, 60, 120))
JOB_DURATION = Histogram("imagegen_job_duration_seconds", "Seconds from a job's claim to its row's final status",
                         buckets=(0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300))
RATE_LIMIT_WAIT = Counter("imagegen_rate_limit_wait_seconds_total", "Seconds spent waiting for a rate-limit slot")
CREDITS_SPENT = Counter("imagegen_credits_spent_total", "Credits of the images the API made (and charged)",
                        ["model"])
IN_FLIGHT = Gauge("imagegen_jobs_in_flight", "Jobs a worker process is running now", multiprocess_mode="livesum")
