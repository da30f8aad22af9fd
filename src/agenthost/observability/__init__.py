"""Observability: structured logs, Prometheus metrics, optional tracing."""
