"""No control character gets in through a URL: path and query are refused once decoded."""

from __future__ import annotations

import pytest

from tests.inprocess import InProcess

pytestmark = pytest.mark.anyio

REFUSED = [
    "/api/widget/v1/articles?q=%00",  # public: the widget's article search
    "/api/widget/v1/articles?q=export%C2%85csv",  # U+0085, a C1 "next line"
    "/help/search?q=a%0Ab",  # a line break in a search box
    "/help/articles/reset%07password",  # BEL in a path segment
    "/console/search?q=%1B%5B31m",  # an escape sequence
    "/api/v1/tickets?status=open%7F",  # DEL
]


@pytest.mark.parametrize("url", REFUSED)
async def test_a_control_character_in_a_url_is_refused(inprocess: InProcess, url: str) -> None:
    async with inprocess.client() as client:
        response = await client.get(url)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_url"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_ordinary_text_in_a_url_passes(inprocess: InProcess) -> None:
    site = await inprocess.create_site()
    async with inprocess.client() as client:
        for query in ("export csv", "exportér+données", "日本語", "tab-less %2B plus"):
            response = await client.get("/api/widget/v1/articles",
                                        params={"site": site.key, "q": query},
                                        headers={"Origin": site.origin})
            assert response.status_code == 200, (query, response.text)
