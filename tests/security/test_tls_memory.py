"""asyncio preallocates a 256 KiB read buffer per TLS transport; the CSMS shrinks it
(``tls.read_buffer_kb``, 32 by default), so idle TLS stations stay cheap."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import tracemalloc

from tests.security.conftest import MakeCsms, Pki, tls_settings
from tests.security.peers import V16, connect, heartbeat_ok

CONNECTIONS = 20


async def test_idle_tls_connections_do_not_hold_256_kib_buffers(make_csms: MakeCsms, pki: Pki) -> None:
    app = await make_csms(auto_register=True, tls=tls_settings(pki))
    assert asyncio.sslproto.SSLProtocol.max_size == 32 * 1024
    ctx = pki.client_context()
    async with connect(app.ocpp_tls_url, "WARM", V16, tls=ctx) as ws:  # first-use allocations
        assert await heartbeat_ok(ws)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        stations = [await connect(app.ocpp_tls_url, f"MEM{i}", V16, tls=ctx) for i in range(CONNECTIONS)]
        for ws in stations:
            assert await heartbeat_ok(ws)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    per_pair = grown / CONNECTIONS  # both ends live in this process
    for ws in stations:
        await ws.close()
    assert per_pair < 160 * 1024, f"{per_pair / 1024:.0f} KiB per client+server TLS connection"
