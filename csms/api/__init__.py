"""Operator HTTP API (JSON, OpenAPI at /docs) and the built-in console."""
