"""Form posts of the console, read with their text cleaned at the edge.

Every string value goes through ``text.multi_line`` (no control character but line breaks
and tabs), so a name, a saved reply or a policy never carries NUL or a C1 control into the
database and the pages; single-line fields lose line breaks where they are read
(``text.one_line``). Passwords are the one exception: they are compared, never shown.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request

from widget_server.text import multi_line


async def read_form(request: Request) -> FormData:
    form = await request.form()
    return FormData([
        (key, multi_line(value) if isinstance(value, str) and "password" not in key else value)
        for key, value in form.multi_items()])
