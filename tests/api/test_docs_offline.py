"""/docs and /redoc load everything from this server: no CDN."""

from __future__ import annotations

import re

import httpx
import pytest

from csms.app import CsmsApp


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_local_assets_that_are_served(
    csms: CsmsApp, api: httpx.AsyncClient, page: str
) -> None:
    r = await api.get(page)
    assert r.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", r.text)
    urls += re.findall(r"""(?:url|spec-url)\s*:\s*["']([^"']+)["']""", r.text)
    assert urls, r.text
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert (await api.get(url)).status_code == 200, url
    assert any(u.endswith(".js") for u in urls)
