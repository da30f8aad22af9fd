"""Runs: a reply being produced by the server, its event log, resume and cancel."""
