"""API keys: issuing them, checking them, and who a request comes from."""
