"""schemathesis against the OpenAPI document of a real CSMS: no 500s, every answer as documented.

The CSMS runs in its own thread and event loop (schemathesis calls it over real sockets,
synchronously); a bounded number of generated requests per operation keeps the run short.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from csms.app import running
from csms.config import Settings
from tests.conftest import make_settings

TOKEN = "schema-token-0123456789abcdefgh"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 12


@contextmanager
def csms_in_a_thread(config: Settings) -> Iterator[str]:
    """A running CSMS in its own thread; yields its API base URL and stops it on every exit path."""
    started = threading.Event()
    state: dict[str, object] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        state["stop"], state["loop"] = stop, asyncio.get_running_loop()
        try:
            async with running(config) as app:
                state["url"] = app.api_url
                started.set()
                await stop.wait()
        finally:
            started.set()

    def target() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the test below
            state["error"] = exc

    thread = threading.Thread(target=target, name="csms-under-test", daemon=True)
    thread.start()
    try:
        assert started.wait(60), "the CSMS did not start"
        assert "url" in state, state.get("error")
        yield str(state["url"])
    finally:
        loop, stop = state.get("loop"), state.get("stop")
        if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event):
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        assert not thread.is_alive(), "the CSMS did not stop"


def test_every_operation_answers_as_its_schema_says(tmp_path: Path) -> None:
    with csms_in_a_thread(make_settings(tmp_path, api_token=TOKEN, call_timeout_s=2)) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        checks = [not_a_server_error, status_code_conformance, content_type_conformance,
                  response_schema_conformance]
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        failures: list[str] = []
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=url, headers=HEADERS, checks=checks, timeout=10)

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # every operation runs; report each failing one
                failures.append(f"{operation.label}: {exc}")
        assert not failures, "\n\n".join(failures)
