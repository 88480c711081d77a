"""Webhook deliveries: the signature, the back-off, and giving up after the last attempt."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import httpx
import pytest

from csms.alarms.webhook import SIGNATURE_HEADER, WebhookSender, WebhookSettings, backoff_s, signature
from tests.alarms.receiver import Receiver, receiving


def test_the_signature_is_the_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"id":1,"kind":"connector_faulted"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={expected}"


@pytest.mark.parametrize(("attempt", "low", "high"), [
    (1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (9, 15.0, 30.0),
])
def test_back_off_doubles_with_jitter_up_to_the_cap(attempt: int, low: float, high: float) -> None:
    assert backoff_s(attempt, 1.0, 30.0, lambda: 0.0) == low
    assert backoff_s(attempt, 1.0, 30.0, lambda: 1.0) == high


async def test_a_refused_delivery_is_retried_then_counted_as_failed() -> None:
    waits: list[float] = []
    failures: list[int] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with receiving(Receiver(status=503)) as receiver:
        sender = WebhookSender(
            WebhookSettings(url=f"http://127.0.0.1:{receiver.port}/hook", secret="k", attempts=4,
                            retry_initial_s=1.0, retry_max_s=3.0),
            on_failure=lambda: failures.append(1), sleep=sleep, rand=lambda: 1.0,
        )
        task = asyncio.create_task(sender.run())
        try:
            sender.offer(b'{"id":1}')
            for _ in range(200):
                if failures:
                    break
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert len(receiver.requests) == 4 and failures == [1]
    assert waits == [1.0, 2.0, 3.0]
    assert all(r.headers[SIGNATURE_HEADER.lower()] == signature("k", b'{"id":1}') for r in receiver.requests)


async def test_a_full_queue_drops_and_counts_new_deliveries() -> None:
    failures: list[int] = []
    sender = WebhookSender(WebhookSettings(url="http://127.0.0.1:9/", secret="k", queue=1),
                           on_failure=lambda: failures.append(1))
    assert sender.offer(b"1") is True
    assert sender.offer(b"2") is False
    assert failures == [1] and sender.pending == 1


async def test_an_invalid_url_counts_each_delivery_as_failed_and_the_worker_lives_on() -> None:
    failures: list[int] = []
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    sender = WebhookSender(WebhookSettings(url="http://[::1", secret="k", attempts=3),
                           on_failure=lambda: failures.append(1), sleep=sleep)
    task = asyncio.create_task(sender.run())
    try:
        sender.offer(b'{"id":1}')
        sender.offer(b'{"id":2}')
        for _ in range(200):
            if len(failures) == 2:
                break
            await asyncio.sleep(0.01)
        assert failures == [1, 1] and not task.done()  # httpx.InvalidURL is no httpx.HTTPError
        assert waits == [] and sender.pending == 0  # no retry mends a malformed URL
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_unexpected_error_does_not_stop_later_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[int] = []
    async with receiving(Receiver()) as receiver:
        sender = WebhookSender(
            WebhookSettings(url=f"http://127.0.0.1:{receiver.port}/hook", secret="k"),
            on_failure=lambda: failures.append(1),
        )
        real = sender._deliver
        calls = 0

        async def flaky(client: httpx.AsyncClient, body: bytes) -> bool:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("boom")
            return await real(client, body)

        monkeypatch.setattr(sender, "_deliver", flaky)
        task = asyncio.create_task(sender.run())
        try:
            sender.offer(b'{"id":1}')
            sender.offer(b'{"id":2}')
            await asyncio.wait_for(receiver.arrived.wait(), 5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert failures == [1] and [r.body for r in receiver.requests] == [b'{"id":2}']
