"""Rate, token and concurrent-stream limits, per API key (per client address without auth)."""
