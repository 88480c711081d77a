"""The operator console: a live web UI served at ``/`` of the API port (see docs/console.md).

``routes.console_router(ctx)`` is mounted by ``csms.api.http.create_app``; it is not
imported here so that the API module can import ``auth`` without a cycle.
"""
