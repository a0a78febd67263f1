"""What the operator watches: health probes, Prometheus metrics, rq-dashboard."""
