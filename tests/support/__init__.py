"""Test helpers that are not tests: mock upstream servers and the like."""
