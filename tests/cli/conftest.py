"""The CLI tests call ``csms.cli.main`` in this process: it must not point the process's logging
at a captured stream that pytest closes after the test (later tests would log into it)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("csms.cli.configure_logging", lambda *args, **kwargs: None)
